import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, gql, http, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { createScratchDatabase, postgresAvailable } from './helpers/postgres.ts';
import { killLeftovers, startApiProcess, type ApiProcess } from './helpers/processes.ts';
import { redisServerInstalled, startOwnRedis, type OwnRedis } from './helpers/redis.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

// Both throw in CI when missing, so CI cannot silently skip these cases.
const pgUp = await postgresAvailable();
const canRunRedis = redisServerInstalled();
if (!pgUp) console.warn('PostgreSQL unreachable: skipping the PostgreSQL operations cases.');

const P = 'realtime_api_';
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const SUBSCRIBE = `subscription ($roomId: ID!, $afterSeq: Int) { messageAdded(roomId: $roomId, afterSeq: $afterSeq) { seq body createdAt } }`;

/** The base URL (http://host:port) of a GraphQL endpoint URL. */
const origin = (graphqlUrl: string) => new URL(graphqlUrl).origin;

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** The value of one sample in Prometheus text format, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ? match[2].split(',') : [];
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) return Number(match[3]);
  }
  return undefined;
}

describe('health and readiness on the embedded default', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('pglite');
  });
  afterAll(() => t?.dispose());

  it('answers /healthz and /readyz with 200', async () => {
    expect(await getJson(`${origin(t.url)}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await getJson(`${origin(t.url)}/readyz`)).toEqual({
      status: 200,
      body: { status: 'ready', checks: { db: 'ok', pubsub: 'in-process' } },
    });
  });
});

describe.skipIf(!canRunRedis)('readiness follows Redis', () => {
  let redis: OwnRedis;
  let t: TestServer;
  beforeAll(async () => {
    redis = await startOwnRedis();
    t = await startTestServer('pglite', { env: { REDIS_URL: redis.url } });
  }, 60_000);
  afterAll(async () => {
    await t?.dispose();
    await redis?.dispose();
  });

  it('turns 503 naming the pub/sub when Redis dies, and 200 again when it is back', async () => {
    const readyz = `${origin(t.url)}/readyz`;
    expect(await getJson(readyz)).toEqual({ status: 200, body: { status: 'ready', checks: { db: 'ok', pubsub: 'ok' } } });

    await redis.kill();
    const killedAt = Date.now();
    let last = await getJson(readyz);
    while (last.status !== 503 && Date.now() - killedAt < 10_000) {
      await sleep(50);
      last = await getJson(readyz);
    }
    expect(last.status).toBe(503);
    expect(last.body.status).toBe('not ready');
    expect(last.body.checks.db).toBe('ok');
    expect(['failed', 'timeout']).toContain(last.body.checks.pubsub);
    console.info(`readiness turned 503 ${Date.now() - killedAt} ms after Redis was killed`);

    // Each failed reconnect attempt is an error; the first comes within the first backoff step.
    const redisErrors = async () => {
      const metrics = await (await fetch(`${origin(t.url)}/metrics`)).text();
      return (sample(metrics, `${P}redis_errors_total`, { connection: 'publisher' }) ?? 0) + (sample(metrics, `${P}redis_errors_total`, { connection: 'subscriber' }) ?? 0);
    };
    let errors = await redisErrors();
    for (const until = Date.now() + 5000; errors === 0 && Date.now() < until; errors = await redisErrors()) await sleep(50);
    expect(errors).toBeGreaterThan(0);

    await redis.restart();
    const deadline = Date.now() + 15_000;
    while (last.status !== 200 && Date.now() < deadline) {
      await sleep(100);
      last = await getJson(readyz);
    }
    expect(last).toEqual({ status: 200, body: { status: 'ready', checks: { db: 'ok', pubsub: 'ok' } } });
  }, 60_000);
});

describe.skipIf(!pgUp)('readiness follows PostgreSQL', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('postgres');
  }, 60_000);
  afterAll(() => t?.dispose());

  it('turns 503 naming the database when it goes away, and counts database errors', async () => {
    const readyz = `${origin(t.url)}/readyz`;
    const ana = await signUp(t.url, 'Ana');
    expect(await getJson(readyz)).toEqual({ status: 200, body: { status: 'ready', checks: { db: 'ok', pubsub: 'in-process' } } });

    await t.scratch?.drop(); // WITH (FORCE): the server's connections are cut, and reconnecting fails
    const { status, body } = await getJson(readyz);
    expect(status).toBe(503);
    expect(body).toEqual({ status: 'not ready', checks: { db: expect.stringMatching(/^(failed|timeout)$/), pubsub: 'in-process' } });

    const query = await http(t.url, `query { rooms { id } }`, {}, ana.token);
    expect(query.body.errors?.length).toBeGreaterThan(0);
    const metrics = await (await fetch(`${origin(t.url)}/metrics`)).text();
    // At least the readiness probe and the query.
    expect(sample(metrics, `${P}db_errors_total`)).toBeGreaterThanOrEqual(2);
  }, 30_000);
});

describe('metrics', () => {
  const token = randomBytes(24).toString('hex');
  let t: TestServer;
  let other: TestServer;
  const clients: Client[] = [];

  const scrape = async (server = t) => {
    const res = await fetch(`${origin(server.url)}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return res.text();
  };

  beforeAll(async () => {
    // Two servers in one process: each has its own registry, so neither
    // start-up fails on a duplicate metric name and their figures stay apart.
    [t, other] = await Promise.all([startTestServer('pglite', { env: { METRICS_TOKEN: token } }), startTestServer('pglite', { env: { METRICS_TOKEN: token } })]);
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await t?.dispose();
    await other?.dispose();
  });

  it('requires the bearer token when METRICS_TOKEN is set', async () => {
    const res = await fetch(`${origin(t.url)}/metrics`);
    expect(res.status).toBe(401);
    const wrong = await fetch(`${origin(t.url)}/metrics`, { headers: { authorization: 'Bearer not-the-token' } });
    expect(wrong.status).toBe(401);
  });

  it('counts connections, subscriptions, published and delivered messages, and delivery latency', async () => {
    const ana = await signUp(t.url, 'Ana');
    const roomId = (await gql(t.url, CREATE_ROOM, { input: { name: 'Metrics' } }, ana.token)).createRoom.id as string;
    const before = await scrape();
    expect(sample(before, `${P}websocket_connections`)).toBe(0);
    expect(sample(before, `${P}messages_published_total`)).toBe(0);
    // Process metrics, prefixed.
    expect(sample(before, `${P}nodejs_eventloop_lag_seconds`)).toBeGreaterThanOrEqual(0);
    expect(sample(before, `${P}process_cpu_user_seconds_total`)).toBeGreaterThan(0);

    const first = wsClient(t.wsUrl, ana.token);
    const second = wsClient(t.wsUrl, ana.token);
    clients.push(first, second);
    // afterSeq 0: a message sent before the live subscription is in place is replayed, so exactly 3 arrive.
    const seen = collect(first, SUBSCRIBE, { roomId, afterSeq: 0 });
    let text = '';
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      text = await scrape();
      if (sample(text, `${P}active_subscriptions`, { operation: 'messageAdded' }) === 1 && sample(text, `${P}websocket_connections`) === 2) break;
      await sleep(25);
    }

    for (const body of ['one', 'two', 'three']) {
      await gql(t.url, SEND, { input: { roomId, body, clientId: `metrics-${body}` } }, ana.token);
    }
    // A retry with a used clientId stores and publishes nothing.
    await gql(t.url, SEND, { input: { roomId, body: 'one', clientId: 'metrics-one' } }, ana.token);
    await seen.waitFor(3);
    await sleep(100);

    text = await scrape();
    expect(sample(text, `${P}websocket_connections`)).toBe(2);
    expect(sample(text, `${P}active_subscriptions`, { operation: 'messageAdded' })).toBe(1);
    expect(sample(text, `${P}messages_published_total`)).toBe(3);
    expect(sample(text, `${P}messages_delivered_total`)).toBe(3);
    expect(sample(text, `${P}message_delivery_latency_seconds_count`)).toBe(3);
    const latencySum = sample(text, `${P}message_delivery_latency_seconds_sum`) ?? NaN;
    expect(latencySum).toBeGreaterThanOrEqual(0);
    expect(latencySum).toBeLessThan(3 * 5);
    expect(sample(text, `${P}message_delivery_latency_seconds_bucket`, { le: '10' })).toBe(3);
    expect(sample(text, `${P}db_errors_total`)).toBe(0);
    console.info(`mean delivery latency in process: ${((latencySum / 3) * 1000).toFixed(1)} ms`);

    // The other server saw none of it.
    const elsewhere = await scrape(other);
    expect(sample(elsewhere, `${P}messages_published_total`)).toBe(0);
    expect(sample(elsewhere, `${P}websocket_connections`)).toBe(0);

    // Ending the subscription and a connection moves the gauges back.
    seen.dispose();
    await second.dispose();
    const settled = Date.now() + 10_000;
    while (Date.now() < settled) {
      text = await scrape();
      if (sample(text, `${P}active_subscriptions`, { operation: 'messageAdded' }) === 0 && sample(text, `${P}websocket_connections`) === 1) break;
      await sleep(25);
    }
    expect(sample(text, `${P}active_subscriptions`, { operation: 'messageAdded' })).toBe(0);
    expect(sample(text, `${P}websocket_connections`)).toBe(1);
  }, 30_000);
});

