/**
 * GraphQL over HTTP for the k6 scripts, and the setup step that creates the
 * users and rooms a scenario starts from. k6 only (`k6/http`).
 */
import { fail } from 'k6';
import http from 'k6/http';
import type { ObjectBatchRequest } from 'k6/http';
import { chunk, LOADTEST_PASSWORD, planRooms, userEmail } from '../lib/plan.ts';
import {
  CREATE_ROOM,
  errorCode,
  JOIN_ROOM,
  SIGN_IN,
  SIGN_UP,
  type AuthData,
  type GraphQLResponse,
} from '../lib/operations.ts';

const JSON_HEADERS = { 'content-type': 'application/json' };

function headers(token?: string): Record<string, string> {
  return token === undefined ? JSON_HEADERS : { ...JSON_HEADERS, authorization: `Bearer ${token}` };
}

/** A POST /graphql request for http.batch, tagged with its operation so k6 reports each separately. */
export function graphqlRequest(url: string, query: string, variables: Record<string, unknown>, token: string | undefined, name: string): ObjectBatchRequest {
  return {
    method: 'POST',
    url,
    body: JSON.stringify({ query, variables }),
    params: { headers: headers(token), tags: { name }, timeout: '60s' },
  };
}

function parse<T>(body: unknown, status: number): GraphQLResponse<T> {
  if (typeof body !== 'string') return { errors: [{ message: `HTTP ${status} with no body` }] };
  try {
    return JSON.parse(body) as GraphQLResponse<T>;
  } catch {
    return { errors: [{ message: `HTTP ${status}: ${body.slice(0, 200)}` }] };
  }
}

/** Runs one operation; returns the parsed body (errors included) and the HTTP status. */
export function graphql<T>(url: string, query: string, variables: Record<string, unknown>, token: string | undefined, name: string): { status: number; body: GraphQLResponse<T> } {
  const res = http.post(url, JSON.stringify({ query, variables }), { headers: headers(token), tags: { name } });
  return { status: res.status, body: parse<T>(res.body, res.status) };
}

/** Runs several operations concurrently (http.batch). */
export function graphqlBatch<T>(requests: ObjectBatchRequest[]): { status: number; body: GraphQLResponse<T> }[] {
  if (requests.length === 0) return [];
  return http.batch(requests).map((res) => ({ status: res.status, body: parse<T>(res.body, res.status) }));
}

/** What setup() hands every VU: small on purpose, since k6 copies it into each VU. */
export interface SetupData {
  runId: string;
  userCount: number;
  roomSize: number;
  /** Room ids; user i is a member of roomIds[floor(i / roomSize)]. */
  roomIds: string[];
}

/**
 * Creates (or, on a rerun with the same RUN_ID, signs in) users
 * 0..count-1, `batchSize` requests at a time; returns their tokens and ids.
 * Fails the test on anything else than success or CONFLICT (already exists).
 */
export function ensureUsers(url: string, runId: string, count: number, batchSize: number, first = 0): { token: string; id: string }[] {
  const out: { token: string; id: string }[] = [];
  const indices = Array.from({ length: count }, (_, i) => first + i);
  for (const group of chunk(indices, batchSize)) {
    const signUps = graphqlBatch<AuthData>(
      group.map((i) => graphqlRequest(url, SIGN_UP, { input: { email: userEmail(runId, i), name: `Load ${i}`, password: LOADTEST_PASSWORD } }, undefined, 'setup signUp')),
    );
    const existing: number[] = [];
    const tokens = new Map<number, { token: string; id: string }>();
    signUps.forEach((res, k) => {
      const index = group[k] as number;
      const auth = res.body.data?.signUp;
      if (auth) tokens.set(index, { token: auth.token, id: auth.user.id });
      else if (errorCode(res.body) === 'CONFLICT') existing.push(index);
      else fail(`setup: signUp of user ${index} failed (HTTP ${res.status}): ${JSON.stringify(res.body.errors ?? res.body)}`);
    });
    const signIns = graphqlBatch<AuthData>(
      existing.map((i) => graphqlRequest(url, SIGN_IN, { input: { email: userEmail(runId, i), password: LOADTEST_PASSWORD } }, undefined, 'setup signIn')),
    );
    signIns.forEach((res, k) => {
      const index = existing[k] as number;
      const auth = res.body.data?.signIn;
      if (!auth) fail(`setup: signIn of existing user ${index} failed (HTTP ${res.status}): ${JSON.stringify(res.body.errors ?? res.body)}`);
      tokens.set(index, { token: auth.token, id: auth.user.id });
    });
    for (const i of group) out.push(tokens.get(i) as { token: string; id: string });
  }
  return out;
}

/**
 * The setup step of the room scenarios: `userCount` users in rooms of
 * `roomSize` (the first member creates the room, the others join it), all
 * through the public API in batches. Rooms are new on every run; users are
 * reused when RUN_ID is.
 */
export function setupUsersAndRooms(url: string, runId: string, userCount: number, roomSize: number, batchSize: number): SetupData {
  const users = ensureUsers(url, runId, userCount, batchSize);
  const rooms = planRooms(userCount, roomSize);
  const roomIds: string[] = [];
  for (const group of chunk(rooms.map((members, r) => ({ members, r })), batchSize)) {
    const created = graphqlBatch<{ createRoom: { id: string } }>(
      group.map(({ members, r }) => graphqlRequest(url, CREATE_ROOM, { input: { name: `Load ${runId} room ${r}` } }, users[members[0] as number]?.token, 'setup createRoom')),
    );
    created.forEach((res, k) => {
      const id = res.body.data?.createRoom.id;
      if (!id) fail(`setup: createRoom ${group[k]?.r} failed (HTTP ${res.status}): ${JSON.stringify(res.body.errors ?? res.body)}`);
      roomIds.push(id);
    });
  }
  // joinRoom rather than createRoom(memberIds): adding members makes the
  // server notify each of them (ADDED_TO_ROOM), load that is not the test's.
  const joins = rooms.flatMap((members, r) => members.slice(1).map((user) => ({ user, roomId: roomIds[r] as string })));
  for (const group of chunk(joins, batchSize)) {
    const joined = graphqlBatch<{ joinRoom: { id: string } }>(
      group.map(({ user, roomId }) => graphqlRequest(url, JOIN_ROOM, { roomId }, users[user]?.token, 'setup joinRoom')),
    );
    joined.forEach((res, k) => {
      if (!res.body.data?.joinRoom) fail(`setup: joinRoom by user ${group[k]?.user} failed (HTTP ${res.status}): ${JSON.stringify(res.body.errors ?? res.body)}`);
    });
  }
  return { runId, userCount, roomSize, roomIds };
}

const tokens = new Map<number, string>();

/**
 * The token of user `index`, signed in on first use and kept for the VU's
 * life. VUs sign in themselves instead of receiving tokens from setup():
 * k6 copies setup data into every VU, and 2,000 tokens times 2,000 VUs is
 * over a gigabyte.
 */
export function tokenOf(url: string, runId: string, index: number): string | undefined {
  const known = tokens.get(index);
  if (known !== undefined) return known;
  const res = graphql<AuthData>(url, SIGN_IN, { input: { email: userEmail(runId, index), password: LOADTEST_PASSWORD } }, undefined, 'signIn');
  const token = res.body.data?.signIn?.token;
  if (token === undefined) return undefined;
  tokens.set(index, token);
  return token;
}
