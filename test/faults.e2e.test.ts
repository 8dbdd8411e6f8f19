import { randomBytes } from 'node:crypto';
import { CombinedError } from '@urql/core';
import { GraphQLError } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { dbUnavailableError, isDbUnavailable, maskErrorReportingDb } from '../api/ops/db-errors.ts';
import {
  createMemoryStorage,
  retryLaterMs,
  createRealtimeClient,
  type ChatMessage,
  type ConnectionState,
  type PendingMessage,
  type RealtimeClient,
} from '../web/src/client/index.ts';
import { gql, http, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { postgresServerInstalled, startOwnPostgres, type OwnPostgres } from './helpers/own-postgres.ts';
import { createScratchDatabase, postgresAvailable } from './helpers/postgres.ts';
import { killLeftovers, startApiProcess, type ApiProcess } from './helpers/processes.ts';
import { REDIS_TEST_URL, redisAvailable, redisServerInstalled, startOwnRedis, type OwnRedis } from './helpers/redis.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

// "Nothing lost" under real faults: a killed API process, a PostgreSQL restart.
// Real processes and services only. In CI every check below throws when its
// service or binary is missing, so this file fails there instead of skipping.
const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();
const pgInstalled = postgresServerInstalled();
const redisInstalled = redisServerInstalled();
if (!pgUp || !redisUp) console.warn('PostgreSQL or Redis unreachable: skipping the process-kill fault test.');

// As in test/client: the client under test behaves as in a browser, not as under NODE_ENV=test.
const originalNodeEnv = process.env.NODE_ENV;
process.env.NODE_ENV = 'development';
afterAll(() => {
  process.env.NODE_ENV = originalNodeEnv;
});

// The product schedule (0, 2, 5, 10, 30 s) scaled down, as in test/client.
const FAST = { schedule: [0, 250, 500, 1_000], jitterRatio: 0.1, minJitterMs: 50 };
const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { seq clientId } }`;

/** Printed for the issue note: what the client saw and how long recovery took. */
function report(name: string, outcome: Record<string, unknown>) {
  console.log(`[faults] ${name}\n${JSON.stringify(outcome, null, 2)}`);
}

/** A realtime client with its connection states, timestamped. */
function realtimeClient(url: string, wsUrl: string, user: TestUser) {
  const client = createRealtimeClient({
    url,
    wsUrl,
    getToken: () => user.token,
    storage: createMemoryStorage(),
    webSocketImpl: WebSocket,
    reconnect: FAST,
    requestTimeoutMs: 5_000,
  });
  const states: (ConnectionState & { at: number })[] = [];
  const record = (s: ConnectionState) => {
    const last = states.at(-1);
    if (!last || last.status !== s.status || last.queued !== s.queued) states.push({ ...s, at: Date.now() });
  };
  record(client.connection.getSnapshot());
  client.connection.subscribe(record);
  return Object.assign(client, { states });
}

const status = (c: RealtimeClient) => c.connection.getSnapshot().status;

/** Status changes from `since` on (ms after it), and the longest the offline queue got. */
function statusTimeline(states: (ConnectionState & { at: number })[], since: number) {
  const after = states.filter((s) => s.at >= since);
  const changes = after.filter((s, i) => i === 0 || s.status !== after[i - 1]!.status).map((s) => `${s.at - since}ms ${s.status}`);
  return { statusChanges: changes, maxQueued: Math.max(0, ...after.map((s) => s.queued)) };
}

/**
 * Sends `count` messages from `user` over plain HTTP at `perSecond`: each
 * leaves on its schedule whether or not the previous one was answered, as
 * many users typing at once would; `retryOnError` resends a failed one with
 * the same clientId after 200 ms, as a well-behaved client does.
 */
async function steadyStream(
  url: () => string,
  user: TestUser,
  roomId: string,
  opts: { count: number; perSecond: number; prefix: string; onDispatch?: (i: number) => void; retryOnError?: boolean; maxInFlight?: number },
) {
  const errors: { i: number; status: number; code: unknown; message: string; ms: number }[] = [];
  const started = Date.now();
  const sendOne = async (i: number) => {
    const input = { roomId, body: `${opts.prefix}-${i}`, clientId: `${opts.prefix}-${i}` };
    for (;;) {
      const t0 = Date.now();
      const res = await http(url(), SEND, { input }, user.token).catch((error: Error) => ({
        status: 0,
        body: { errors: [{ message: String(error.cause ?? error), extensions: {} as Record<string, unknown> }] },
      }));
      const error = res.body.errors?.[0];
      if (!error) return;
      errors.push({ i, status: res.status, code: error.extensions?.code, message: error.message, ms: Date.now() - t0 });
      if (!opts.retryOnError) throw new Error(`${opts.prefix}-${i}: ${JSON.stringify(res.body.errors)}`);
      await sleep(200);
    }
  };
  const all: Promise<void>[] = [];
  const inFlight = new Set<Promise<void>>();
  for (let i = 1; i <= opts.count; i++) {
    const due = started + ((i - 1) * 1_000) / opts.perSecond;
    if (due > Date.now()) await sleep(due - Date.now());
    // A few senders at once, not an unbounded backlog: on a small machine the
    // API would otherwise queue seconds of work and every timing would show that.
    while (inFlight.size >= (opts.maxInFlight ?? 4)) await Promise.race(inFlight);
    const p = sendOne(i).finally(() => inFlight.delete(p));
    inFlight.add(p);
    all.push(p);
    opts.onDispatch?.(i);
  }
  await Promise.all(all);
  return { errors, ms: Date.now() - started };
}

/** Rows per clientId in a room, straight from PostgreSQL. */
async function rowsByClientId(databaseUrl: string, roomId: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ clientId: string; n: string }>(
      `SELECT "clientId", count(*) AS n FROM "Message" WHERE "roomId" = $1 GROUP BY "clientId"`,
      [roomId],
    );
    return new Map(rows.map((r) => [r.clientId, Number(r.n)]));
  } finally {
    await client.end();
  }
}

/** Every message exactly once, in seq order, without gaps. */
function expectExactlyOnceInOrder(seen: ChatMessage[], stored: Map<string, number>) {
  expect(seen.map((m) => m.seq)).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
  expect(new Set(seen.map((m) => m.clientId)).size).toBe(seen.length);
  expect(new Set(seen.map((m) => m.clientId))).toEqual(new Set(stored.keys()));
  expect([...stored.values()].every((n) => n === 1)).toBe(true);
}

describe('what a database outage looks like to clients', () => {
  // Shapes seen from Prisma 7 + @prisma/adapter-pg with PostgreSQL stopped or restarting.
  const prisma = (code: string | undefined, message: string, cause?: Record<string, unknown>) =>
    Object.assign(new Error(message), { name: code ? 'PrismaClientKnownRequestError' : 'PrismaClientUnknownRequestError', code, meta: cause ? { driverAdapterError: { name: 'DriverAdapterError', cause } } : undefined });

  it('maps an unreachable database to a retryable UNAVAILABLE, and nothing else', () => {
    const refused = prisma('P1001', "Can't reach database server at 127.0.0.1:5432", { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 });
    expect(isDbUnavailable(refused)).toBe(true);
    expect(isDbUnavailable(new GraphQLError('x', { originalError: refused }))).toBe(true);
    expect(isDbUnavailable(prisma('P1017', 'Server has closed the connection.', { kind: 'ConnectionClosed' }))).toBe(true);
    expect(isDbUnavailable(prisma(undefined, 'terminating connection due to administrator command', { kind: 'postgres', code: '57P01' }))).toBe(true);
    expect(isDbUnavailable(Object.assign(new Error('Connection terminated unexpectedly'), {}))).toBe(true);
    // A failing query, a missing database or a plain bug stays a masked unexpected error.
    expect(isDbUnavailable(prisma('P2002', 'Unique constraint failed', { kind: 'UniqueConstraintViolation' }))).toBe(false);
    expect(isDbUnavailable(prisma('P1003', 'Database `x` does not exist', { kind: 'DatabaseDoesNotExist' }))).toBe(false);
    expect(isDbUnavailable(new Error('ECONNREFUSED in some other library'))).toBe(false);
    expect(isDbUnavailable(new GraphQLError('Redis down', { extensions: { code: 'UNAVAILABLE' } }))).toBe(false);

    let reported = 0;
    const masked = maskErrorReportingDb(() => reported++)(refused, 'Unexpected error.', false) as GraphQLError;
    expect(masked.extensions).toEqual({ code: 'UNAVAILABLE', retryable: true });
    expect(masked.message).toBe(dbUnavailableError(refused).message);
    expect(reported).toBe(1);
  });

  it('the client keeps a retryable UNAVAILABLE mutation queued, on its reconnect schedule', () => {
    const answer = (extensions: Record<string, unknown>) => new CombinedError({ graphQLErrors: [new GraphQLError('x', { extensions })] });
    expect(retryLaterMs(answer({ code: 'UNAVAILABLE', retryable: true }))).toBe(0);
    expect(retryLaterMs(answer({ code: 'UNAVAILABLE', retryable: true, retryAfter: 3 }))).toBe(3_000);
    expect(retryLaterMs(answer({ code: 'UNAVAILABLE' }))).toBeUndefined();
    expect(retryLaterMs(answer({ code: 'INTERNAL_SERVER_ERROR' }))).toBeUndefined();
  });
});

describe.skipIf(!pgUp || !redisUp)('fault: the API process a client is connected to is killed while messages flow', () => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let a: ApiProcess | undefined;
  let b: ApiProcess | undefined;
  let proxy: TcpProxy | undefined;
  let client: ReturnType<typeof realtimeClient> | undefined;

  beforeAll(async () => {
    scratch = await createScratchDatabase('faults');
    const env = {
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS_TEST_URL,
      // Other suites (and other runs) on the same Redis see none of these events.
      REDIS_PREFIX: `faults-${randomBytes(4).toString('hex')}:`,
      JWT_SECRET: randomBytes(32).toString('hex'),
      RATE_LIMITS: 'off',
    };
    [a, b] = await Promise.all([startApiProcess('api-a', env), startApiProcess('api-b', env)]);
  }, 120_000);

  afterAll(async () => {
    await client?.dispose();
    await proxy?.close();
    await a?.dispose();
    await b?.dispose();
    await killLeftovers();
    await scratch?.drop();
  });

  it('SIGKILL of process A mid-stream, proxy switched to B: the client ends with every message once, in order, and its own stored once', async () => {
    const [ana, ben] = await Promise.all([signUp(b!.url, 'Ana'), signUp(b!.url, 'Ben')]);
    const roomId = (await gql(b!.url, CREATE_ROOM, { input: { name: 'Kill A', memberIds: [ben.id] } }, ana.token)).createRoom.id as string;

    let sendRequests = 0;
    const wire: { at: number; what: string }[] = [];
    proxy = await startTcpProxy(a!.url, {
      tap: (chunk, direction) => {
        if (direction === 'toServer' && chunk.includes('mutation SendMessage')) {
          sendRequests++;
          wire.push({ at: Date.now(), what: `req ${/"clientId":"(ben-\d+)"/.exec(chunk.toString())?.[1]}` });
        }
        if (direction === 'toClient' && chunk.includes('"sendMessage"')) wire.push({ at: Date.now(), what: `res ${/"clientId":"(ben-\d+)"/.exec(chunk.toString())?.[1]}` });
      },
    });
    client = realtimeClient(proxy.url, proxy.wsUrl, ben);
    const seen: ChatMessage[] = [];
    client.subscribeMessages(roomId, (m) => seen.push(m), { afterSeq: 0 });
    await until(() => status(client!) === 'connected', 10_000);
    await gql(b!.url, SEND, { input: { roomId, body: 'warm-up', clientId: 'warm-up' } }, ana.token);
    await until(() => seen.length === 1, 10_000, () => 'the subscription through A is live');

    const ANA_COUNT = 150;
    const BEN_COUNT = 40;
    let killedAt = 0;
    let anaSentAtKill = 0;
    let benSentAtKill = 0;
    const kill = async () => {
      killedAt = Date.now();
      await a!.kill('SIGKILL');
      // What a load balancer does once A fails its checks: new connections go to B.
      proxy!.setTarget(b!.url, { cutOpen: true });
    };
    let killing: Promise<void> | undefined;

    // Ana: 150 messages at 30/s straight to B. Ben: 40 of his own through the proxy, 8/s.
    const anaStream = steadyStream(() => b!.url, ana, roomId, {
      count: ANA_COUNT,
      perSecond: 30,
      prefix: 'ana',
      onDispatch: (i) => {
        if (i === 60) {
          anaSentAtKill = i;
          benSentAtKill = pending.length;
          killing = kill();
        }
      },
    });
    const pending: PendingMessage[] = [];
    const benStream = (async () => {
      for (let i = 1; i <= BEN_COUNT; i++) {
        const p = client!.sendMessage({ roomId, body: `ben-${i}`, clientId: `ben-${i}` });
        p.sent.catch(() => {}); // awaited below; a failure must not surface as unhandled first
        pending.push(p);
        await sleep(125);
      }
    })();
    const [{ ms: anaMs }] = await Promise.all([anaStream, benStream]);
    await killing;
    const sent = await Promise.all(pending.map((p) => p.sent));
    const allSentAt = Date.now();
    const total = 1 + ANA_COUNT + BEN_COUNT;
    await until(() => seen.length >= total, 30_000, () => `client got ${seen.length} of ${total}`);
    const allSeenAt = Date.now();
    await sleep(500); // nothing more may trickle in
    const lostAt = client.states.find((s) => s.at >= killedAt && s.status !== 'connected')?.at ?? Infinity;
    const reconnectedAt = client.states.find((s) => s.at > lostAt && s.status === 'connected')?.at;

    const stored = await rowsByClientId(scratch!.url, roomId);
    report('kill API process A, proxy to B', {
      anaRatePerSecond: Math.round((ANA_COUNT / anaMs) * 1000 * 10) / 10,
      messages: { fromAnaViaB: ANA_COUNT, fromBenViaClient: BEN_COUNT, seenByBen: seen.length, storedRows: [...stored.values()].reduce((x, y) => x + y, 0) },
      atKill: { anaSent: anaSentAtKill, benQueuedOrSent: benSentAtKill },
      benSendRequestsThroughProxy: sendRequests,
      benResends: sendRequests - BEN_COUNT,
      clientAfterKill: statusTimeline(client.states, killedAt),
      msKillToSocketLost: Number.isFinite(lostAt) ? lostAt - killedAt : null,
      msKillToReconnected: reconnectedAt ? reconnectedAt - killedAt : null,
      msKillToAllBenSendsAnswered: allSentAt - killedAt,
      msKillToEverythingDelivered: allSeenAt - killedAt,
      proxyConnections: proxy.accepted,
      // Ben's sendMessage requests and responses on the wire around the kill.
      benWireAroundKill: wire.filter((w) => w.at >= killedAt - 400 && w.at <= killedAt + 1_000).map((w) => `${w.at - killedAt}ms ${w.what}`),
    });

    expect(sent.map((m) => m.clientId)).toEqual(Array.from({ length: BEN_COUNT }, (_, i) => `ben-${i + 1}`));
    expect(seen).toHaveLength(total);
    expectExactlyOnceInOrder(seen, stored);
    for (let i = 1; i <= BEN_COUNT; i++) expect(stored.get(`ben-${i}`), `ben-${i}`).toBe(1);
    // Ben's own messages keep their order (the outbox sends one at a time).
    const benSeqs = seen.filter((m) => m.clientId?.startsWith('ben-')).map((m) => m.clientId);
    expect(benSeqs).toEqual(Array.from({ length: BEN_COUNT }, (_, i) => `ben-${i + 1}`));
    expect(reconnectedAt).toBeDefined();
    expect(status(client)).toBe('connected');
    expect(client.connection.getSnapshot().queued).toBe(0);
  }, 60_000);
});

describe.skipIf(!pgInstalled)('fault: PostgreSQL restarts under a running API', () => {
  let db: OwnPostgres | undefined;
  let api: ApiProcess | undefined;
  const disposers: (() => unknown)[] = [];

  beforeAll(async () => {
    db = await startOwnPostgres('chat');
    api = await startApiProcess('api-pg', { DATABASE_URL: db.url, RATE_LIMITS: 'off', JWT_SECRET: randomBytes(32).toString('hex') });
  }, 120_000);

  afterAll(async () => {
    for (const d of disposers.reverse()) await Promise.resolve(d()).catch(() => {});
    await api?.dispose();
    await killLeftovers();
    await db?.dispose();
  });

  it('while it is down mutations get a retryable UNAVAILABLE, the client keeps them queued, and after the restart each is stored once and delivered in order', async () => {
    const url = api!.url;
    const readyz = async () => {
      const res = await fetch(url.replace('/graphql', '/readyz'));
      return { status: res.status, body: (await res.json()) as { checks?: { db?: string } } };
    };
    const [ana, ben] = await Promise.all([signUp(url, 'Ana'), signUp(url, 'Ben')]);
    const roomId = (await gql(url, CREATE_ROOM, { input: { name: 'PG restart', memberIds: [ben.id] } }, ana.token)).createRoom.id as string;

    const client = realtimeClient(url, api!.wsUrl, ben);
    disposers.push(() => client.dispose());
    const seen: ChatMessage[] = [];
    client.subscribeMessages(roomId, (m) => seen.push(m), { afterSeq: 0 });
    await until(() => status(client) === 'connected', 10_000);
    await gql(url, SEND, { input: { roomId, body: 'warm-up', clientId: 'warm-up' } }, ana.token);
    await until(() => seen.length === 1, 10_000, () => 'the subscription is live');

    const OUTAGE_MS = 3_000;
    let stoppedAt = 0;
    let startedAt = 0;
    const outage = (async () => {
      await sleep(1_500);
      stoppedAt = Date.now();
      await db!.stopImmediate();
    })();

    // Ana sends 100 over plain HTTP at 20/s and retries a failure with the same clientId;
    // Ben sends 40 through the client at ~8/s.
    const anaStream = steadyStream(() => url, ana, roomId, { count: 100, perSecond: 20, prefix: 'ana', retryOnError: true });
    const pending: PendingMessage[] = [];
    const benStream = (async () => {
      for (let i = 1; i <= 40; i++) {
        const p = client.sendMessage({ roomId, body: `ben-${i}`, clientId: `ben-${i}` });
        p.sent.catch(() => {}); // awaited below; a failure must not surface as unhandled first
        pending.push(p);
        await sleep(125);
      }
    })();

    await outage;
    const stoppedTook = Date.now() - stoppedAt;
    // What a request gets while PostgreSQL is down.
    const probeStart = Date.now();
    const probe = await http(url, SEND, { input: { roomId, body: 'probe', clientId: 'probe' } }, ana.token);
    const probeMs = Date.now() - probeStart;
    const readyDuring = await readyz();
    // A new subscription with a replay (reads the database) on the open socket,
    // and a new WebSocket connection (its connection_init reads the user).
    let lateError: unknown;
    // (afterSeq 1, not 0: the same variables would share the first subscription's urql operation.)
    const late = client.subscribeMessages(roomId, () => {}, { afterSeq: 1, onError: (e) => (lateError = e) });
    disposers.push(() => late.unsubscribe());
    let newSocketClose: { code: number; reason: string } | undefined;
    const probeWs = wsClient(api!.wsUrl, ana.token, {
      on: { closed: (e) => (newSocketClose ??= { code: (e as CloseEvent).code, reason: (e as CloseEvent).reason }) },
      onNonLazyError: () => {},
    });
    disposers.push(() => probeWs.dispose());
    await until(
      () => lateError !== undefined && newSocketClose !== undefined,
      10_000,
      () => `late subscription and new socket settle: lateError=${String(lateError)} newSocketClose=${JSON.stringify(newSocketClose)}`,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- api:\n${api!.output().slice(-3000)}`);
    });
    const queuedDuring = client.connection.getSnapshot().queued;
    const statusDuring = status(client);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));

    startedAt = Date.now();
    await db!.start();
    const pgStartMs = Date.now() - startedAt;
    let readyAgainAt = 0;
    while (Date.now() - startedAt < 20_000) {
      if ((await readyz()).status === 200) {
        readyAgainAt = Date.now();
        break;
      }
      await sleep(50);
    }
    const [{ errors: anaErrors, ms: anaMs }] = await Promise.all([anaStream, benStream]);
    const sent = await Promise.all(pending.map((p) => p.sent));
    await until(() => client.connection.getSnapshot().queued === 0, 20_000, () => `queue still ${client.connection.getSnapshot().queued}`);
    const queueEmptyAt = Date.now();
    const expectedTotal = 1 + 100 + 40;
    // Reported before asserting: the numbers matter most when this fails.
    const allSeenAt = await until(() => seen.length >= expectedTotal, 20_000).then(
      () => Date.now(),
      () => 0,
    );
    await sleep(500);

    const stored = await rowsByClientId(db!.url, roomId);
    stored.delete('probe'); // the probe failed; it must not be stored either (checked below)
    const socketLeftConnected = client.states.some((s) => s.at > stoppedAt && s.status !== 'connected');
    const lateCodes = (lateError as { graphQLErrors?: { extensions?: { code?: unknown } }[] } | undefined)?.graphQLErrors?.map((e) => e.extensions?.code);
    report('PostgreSQL stop -m immediate, restart after ~3 s', {
      msStopImmediate: stoppedTook,
      sendMessageWhileDown: { httpStatus: probe.status, ms: probeMs, errors: probe.body.errors },
      readyzWhileDown: readyDuring,
      anaHttpErrorsDuringOutage: {
        count: anaErrors.length,
        byCode: anaErrors.reduce<Record<string, number>>((acc, e) => ({ ...acc, [String(e.code)]: (acc[String(e.code)] ?? 0) + 1 }), {}),
        distinctMessages: [...new Set(anaErrors.map((e) => e.message))],
        slowestMs: Math.max(0, ...anaErrors.map((e) => e.ms)),
      },
      benClientWhileDown: { status: statusDuring, queued: queuedDuring },
      newSubscriptionWhileDown: { onErrorCodes: lateCodes ?? String(lateError) },
      newWebSocketWhileDown: newSocketClose,
      openSubscription: socketLeftConnected ? 'the socket dropped and the subscription resumed' : 'survived: the socket stayed connected throughout',
      clientAfterStop: statusTimeline(client.states, stoppedAt),
      msPgStart: pgStartMs,
      msPgStartToReadyz200: readyAgainAt ? readyAgainAt - startedAt : null,
      msPgStartToClientQueueEmpty: queueEmptyAt - startedAt,
      msPgStartToAllDelivered: allSeenAt ? allSeenAt - startedAt : `not within 20 s (${seen.length} of ${expectedTotal})`,
      anaRatePerSecond: Math.round((100 / anaMs) * 1000 * 10) / 10,
      storedRows: [...stored.values()].reduce((x, y) => x + y, 0),
      delivered: seen.length,
    });

    // While down: a clear, retryable error, and readiness says why.
    expect(probe.body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(probe.body.errors?.[0]?.message).not.toMatch(/Unexpected error/);
    expect(readyDuring.status).toBe(503);
    expect(['failed', 'timeout']).toContain(readyDuring.body.checks?.db);
    // Nothing Ana saw during the outage was a masked "Unexpected error".
    expect(anaErrors.length).toBeGreaterThan(0);
    expect(anaErrors.filter((e) => e.code !== 'UNAVAILABLE')).toEqual([]);
    expect(queuedDuring).toBeGreaterThan(0);
    // A subscription started while the database is down ends with the same
    // retryable error (the client calls onError; resubscribing is the caller's job).
    expect(lateCodes).toContain('UNAVAILABLE');
    // A new WebSocket cannot read its user at connection_init: closed with 1013 (Try Again Later), which the client retries.
    expect(newSocketClose?.code).toBe(1013);
    // After: recovered without restarting the API, each message once and in order.
    expect(readyAgainAt).toBeGreaterThan(0);
    expect(sent.map((m) => m.clientId)).toEqual(Array.from({ length: 40 }, (_, i) => `ben-${i + 1}`));
    expect((await rowsByClientId(db!.url, roomId)).get('probe')).toBeUndefined();
    expect(seen).toHaveLength(expectedTotal);
    expectExactlyOnceInOrder(seen, stored);
    expect(seen.filter((m) => m.clientId?.startsWith('ben-')).map((m) => m.clientId)).toEqual(Array.from({ length: 40 }, (_, i) => `ben-${i + 1}`));
    expect(api!.running).toBe(true);
  }, 60_000);
});

