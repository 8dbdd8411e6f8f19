import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dashboard } from '../api/dashboard/dashboard.ts';
import { collect, errorCode, gql, http, signUp, sleep, until, wsClient, type Collected, type TestUser } from './helpers/client.ts';
import { createScratchDatabase, postgresAvailable } from './helpers/postgres.ts';
import { REDIS_TEST_URL, redisAvailable } from './helpers/redis.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const PUBLISH = `mutation ($input: [MetricUpdateInput!]!) { publishMetrics(input: $input) }`;
const DASHBOARD = `subscription ($keys: [String!]!) { dashboard(keys: $keys) { at updates { key value delta at labels { name value } } } }`;
const METRICS = `query ($keys: [String!]!) { metrics(keys: $keys) { key value at labels { name value } history(seconds: 60) { at value } } }`;

interface Batch {
  dashboard: { at: string; updates: { key: string; value: number; delta: number | null; at: string; labels: { name: string; value: string }[] }[] };
}

const PUBLISHER_EMAIL = `publisher-${process.pid}@example.test`;

async function signUpWithEmail(url: string, name: string, email: string): Promise<TestUser> {
  const data = await gql(url, `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id } } }`, {
    input: { email, name, password: 'correct horse battery' },
  });
  return { id: data.signUp.user.id, name, email, token: data.signUp.token };
}

const dashboardOf = (t: TestServer) => t.server.services.dashboard as Dashboard;

/** The last value seen per key across batches. */
function finalValues(batches: Batch[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of batches) for (const u of b.dashboard.updates) out[u.key] = u.value;
  return out;
}

