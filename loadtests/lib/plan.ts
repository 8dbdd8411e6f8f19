/**
 * Who is who in a load test: deterministic user emails, the split of users
 * into rooms, and request batching for setup. Deterministic so that a rerun
 * with the same `RUN_ID` finds the same users (signIn instead of signUp)
 * and a scenario's VU n is always the same user. Pure (no `k6/*`, no `node:*`).
 */

/** The password every load-test user gets (8 to 200 characters, as the API requires). */
export const LOADTEST_PASSWORD = 'load-test-password';

/** The email of load-test user `index` in run `runId`. */
export function userEmail(runId: string, index: number): string {
  if (!/^[a-z0-9-]{1,40}$/.test(runId)) throw new Error(`RUN_ID must be 1-40 of [a-z0-9-], got ${JSON.stringify(runId)}`);
  return `lt-${runId}-${index}@loadtest.example`;
}

/**
 * Splits users 0..userCount-1 into rooms of `roomSize` consecutive users;
 * the last room takes the remainder. Returns user indices per room; the
 * first of each room creates it, the others join.
 */
export function planRooms(userCount: number, roomSize: number): number[][] {
  if (!Number.isInteger(userCount) || userCount < 1) throw new Error(`userCount must be a positive integer, got ${userCount}`);
  if (!Number.isInteger(roomSize) || roomSize < 1) throw new Error(`roomSize must be a positive integer, got ${roomSize}`);
  const rooms: number[][] = [];
  for (let start = 0; start < userCount; start += roomSize) {
    const members: number[] = [];
    for (let i = start; i < Math.min(userCount, start + roomSize); i++) members.push(i);
    rooms.push(members);
  }
  return rooms;
}

/** The room index of a user under {@link planRooms}. */
export function roomOfUser(userIndex: number, roomSize: number): number {
  return Math.floor(userIndex / roomSize);
}

/** Splits a list into chunks of at most `size`, to send setup requests in bounded batches. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`chunk size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The users (by index) that send in the chat scenarios: `share` of each
 * room, at least one per room, spread over the rooms so every room has
 * traffic.
 */
export function senderIndices(rooms: readonly (readonly number[])[], share: number): number[] {
  if (!(share > 0 && share <= 1)) throw new Error(`sender share must be in (0, 1], got ${share}`);
  const out: number[] = [];
  for (const members of rooms) {
    const count = Math.max(1, Math.round(members.length * share));
    out.push(...members.slice(0, count));
  }
  return out;
}

/**
 * The metric keys of the dashboard scenario (`app.loadtest.k0` …) and the
 * set subscriber `index` asks for: `perSubscriber` consecutive keys starting
 * at a rotating offset, so subscribers fall into a few identical key sets
 * (which the server batches once and shares) rather than all one or all
 * different.
 */
export function dashboardKeys(totalKeys: number, perSubscriber: number, index: number, sets: number): string[] {
  if (perSubscriber > totalKeys) throw new Error(`keys per subscriber (${perSubscriber}) exceed the key count (${totalKeys})`);
  if (perSubscriber > 50) throw new Error('the API accepts at most 50 keys per dashboard');
  const offset = (index % Math.max(1, sets)) % totalKeys;
  const keys: string[] = [];
  for (let i = 0; i < perSubscriber; i++) keys.push(metricKey((offset + i) % totalKeys));
  return keys;
}

/** The name of dashboard key `i`. */
export function metricKey(i: number): string {
  return `app.loadtest.k${i}`;
}

/**
 * The churn scenario's cast: in every room the last `churnPerRoom` members
 * come and go, the others stay connected and chat. Churners share rooms
 * with stayers so their presence changes fan out to someone.
 */
export function churnRoles(rooms: readonly (readonly number[])[], churnPerRoom: number): { stayers: number[][]; churners: number[] } {
  if (!Number.isInteger(churnPerRoom) || churnPerRoom < 0) throw new Error(`churners per room must be a non-negative integer, got ${churnPerRoom}`);
  const stayers: number[][] = [];
  const churners: number[] = [];
  for (const members of rooms) {
    // Every room keeps at least one stayer, to receive the churners' presence.
    const keep = Math.max(1, members.length - churnPerRoom);
    stayers.push(members.slice(0, keep));
    churners.push(...members.slice(keep));
  }
  return { stayers, churners };
}