describe.skipIf(!pgUp || !redisInstalled)('fault: Redis restarts under a running API, seen through the client', () => {
  let redis: OwnRedis | undefined;
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let api: ApiProcess | undefined;
  const disposers: (() => unknown)[] = [];

  beforeAll(async () => {
    [redis, scratch] = await Promise.all([startOwnRedis(), createScratchDatabase('faultsredis')]);
    api = await startApiProcess('api-redis', {
      DATABASE_URL: scratch.url,
      REDIS_URL: redis.url,
      RATE_LIMITS: 'off',
      JWT_SECRET: randomBytes(32).toString('hex'),
    });
  }, 120_000);

  afterAll(async () => {
    for (const d of disposers.reverse()) await Promise.resolve(d()).catch(() => {});
    await api?.dispose();
    await killLeftovers();
    await redis?.dispose();
    await scratch?.drop();
  });

  it('SIGKILL of Redis mid-stream, restarted 2 s later: every message once, in order, each stored once', async () => {
    const url = api!.url;
    const [ana, ben] = await Promise.all([signUp(url, 'Ana'), signUp(url, 'Ben')]);
    const roomId = (await gql(url, CREATE_ROOM, { input: { name: 'Redis restart', memberIds: [ben.id] } }, ana.token)).createRoom.id as string;
    const client = realtimeClient(url, api!.wsUrl, ben);
    disposers.push(() => client.dispose());
    const seen: ChatMessage[] = [];
    client.subscribeMessages(roomId, (m) => seen.push(m), { afterSeq: 0 });
    await until(() => status(client) === 'connected', 10_000);
    await gql(url, SEND, { input: { roomId, body: 'warm-up', clientId: 'warm-up' } }, ana.token);
    await until(() => seen.length === 1, 10_000, () => 'the subscription is live');

    let killedAt = 0;
    let seenAtKill = 0;
    const outage = (async () => {
      await sleep(1_500);
      killedAt = Date.now();
      seenAtKill = seen.length;
      await redis!.kill();
    })();
    const anaStream = steadyStream(() => url, ana, roomId, { count: 80, perSecond: 20, prefix: 'ana', retryOnError: true });
    const pending: PendingMessage[] = [];
    const benStream = (async () => {
      for (let i = 1; i <= 30; i++) {
        const p = client.sendMessage({ roomId, body: `ben-${i}`, clientId: `ben-${i}` });
        p.sent.catch(() => {});
        pending.push(p);
        await sleep(125);
      }
    })();
    await outage;
    await sleep(500);
    const readyDuring = await fetch(url.replace('/graphql', '/readyz')).then(async (r) => ({ status: r.status, body: await r.json() }));
    const seenDuring = seen.length;
    await sleep(Math.max(0, 2_000 - (Date.now() - killedAt)));
    const seenBeforeRestart = seen.length;
    const restartAt = Date.now();
    await redis!.restart();
    const [{ errors: anaErrors }] = await Promise.all([anaStream, benStream]);
    const sent = await Promise.all(pending.map((p) => p.sent));
    const allAnsweredAt = Date.now();
    const expectedTotal = 1 + 80 + 30;
    const allSeenAt = await until(() => seen.length >= expectedTotal, 20_000).then(
      () => Date.now(),
      () => 0,
    );
    await sleep(500);
    const stored = await rowsByClientId(scratch!.url, roomId);
    report('Redis SIGKILL, restarted after 2 s (client on the API process)', {
      readyzWhileDown: readyDuring,
      deliveredToClient: { atKill: seenAtKill, halfASecondLater: seenDuring, justBeforeRestart: seenBeforeRestart },
      anaHttpErrors: anaErrors.length ? anaErrors : 'none: messages are stored and acknowledged without Redis',
      client: statusTimeline(client.states, killedAt),
      msRestartToAllSendsAnswered: allAnsweredAt - restartAt,
      msRestartToAllDelivered: allSeenAt ? allSeenAt - restartAt : `not within 20 s (${seen.length} of ${expectedTotal})`,
      storedRows: [...stored.values()].reduce((x, y) => x + y, 0),
      delivered: seen.length,
    });

    expect(sent.map((m) => m.clientId)).toEqual(Array.from({ length: 30 }, (_, i) => `ben-${i + 1}`));
    expect(seen).toHaveLength(expectedTotal);
    expectExactlyOnceInOrder(seen, stored);
    expect(seen.filter((m) => m.clientId?.startsWith('ben-')).map((m) => m.clientId)).toEqual(Array.from({ length: 30 }, (_, i) => `ben-${i + 1}`));
  }, 60_000);
});