describe('live dashboard', () => {
  let t: TestServer;
  let publisher: TestUser;
  let roleHolder: TestUser;
  let ana: TestUser;
  let ben: TestUser;
  const leftovers: { dispose(): unknown }[] = [];

  beforeAll(async () => {
    t = await startTestServer('pglite', { env: { METRICS_PUBLISHER_EMAILS: `someone@example.test, ${PUBLISHER_EMAIL.toUpperCase()}` } });
    [publisher, roleHolder, ana, ben] = await Promise.all([
      signUpWithEmail(t.url, 'Publisher', PUBLISHER_EMAIL),
      signUp(t.url, 'Feeder'),
      signUp(t.url, 'Ana'),
      signUp(t.url, 'Ben'),
    ]);
    await t.server.services.db.user.update({ where: { id: roleHolder.id }, data: { roles: { push: 'publisher' } } });
  });
  afterAll(async () => {
    for (const c of leftovers) await c.dispose();
    await t?.dispose();
  });

  it('refuses publishers without the role, and bad input', async () => {
    const update = [{ key: 'app.price', value: 1 }];
    const refused = await http(t.url, PUBLISH, { input: update }, ana.token);
    expect(errorCode(refused.body)).toBe('FORBIDDEN');
    const anonymous = await http(t.url, PUBLISH, { input: update });
    expect(errorCode(anonymous.body)).toBe('UNAUTHENTICATED');

    for (const input of [
      [{ key: 'server.connections', value: 1 }], // reserved namespace
      [{ key: 'price', value: 1 }], // not namespaced
      [{ key: `app.${'x'.repeat(200)}`, value: 1 }],
      [{ key: 'app.a b', value: 1 }],
      Array.from({ length: 1001 }, (_, i) => ({ key: `app.k${i}`, value: i })),
      [{ key: 'app.future', value: 1, at: new Date(Date.now() + 3_600_000).toISOString() }],
    ]) {
      const res = await http(t.url, PUBLISH, { input }, publisher.token);
      expect(errorCode(res.body), JSON.stringify(input).slice(0, 80)).toBe('BAD_USER_INPUT');
    }
    const tooMany = await http(t.url, METRICS, { keys: Array.from({ length: 51 }, (_, i) => `app.k${i}`) }, ana.token);
    expect(errorCode(tooMany.body)).toBe('BAD_USER_INPUT');

    // The role in the database grants publishing just like the config list.
    const ok = await gql(t.url, PUBLISH, { input: [{ key: 'app.role.check', value: 7, labels: [{ name: 'unit', value: 'pcs' }] }] }, roleHolder.token);
    expect(ok.publishMetrics).toBe(1);
  });

  it('merges 1,000 updates in one second into about 4 batches per key set, built once and shared', async () => {
    const keys = ['app.stock.acme', 'app.stock.globex', 'app.orders'];
    const anaWs = wsClient(t.wsUrl, ana.token);
    const benWs = wsClient(t.wsUrl, ben.token);
    leftovers.push(anaWs, benWs);
    const first = collect<Batch>(anaWs, DASHBOARD, { keys });
    const second = collect<Batch>(benWs, DASHBOARD, { keys: [...keys].reverse() }); // same set, other order
    const other = collect<Batch>(benWs, DASHBOARD, { keys: ['app.unrelated', 'server.nothing'] });
    const narrow = collect<Batch>(anaWs, DASHBOARD, { keys: ['app.stock.acme'] });
    await until(() => dashboardOf(t).stats().subscribers >= 4, 5000, () => 'dashboard subscriptions to register');
    const before = dashboardOf(t).stats();

    // 50 calls of 20 updates, one every 20 ms: 1,000 updates within a second.
    const calls: Promise<unknown>[] = [];
    const started = Date.now();
    let price = 100;
    for (let call = 0; call < 50; call++) {
      const wait = started + call * 20 - Date.now();
      if (wait > 0) await sleep(wait);
      const input = [];
      for (let i = 0; i < 20; i++) {
        price += 1;
        if (i % 4 === 0) input.push({ key: 'app.orders', value: 1, kind: 'COUNTER' });
        else if (i % 4 === 1) input.push({ key: 'app.stock.globex', value: price / 2, labels: [{ name: 'currency', value: 'USD' }] });
        else input.push({ key: 'app.stock.acme', value: price });
      }
      calls.push(gql(t.url, PUBLISH, { input }, publisher.token));
    }
    await Promise.all(calls);
    const publishMs = Date.now() - started;
    await sleep(700); // the last batch goes out within one interval
    const elapsed = (Date.now() - started) / 1000;

    const batches = first.values;
    console.log(
      `dashboard: 1000 updates published in ${publishMs} ms -> ${batches.length} batches (${(batches.length / elapsed).toFixed(1)}/s over ${elapsed.toFixed(2)} s); ` +
        `updates per batch: ${batches.map((b) => b.dashboard.updates.length).join(',')}`,
    );
    expect(publishMs).toBeLessThan(1500);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    expect(batches.length).toBeLessThanOrEqual(7);
    // At most one batch per 250 ms (a little slack for timer jitter).
    const times = batches.map((b) => Date.parse(b.dashboard.at));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(240);

    // The final values arrive: the latest gauge value wins, counter increments sum.
    const final = finalValues(batches);
    expect(final['app.stock.acme']).toBe(price);
    expect(final['app.stock.globex']).toBe((price - 2) / 2);
    expect(final['app.orders']).toBe(250);
    const deltas = batches.flatMap((b) => b.dashboard.updates.filter((u) => u.key === 'app.orders').map((u) => u.delta ?? 0));
    expect(deltas.reduce((a, b) => a + b, 0)).toBe(250);
    const globex = batches.flatMap((b) => b.dashboard.updates).find((u) => u.key === 'app.stock.globex');
    expect(globex?.labels).toEqual([{ name: 'currency', value: 'USD' }]);
    expect(globex?.delta).toBeNull();

    // Same keys, same batches: identical `at` and content, in the same order.
    await second.waitFor(batches.length);
    expect(second.values).toEqual(batches);
    // Built once per key set: the shared set's batches count once in batchesBuilt, twice in batchesDelivered.
    const after = dashboardOf(t).stats();
    const built = after.batchesBuilt - before.batchesBuilt;
    const delivered = after.batchesDelivered - before.batchesDelivered;
    expect(built).toBe(batches.length + narrow.values.length);
    expect(delivered).toBe(2 * batches.length + narrow.values.length);
    expect(after.keySets).toBe(3); // {acme, globex, orders}, {unrelated, nothing}, {acme}

    // Nothing a subscriber did not ask for.
    expect(other.values).toEqual([]);
    expect(narrow.values.length).toBeGreaterThan(0);
    expect(narrow.values.flatMap((b) => b.dashboard.updates.map((u) => u.key))).toEqual(narrow.values.map(() => 'app.stock.acme'));
    expect(finalValues(narrow.values)['app.stock.acme']).toBe(price);

    // The snapshot query paints the same values, with history for sparklines.
    const snapshot = await gql(t.url, METRICS, { keys: ['app.stock.acme', 'app.orders', 'app.never.published'] }, ana.token);
    expect(snapshot.metrics.map((m: any) => [m.key, m.value])).toEqual([
      ['app.stock.acme', price],
      ['app.orders', 250],
      ['app.never.published', null],
    ]);
    expect(snapshot.metrics[0].history.length).toBeGreaterThanOrEqual(1);
    expect(snapshot.metrics[0].history.at(-1).value).toBe(price);
    expect(snapshot.metrics[2].history).toEqual([]);

    for (const s of [first, second, other, narrow]) s.dispose();
    await until(() => dashboardOf(t).stats().keySets === 0, 5000, () => 'groups to be released');
  });

  it("reports the server's own live figures", async () => {
    const ws = wsClient(t.wsUrl, ana.token);
    leftovers.push(ws);
    const figures = collect<Batch>(ws, DASHBOARD, { keys: ['server.connections', 'server.onlineUsers', 'server.messagesPerSecond', 'server.activeRooms', 'server.deliveryLatencyMs'] });
    const room = await gql(t.url, `mutation { createRoom(input: {name: "Busy"}) { id } }`, {}, ben.token);
    const benWs = wsClient(t.wsUrl, ben.token);
    leftovers.push(benWs);
    const messages = collect(benWs, `subscription ($r: ID!) { messageAdded(roomId: $r) { seq } }`, { r: room.createRoom.id });
    await sleep(200);
    for (let i = 0; i < 5; i++) {
      await gql(t.url, `mutation ($i: SendMessageInput!) { sendMessage(input: $i) { seq } }`, { i: { roomId: room.createRoom.id, body: `m${i}`, clientId: `fig-${i}` } }, ben.token);
    }
    await messages.waitFor(5);
    await until(
      () => {
        const v = finalValues(figures.values);
        return (v['server.connections'] ?? 0) >= 2 && (v['server.onlineUsers'] ?? 0) >= 2 && (v['server.activeRooms'] ?? 0) >= 1;
      },
      5000,
      () => `figures: ${JSON.stringify(finalValues(figures.values))}`,
    );
    const snapshot = await gql(t.url, METRICS, { keys: ['server.messagesPerSecond', 'server.deliveryLatencyMs'] }, ana.token);
    expect(snapshot.metrics[0].history.some((p: any) => p.value > 0)).toBe(true);
    expect(snapshot.metrics[1].value).toBeGreaterThanOrEqual(0);
    figures.dispose();
    messages.dispose();
  });
});

