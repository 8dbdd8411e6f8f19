import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelOf } from '../api/pubsub/engine-pubsub.ts';
import { collect, gql, signUp, sleep, until, wsClient, type Collected, type TestUser } from './helpers/client.ts';
import { createScratchDatabase, postgresAvailable } from './helpers/postgres.ts';
import { killLeftovers, startApiProcess, type ApiProcess } from './helpers/processes.ts';
import { REDIS_TEST_URL, redisAvailable, redisClient } from './helpers/redis.ts';

// Both throw in CI when their server is missing, so CI cannot silently skip this file.
const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();
if (!pgUp) console.warn('PostgreSQL unreachable: skipping the scale-out tests.');

const MESSAGE_FIELDS = 'id roomId seq body clientId createdAt sender { id name }';
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`;
const SUBSCRIBE = `subscription ($roomId: ID!, $afterSeq: Int) { messageAdded(roomId: $roomId, afterSeq: $afterSeq) { ${MESSAGE_FIELDS} } }`;
const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;

interface Received {
  messageAdded: { seq: number; body: string; clientId: string; createdAt: string; sender: { name: string } };
}

describe.skipIf(!pgUp || !redisUp)('scale-out: two API processes sharing PostgreSQL and Redis', () => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let a: ApiProcess;
  let b: ApiProcess;
  let ana: TestUser;
  let ben: TestUser;
  const clients: Client[] = [];

  const client = (wsUrl: string, token: string, options: Parameters<typeof wsClient>[2] = {}) => {
    // A process killed on purpose would otherwise print each client's CloseEvent.
    const c = wsClient(wsUrl, token, { onNonLazyError: () => {}, ...options });
    clients.push(c);
    return c;
  };
  const send = (url: string, user: TestUser, roomId: string, body: string) =>
    gql(url, SEND, { input: { roomId, body, clientId: `${user.name}-${body}-${roomId}` } }, user.token);
  const createRoom = async (name: string) =>
    (await gql(a.url, CREATE_ROOM, { input: { name, memberIds: [ben.id] } }, ana.token)).createRoom.id as string;
  /** Waits for `n` values; on timeout the error carries the API processes' recent output. */
  const waitFor = async (seen: Collected<Received>, n: number, timeoutMs = 30_000) => {
    try {
      return await seen.waitFor(n, timeoutMs);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- api-a:\n${a.output().slice(-3000)}\n--- api-b:\n${b.output().slice(-3000)}`);
    }
  };

  beforeAll(async () => {
    scratch = await createScratchDatabase('scaleout');
    const env = {
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS_TEST_URL,
      JWT_SECRET: randomBytes(32).toString('hex'),
      // The latency case sends 20 messages/s as one user for 10 s, as a load test does.
      RATE_LIMITS: 'off',
    };
    // Started together, as replicas are: both migrate the same database at once.
    [a, b] = await Promise.all([startApiProcess('api-a', env), startApiProcess('api-b', env)]);
    ana = await signUp(a.url, 'Ana');
    ben = await signUp(b.url, 'Ben');
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await a?.dispose();
    await b?.dispose();
    await killLeftovers();
    await scratch?.drop();
  });

  it('users on different processes chat: each message once, in seq order, on both processes', async () => {
    const roomId = await createRoom('Across');
    // Ana signed up on A and listens on B; Ben the other way round; plus a
    // same-process subscriber on each side.
    const watchers = {
      anaOnB: collect<Received>(client(b.wsUrl, ana.token), SUBSCRIBE, { roomId, afterSeq: 0 }),
      benOnA: collect<Received>(client(a.wsUrl, ben.token), SUBSCRIBE, { roomId, afterSeq: 0 }),
      anaOnA: collect<Received>(client(a.wsUrl, ana.token), SUBSCRIBE, { roomId, afterSeq: 0 }),
      benOnB: collect<Received>(client(b.wsUrl, ben.token), SUBSCRIBE, { roomId, afterSeq: 0 }),
    };

    // Five concurrent senders per process, so seqs interleave between A and B
    // and events from the two processes reach Redis in no particular order.
    const sendMany = async (url: string, user: TestUser, count: number) => {
      const bodies = Array.from({ length: count }, (_, i) => `${user.name.toLowerCase()}-${i}`);
      const lanes = Array.from({ length: 5 }, async (_, lane) => {
        for (let i = lane; i < count; i += 5) await send(url, user, roomId, bodies[i]!);
      });
      await Promise.all(lanes);
      return bodies;
    };
    const [viaA, viaB] = await Promise.all([sendMany(a.url, ana, 50), sendMany(b.url, ben, 30)]);
    const total = viaA.length + viaB.length;

    for (const [name, seen] of Object.entries(watchers)) {
      const values = await waitFor(seen, total);
      expect(seen.errors, name).toEqual([]);
      expect(
        values.map((v) => v.messageAdded.seq),
        name,
      ).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(new Set(values.map((v) => v.messageAdded.body)), name).toEqual(new Set([...viaA, ...viaB]));
    }
    // Nothing arrives twice later on.
    await sleep(300);
    for (const [name, seen] of Object.entries(watchers)) expect(seen.values, name).toHaveLength(total);
  });

  it('measures cross-process delivery latency (200 messages at 20/s)', async () => {
    const roomId = await createRoom('Latency');
    const count = 200;
    const intervalMs = 50;
    const sentAt = new Map<string, number>();
    const publishedAt = new Map<string, number>();
    const receivedAt = { onB: new Map<string, number>(), onA: new Map<string, number>() };

    // A plain Redis subscriber on the room's channel marks when each event
    // was published (plus one local Redis hop).
    const tap = redisClient();
    await tap.connect();
    tap.on('message', (_channel: string, raw: string) => {
      publishedAt.set((JSON.parse(raw) as { body: string }).body, performance.now());
    });
    await tap.subscribe(channelOf('message:added', [roomId]));

    const listen = (wsUrl: string, user: TestUser, into: Map<string, number>) => {
      const c = client(wsUrl, user.token);
      const errors: unknown[] = [];
      c.subscribe<Received>(
        // afterSeq 0: the warm-up message arrives even if sent before the subscription is live.
        { query: SUBSCRIBE, variables: { roomId, afterSeq: 0 } },
        {
          next: (result) => {
            if (result.data) into.set(result.data.messageAdded.body, performance.now());
            if (result.errors) errors.push(...result.errors);
          },
          error: (error) => errors.push(error),
          complete: () => {},
        },
      );
      return errors;
    };
    const errorsB = listen(b.wsUrl, ana, receivedAt.onB);
    const errorsA = listen(a.wsUrl, ben, receivedAt.onA);
    // Make sure both subscriptions are live before timing anything.
    await send(a.url, ana, roomId, 'warm-up');
    await until(() => receivedAt.onA.has('warm-up') && receivedAt.onB.has('warm-up'), 10_000);

    const start = performance.now();
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const due = start + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const body = `m-${i}`;
      sentAt.set(body, performance.now());
      sends.push(send(a.url, ana, roomId, body));
    }
    await Promise.all(sends);
    await until(() => receivedAt.onB.size >= count + 1 && receivedAt.onA.size >= count + 1, 30_000, () => `received ${receivedAt.onB.size} on B, ${receivedAt.onA.size} on A`);
    await tap.quit();
    expect(errorsA).toEqual([]);
    expect(errorsB).toEqual([]);

    const bodies = [...sentAt.keys()];
    const series = (from: Map<string, number>, to: Map<string, number>) => bodies.map((body) => to.get(body)! - from.get(body)!);
    const report = {
      'publish -> client of B (other process)': stats(series(publishedAt, receivedAt.onB)),
      'publish -> client of A (same process, via Redis)': stats(series(publishedAt, receivedAt.onA)),
      'sendMessage start -> client of B': stats(series(sentAt, receivedAt.onB)),
      'sendMessage start -> publish': stats(series(sentAt, publishedAt)),
    };
    console.log(
      `Cross-process delivery latency, ${count} messages at ${1000 / intervalMs}/s, ms:\n` +
        Object.entries(report)
          .map(([name, s]) => `  ${name.padEnd(50)} p50 ${s.p50}  p90 ${s.p90}  p99 ${s.p99}  max ${s.max}`)
          .join('\n'),
    );
    // Loose sanity bound only: this runs on shared CI machines.
    expect(report['publish -> client of B (other process)'].p50).toBeLessThan(1000);
  });

  it('a client of a killed process sees its socket close; clients of the other process carry on', async () => {
    const roomId = await createRoom('Failover');
    let closeCode: number | undefined;
    const onA = collect<Received>(
      client(a.wsUrl, ben.token, { on: { closed: (event) => (closeCode = (event as { code: number }).code) } }),
      SUBSCRIBE,
      { roomId, afterSeq: 0 },
    );
    const onB = collect<Received>(client(b.wsUrl, ana.token), SUBSCRIBE, { roomId, afterSeq: 0 });
    await send(a.url, ana, roomId, 'before');
    await waitFor(onA, 1);
    await waitFor(onB, 1);

    await a.kill('SIGKILL');
    await until(() => closeCode !== undefined, 10_000, () => 'the client of the killed process saw no close');
    expect(closeCode).toBe(1006); // abnormal closure: no close frame from a dead process
    expect(onA.errors.length).toBeGreaterThan(0);

    const fresh = collect<Received>(client(b.wsUrl, ana.token), SUBSCRIBE, { roomId, afterSeq: 1 });
    await send(b.url, ben, roomId, 'after');
    expect((await waitFor(fresh, 1)).map((v) => [v.messageAdded.seq, v.messageAdded.body])).toEqual([[2, 'after']]);
    expect((await waitFor(onB, 2)).map((v) => v.messageAdded.body)).toEqual(['before', 'after']);
    expect(fresh.errors).toEqual([]);
  });
});

/** Percentiles (nearest rank) of a latency series, in ms with one decimal. */
function stats(values: number[]) {
  const sorted = [...values].sort((x, y) => x - y);
  const at = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 10) / 10;
  return { p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}