describe.skipIf(!pgUp)('graceful shutdown of a real process on SIGTERM', () => {
  const GRACE_MS = 5000;
  const DELAY_MS = 300;
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let env: Record<string, string>;
  const processes: ApiProcess[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    scratch = await createScratchDatabase('drain');
    env = {
      DATABASE_URL: scratch.url,
      JWT_SECRET: randomBytes(32).toString('hex'),
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      SHUTDOWN_DELAY_MS: String(DELAY_MS),
    };
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    for (const p of processes) await p.dispose();
    await killLeftovers();
    await scratch?.drop();
  });

  const start = async (name: string) => {
    const p = await startApiProcess(name, env);
    processes.push(p);
    return p;
  };

  /** Holds the room's row lock from outside, so sendMessage transactions in that room wait: mutations in flight on demand. */
  const lockRoom = async (roomId: string) => {
    const client = new pg.Client({ connectionString: scratch!.url });
    await client.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1 FROM "Room" WHERE id = $1 FOR UPDATE', [roomId]);
    return async () => {
      await client.query('ROLLBACK');
      await client.end();
    };
  };

  it('drains: readiness 503 first, in-flight mutations finish and are stored, clients get 1012, exit code 0', async () => {
    const api = await start('drain');
    const ana = await signUp(api.url, 'Ana');
    const roomId = (await gql(api.url, CREATE_ROOM, { input: { name: 'Drain' } }, ana.token)).createRoom.id as string;

    let closeCode: number | undefined;
    const listener = wsClient(api.wsUrl, ana.token, {
      onNonLazyError: () => {},
      on: { closed: (event) => (closeCode = (event as { code: number }).code) },
    });
    clients.push(listener);
    const seen = collect(listener, SUBSCRIBE, { roomId, afterSeq: 0 });

    // Four lanes, each sending one message after another until the server refuses.
    const succeeded: { clientId: string; at: number }[] = [];
    const failed: { clientId: string; reason: string }[] = [];
    let sigtermAt = Infinity;
    let n = 0;
    const lane = async (name: string) => {
      while (true) {
        const clientId = `${name}-${n++}`;
        try {
          const res = await http(api.url, SEND, { input: { roomId, body: clientId, clientId } }, ana.token);
          if (res.status === 200 && res.body.data?.sendMessage?.id) succeeded.push({ clientId, at: Date.now() });
          else {
            failed.push({ clientId, reason: `${res.status} ${JSON.stringify(res.body)}` });
            return;
          }
        } catch (error) {
          failed.push({ clientId, reason: String((error as Error).cause ?? error) });
          return;
        }
        await sleep(20);
      }
    };
    const lanes = ['a', 'b', 'c', 'd'].map(lane);
    await until(() => succeeded.length >= 12, 15_000, () => `only ${succeeded.length} sent: ${JSON.stringify(failed)}`);

    // From now on each lane's next mutation waits on the room lock: in flight when SIGTERM comes.
    const unlock = await lockRoom(roomId);
    const sentBeforeLock = succeeded.length;
    await sleep(300);

    const readyz: { status: number | 'refused'; at: number }[] = [];
    sigtermAt = Date.now();
    api.process.kill('SIGTERM');
    const exited = api.exited.then((result) => ({ ...result, at: Date.now() }));
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const res = await fetch(`${origin(api.url)}/readyz`);
          readyz.push({ status: res.status, at: Date.now() });
          await res.body?.cancel();
        } catch {
          readyz.push({ status: 'refused', at: Date.now() });
        }
        await sleep(10);
      }
    })();

    // Hold the mutations well past the readiness delay, so the listener is closed while they wait.
    await sleep(DELAY_MS + 700);
    expect(api.running).toBe(true);
    await unlock();
    const exit = await exited;
    polling = false;
    await poller;
    await Promise.all(lanes);

    const exitMs = exit.at - sigtermAt;
    console.info(
      `SIGTERM drain: exit ${exitMs} ms after the signal; ${succeeded.length} mutations succeeded (${succeeded.filter((s) => s.at > sigtermAt).length} after SIGTERM), readyz sequence ${JSON.stringify(summarize(readyz))}`,
    );
    expect(exit.code, api.output().slice(-3000)).toBe(0);
    expect(exitMs).toBeLessThan(DELAY_MS + GRACE_MS);
    expect(closeCode).toBe(1012);

    // Readiness went 503 while the listener was still open, and never back to 200.
    const first503 = readyz.findIndex((r) => r.status === 503);
    const firstRefused = readyz.findIndex((r) => r.status === 'refused');
    expect(first503, JSON.stringify(summarize(readyz))).toBeGreaterThanOrEqual(0);
    if (firstRefused >= 0) expect(first503).toBeLessThan(firstRefused);
    expect(readyz.slice(first503).some((r) => r.status === 200)).toBe(false);

    // The mutations held on the lock were in flight at SIGTERM and were answered, not cut.
    const afterSigterm = succeeded.filter((s) => s.at > sigtermAt);
    expect(afterSigterm.length).toBeGreaterThanOrEqual(4);
    expect(succeeded.length).toBeGreaterThan(sentBeforeLock);
    // Each lane ended on a refusal (503 or connection refused), never on a GraphQL error.
    expect(failed).toHaveLength(4);
    for (const f of failed) expect(f.reason).toMatch(/^503 |ECONNREFUSED|ECONNRESET|other side closed|SocketError|fetch failed/);

    // Every answered mutation is stored, once, with gap-free seqs.
    const db = new pg.Client({ connectionString: scratch!.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ clientId: string; seq: number }>('SELECT "clientId", seq FROM "Message" WHERE "roomId" = $1 ORDER BY seq', [roomId]);
      const stored = new Set(rows.map((r) => r.clientId));
      for (const s of succeeded) expect(stored.has(s.clientId), s.clientId).toBe(true);
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      // Nothing was stored that its client did not hear about.
      expect(rows.length).toBe(succeeded.length);
    } finally {
      await db.end();
    }
    expect(seen.values.length).toBeLessThanOrEqual(succeeded.length);
  }, 90_000);

  it('exits at once, with code 1, on a second signal during the drain', async () => {
    const api = await start('drain-twice');
    const ana = await signUp(api.url, 'Ana');
    const roomId = (await gql(api.url, CREATE_ROOM, { input: { name: 'Impatient' } }, ana.token)).createRoom.id as string;
    const unlock = await lockRoom(roomId);
    try {
      // In flight until the lock goes: the drain would wait for it up to the grace period.
      const pending = http(api.url, SEND, { input: { roomId, body: 'stuck', clientId: 'stuck' } }, ana.token).catch((error: Error) => error);
      await sleep(200);
      api.process.kill('SIGTERM');
      await sleep(DELAY_MS + 200);
      expect(api.running).toBe(true);
      const secondAt = Date.now();
      api.process.kill('SIGINT');
      const exit = await api.exited;
      expect(exit.code).toBe(1);
      expect(Date.now() - secondAt).toBeLessThan(1000);
      expect(await pending).toBeInstanceOf(Error);
    } finally {
      await unlock();
    }
  }, 90_000);
});

/** Collapses a poll log into runs: [[200, 3], [503, 12], ['refused', 40]]. */
function summarize(log: { status: number | 'refused' }[]): [number | 'refused', number][] {
  const runs: [number | 'refused', number][] = [];
  for (const { status } of log) {
    const last = runs[runs.length - 1];
    if (last && last[0] === status) last[1]++;
    else runs.push([status, 1]);
  }
  return runs;
}