const pgUp = await postgresAvailable();
const redisUp = pgUp && (await redisAvailable());

describe.skipIf(!redisUp)('live dashboard across processes (Redis)', () => {
  let a: TestServer;
  let b: TestServer;
  let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
  const leftovers: Collected<unknown>[] = [];

  beforeAll(async () => {
    scratch = await createScratchDatabase('dash');
    const env = { REDIS_URL: REDIS_TEST_URL, JWT_SECRET: 'x'.repeat(40), METRICS_PUBLISHER_EMAILS: PUBLISHER_EMAIL };
    a = await startTestServer('postgres', { scratch, env });
    b = await startTestServer('postgres', { scratch, env });
  });
  afterAll(async () => {
    for (const c of leftovers) c.dispose();
    await b?.dispose({ keep: true });
    await a?.dispose({ keep: true });
    await scratch?.drop();
  });

  it('batches next to the subscriber, whichever process the publisher reached', async () => {
    const publisher = await signUpWithEmail(a.url, 'Publisher', PUBLISHER_EMAIL);
    const viewer = await signUp(b.url, 'Viewer');
    const ws = wsClient(b.wsUrl, viewer.token);
    const sub = collect<Batch>(ws, DASHBOARD, { keys: ['app.remote', 'server.connections'] });
    leftovers.push(sub);
    await until(() => dashboardOf(b).stats().subscribers === 1, 5000);
    const builtOnA = dashboardOf(a).stats().batchesBuilt;
    for (let i = 1; i <= 100; i++) {
      await gql(a.url, PUBLISH, { input: [{ key: 'app.remote', value: i }] }, publisher.token);
    }
    await until(() => finalValues(sub.values)['app.remote'] === 100, 5000, () => `got ${JSON.stringify(finalValues(sub.values))}`);
    const remoteBatches = sub.values.filter((v) => v.dashboard.updates.some((u) => u.key === 'app.remote')).length;
    expect(remoteBatches).toBeLessThan(100 / 2);
    expect(dashboardOf(a).stats().batchesBuilt).toBe(builtOnA); // A has no subscriber: it builds nothing
    // Built-in figures of both processes combine: B's subscriber connection is counted.
    await until(() => (finalValues(sub.values)['server.connections'] ?? 0) >= 1, 5000);
    // A's snapshot knows the value too (every process applies every update).
    const snapshot = await gql(a.url, METRICS, { keys: ['app.remote'] }, publisher.token);
    expect(snapshot.metrics[0].value).toBe(100);
    ws.dispose();
  });
});
