import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryPubSub } from '../api/pubsub/index.ts';
import { channelOf } from '../api/pubsub/engine-pubsub.ts';
import { createRedisPubSub, PubSubUnavailableError, type RedisPubSub } from '../api/pubsub/redis.ts';
import { createLogger } from '../api/logger.ts';
import type { MembershipEvent, MessageEvent, PubSub } from '../schema/events.ts';
import { until } from './helpers/client.ts';
import { killLeftovers } from './helpers/processes.ts';
import { REDIS_TEST_URL, redisAvailable, redisClient, redisServerInstalled, startOwnRedis, type OwnRedis } from './helpers/redis.ts';

const redisUp = await redisAvailable();
const redisServerUp = redisServerInstalled();
const silent = createLogger('silent');

interface Implementation {
  name: string;
  skip: boolean;
  create(): Promise<PubSub>;
  /** How many connections Redis has subscribed to `channel`; undefined in-process. */
  subscribers?(channel: string): Promise<number>;
  channelPrefix: string;
}

const redisPrefix = `test:${randomBytes(4).toString('hex')}:`;

const implementations: Implementation[] = [
  { name: 'in-process', skip: false, create: async () => createMemoryPubSub(), channelPrefix: '' },
  {
    name: 'Redis',
    skip: !redisUp,
    create: () => createRedisPubSub(REDIS_TEST_URL, silent, { channelPrefix: redisPrefix }),
    subscribers: (channel) => numsub(REDIS_TEST_URL, channel),
    channelPrefix: redisPrefix,
  },
];

afterAll(async () => {
  await killLeftovers();
});

let counter = 0;
function message(roomId: string, seq: number, overrides: Partial<MessageEvent> = {}): MessageEvent {
  return {
    id: randomUUID(),
    roomId,
    seq,
    body: `message ${seq}`,
    clientId: `c-${counter++}`,
    createdAt: new Date(Date.UTC(2025, 0, 1, 12, 0, 0, seq % 1000)).toISOString(),
    sender: { id: randomUUID(), name: 'Ana' },
    attachments: [],
    ...overrides,
  };
}

/** A debug-level logger whose lines are kept for assertions. */
function captureLogs() {
  const logs: { level: number; msg: string; connection?: string }[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { log, logs };
}

/** How many connections `url`'s Redis has subscribed to `channel`. */
async function numsub(url: string, channel: string): Promise<number> {
  const client = redisClient(url);
  try {
    await client.connect();
    return Number(((await client.pubsub('NUMSUB', channel)) as [string, number])[1]);
  } finally {
    client.disconnect();
  }
}

/** Calls `probe` until `ok` holds or the time is up; returns the last value. */
async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Pulls an iterator in the background, so tests can assert what arrived (and what did not). */
function drain<T>(iterator: AsyncIterableIterator<T>) {
  const values: T[] = [];
  let done = false;
  void (async () => {
    for await (const value of { [Symbol.asyncIterator]: () => iterator }) values.push(value);
    done = true;
  })();
  return {
    values,
    get done() {
      return done;
    },
    async waitFor(n: number, timeoutMs = 5000): Promise<T[]> {
      await until(() => values.length >= n, timeoutMs, () => `expected ${n} values, got ${values.length}`);
      return values;
    },
  };
}

describe.each(implementations)('pub/sub contract: $name', (impl) => {
  let pubsub: PubSub;
  const room = () => `room-${randomUUID()}`;

  beforeAll(async () => {
    if (impl.skip) return;
    pubsub = await impl.create();
  });
  afterAll(async () => {
    await pubsub?.close();
  });

  it.skipIf(impl.skip)('delivers an event to every subscriber of its scope, and to no one else', async () => {
    const [roomA, roomB] = [room(), room()];
    const a1 = drain(await pubsub.subscribe('message:added', roomA));
    const a2 = drain(await pubsub.subscribe('message:added', roomA));
    const b = drain(await pubsub.subscribe('message:added', roomB));
    const membersOfA = drain(await pubsub.subscribe('member:changed', roomA));

    const toA = message(roomA, 1);
    await pubsub.publish('message:added', roomA, toA);
    expect(await a1.waitFor(1)).toEqual([toA]);
    expect(await a2.waitFor(1)).toEqual([toA]);

    // Events travel in publish order, so once these sentinels arrive, anything
    // wrongly routed before them would have arrived too.
    const toB = message(roomB, 1);
    const joined: MembershipEvent = { roomId: roomA, userId: randomUUID(), change: 'joined' };
    await pubsub.publish('message:added', roomB, toB);
    await pubsub.publish('member:changed', roomA, joined);
    expect(await b.waitFor(1)).toEqual([toB]);
    expect(await membersOfA.waitFor(1)).toEqual([joined]);
    const sentinel = message(roomA, 2);
    await pubsub.publish('message:added', roomA, sentinel);
    expect(await a1.waitFor(2)).toEqual([toA, sentinel]);
    expect(await a2.waitFor(2)).toEqual([toA, sentinel]);
    expect(b.values).toEqual([toB]);
    expect(membersOfA.values).toEqual([joined]);
  });

  it.skipIf(impl.skip)('preserves publish order per topic (1,000 events, published without waiting)', async () => {
    const roomId = room();
    const first = drain(await pubsub.subscribe('message:added', roomId));
    const second = drain(await pubsub.subscribe('message:added', roomId));
    const events = Array.from({ length: 1000 }, (_, i) => message(roomId, i + 1));
    await Promise.all(events.map((event) => pubsub.publish('message:added', roomId, event)));
    for (const seen of [first, second]) {
      const values = await seen.waitFor(1000, 15_000);
      expect(values.map((v) => v.seq)).toEqual(events.map((e) => e.seq));
    }
  });

  it.skipIf(impl.skip)('once subscribe() resolves, an event published right after is received', async () => {
    for (let i = 0; i < 50; i++) {
      const roomId = room();
      // The first subscriber of a channel, then a second one of the same
      // (already active) channel: both must be live when subscribe() resolves.
      const first = drain(await pubsub.subscribe('message:added', roomId));
      const event = message(roomId, 1);
      await pubsub.publish('message:added', roomId, event);
      const second = drain(await pubsub.subscribe('message:added', roomId));
      const next = message(roomId, 2);
      await pubsub.publish('message:added', roomId, next);
      expect(await first.waitFor(2)).toEqual([event, next]);
      // Over Redis an event published just before subscribe() may still be in
      // flight and reach the new subscriber too; consumers dedupe (by seq).
      const values = await second.waitFor(1);
      expect(values.at(-1)).toEqual(next);
      expect([[next], [event, next]]).toContainEqual(values);
    }
  });

  it.skipIf(impl.skip)('return() unsubscribes: that iterator ends and gets nothing more, the others go on', async () => {
    const roomId = room();
    const channel = impl.channelPrefix + channelOf('message:added', [roomId]);
    const leaving = await pubsub.subscribe('message:added', roomId);
    const leavingSeen = drain(leaving);
    const staying = drain(await pubsub.subscribe('message:added', roomId));
    // Subscribers of one channel share one broker subscription.
    if (impl.subscribers) expect(await impl.subscribers(channel)).toBe(1);

    await pubsub.publish('message:added', roomId, message(roomId, 1));
    await leavingSeen.waitFor(1);
    await leaving.return?.();
    await until(() => leavingSeen.done, 2000, () => 'the iterator did not end after return()');
    await pubsub.publish('message:added', roomId, message(roomId, 2));
    expect((await staying.waitFor(2)).map((v) => v.seq)).toEqual([1, 2]);
    expect(leavingSeen.values.map((v) => v.seq)).toEqual([1]);
    if (impl.subscribers) expect(await impl.subscribers(channel)).toBe(1);
  });

  it.skipIf(impl.skip)('the last return() of a channel unsubscribes it at the broker', async () => {
    const roomId = room();
    const channel = impl.channelPrefix + channelOf('message:added', [roomId]);
    const iterators = await Promise.all([1, 2, 3].map(() => pubsub.subscribe('message:added', roomId)));
    if (impl.subscribers) expect(await impl.subscribers(channel)).toBe(1);
    for (const iterator of iterators) await iterator.return?.();
    expect(await iterators[0]!.next()).toEqual({ value: undefined, done: true });
    if (impl.subscribers) {
      // UNSUBSCRIBE is sent without waiting for Redis' reply.
      expect(await eventually(() => impl.subscribers!(channel), (n) => n === 0)).toBe(0);
    }
    // A released channel can be subscribed again.
    const again = drain(await pubsub.subscribe('message:added', roomId));
    const event = message(roomId, 9);
    await pubsub.publish('message:added', roomId, event);
    expect(await again.waitFor(1)).toEqual([event]);
  });

  it.skipIf(impl.skip)('payloads round-trip: strings, numbers, nested arrays, ISO dates as strings', async () => {
    const roomId = room();
    const seen = drain(await pubsub.subscribe('message:added', roomId));
    const event = message(roomId, 2 ** 31 - 1, {
      body: 'Grüße 👋 "quoted" \\ back\nslash\ttab <b>not html</b> \u2028',
      createdAt: '2025-03-30T01:59:59.999Z',
      attachments: [
        { id: randomUUID(), name: 'a.png', size: 0, contentType: 'image/png' },
        { id: randomUUID(), name: 'b.pdf', size: Number.MAX_SAFE_INTEGER, contentType: 'application/pdf' },
      ],
    });
    // Fields outside the declared type travel too; the transport is not the place to filter.
    const withExtras = { ...event, extra: { nested: [[1, 2.5, -3], [[]], ['x', null, true]], none: null } };
    await pubsub.publish('message:added', roomId, withExtras);
    const [received] = await seen.waitFor(1);
    expect(received).toEqual(withExtras);
    expect(typeof received!.createdAt).toBe('string');
    expect(new Date(received!.createdAt).toISOString()).toBe(event.createdAt);
  });
});

describe.skipIf(!redisServerUp)('Redis pub/sub when Redis fails (own redis-server)', () => {
  let own: OwnRedis;
  let pubsub: RedisPubSub;
  const { log, logs } = captureLogs();
  const publishTimeoutMs = 1000;
  const subscribeTimeoutMs = 1500;

  beforeAll(async () => {
    own = await startOwnRedis();
    pubsub = await createRedisPubSub(own.url, log, { publishTimeoutMs, subscribeTimeoutMs, maxBackoffMs: 200, heartbeatMs: 500 });
  });
  afterAll(async () => {
    await pubsub?.close();
    await own?.dispose();
  });

  it('fails publish and subscribe fast while Redis is down, then resumes delivery to existing subscribers', async () => {
    const roomId = `room-${randomUUID()}`;
    const seen = drain(await pubsub.subscribe('message:added', roomId));
    await pubsub.publish('message:added', roomId, message(roomId, 1));
    await seen.waitFor(1);
    expect(await pubsub.ping()).toBe(true);

    await own.kill();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      await expect(pubsub.publish('message:added', roomId, message(roomId, 2))).rejects.toThrow(PubSubUnavailableError);
      expect(Date.now() - started).toBeLessThan(publishTimeoutMs + 500);
    }
    const orphanRoom = `room-${randomUUID()}`;
    const started = Date.now();
    await expect(pubsub.subscribe('message:added', orphanRoom)).rejects.toThrow(PubSubUnavailableError);
    expect(Date.now() - started).toBeLessThan(subscribeTimeoutMs + 500);
    expect(await pubsub.ping()).toBe(false);
    expect(logs.some((l) => l.msg === 'Redis connection lost; reconnecting' && l.connection === 'subscriber')).toBe(true);
    expect(logs.some((l) => l.msg === 'Redis connection lost; reconnecting' && l.connection === 'publisher')).toBe(true);

    await own.restart();
    expect(await eventually(() => pubsub.ping(), (ready) => ready, 10_000)).toBe(true);
    // The channel came back without anyone subscribing by hand...
    expect(await eventually(() => numsub(own.url, channelOf('message:added', [roomId])), (n) => n === 1)).toBe(1);
    // ...and the subscribe that timed out during the outage left nothing behind.
    expect(await eventually(() => numsub(own.url, channelOf('message:added', [orphanRoom])), (n) => n === 0)).toBe(0);

    await pubsub.publish('message:added', roomId, message(roomId, 3));
    await pubsub.publish('message:added', roomId, message(roomId, 4));
    // The event whose publish failed is gone, not delivered late.
    expect((await seen.waitFor(3)).map((v) => v.seq)).toEqual([1, 3, 4]);
    expect(logs.some((l) => l.msg === 'Redis connection recovered' && l.connection === 'subscriber')).toBe(true);
  });

  it('a hung Redis (SIGSTOP): publish and subscribe reject by their timeouts, close() returns promptly and drops what was in flight', async () => {
    const other = await createRedisPubSub(own.url, silent, { publishTimeoutMs: 500, subscribeTimeoutMs: 300, heartbeatMs: 0 });
    const live = await other.subscribe('message:added', `room-${randomUUID()}`);
    own.pause();
    try {
      let started = Date.now();
      await expect(other.publish('message:added', 'r', message('r', 1))).rejects.toMatchObject({ detail: expect.stringMatching(/timed out/), extensions: { code: 'UNAVAILABLE' } });
      expect(Date.now() - started).toBeLessThan(500 + 300);
      started = Date.now();
      // Leaves a SUBSCRIBE in flight, then an UNSUBSCRIBE after it: close()
      // must drop both without an unhandled rejection (which fails the run).
      await expect(other.subscribe('message:added', `room-${randomUUID()}`)).rejects.toMatchObject({ detail: expect.stringMatching(/timed out/), extensions: { code: 'UNAVAILABLE' } });
      expect(Date.now() - started).toBeLessThan(300 + 300);
      await live.return?.();
      started = Date.now();
      await other.close();
      expect(Date.now() - started).toBeLessThan(1500);
      // The sockets finish closing only when Redis answers or dies; that is
      // when the dropped commands reject.
      await own.kill();
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      if (own.running) own.resume();
      else await own.restart();
    }
  });

  it('replaces a subscriber connection that stops answering (heartbeat) and re-subscribes it', async () => {
    const captured = captureLogs();
    const other = await createRedisPubSub(own.url, captured.log, { heartbeatMs: 300, maxBackoffMs: 200 });
    try {
      const roomId = `room-${randomUUID()}`;
      const seen = drain(await other.subscribe('message:added', roomId));
      own.pause();
      try {
        await until(() => captured.logs.some((l) => l.msg === 'Redis subscriber unresponsive; reconnecting'), 5000);
        // ioredis destroys a socket that does not finish closing within 2 s.
        await until(() => captured.logs.some((l) => l.msg === 'Redis connection lost; reconnecting' && l.connection === 'subscriber'), 5000);
      } finally {
        own.resume();
      }
      expect(await eventually(() => numsub(own.url, channelOf('message:added', [roomId])), (n) => n === 1, 10_000)).toBe(1);
      const event = message(roomId, 1);
      await other.publish('message:added', roomId, event);
      expect(await seen.waitFor(1)).toEqual([event]);
    } finally {
      await other.close();
    }
  });

  it('rejects at start-up when Redis does not answer', async () => {
    const port = own.port;
    await own.kill();
    try {
      await expect(createRedisPubSub(`redis://127.0.0.1:${port}`, silent, { startupTimeoutMs: 500 })).rejects.toThrow(/unreachable/);
    } finally {
      await own.restart();
    }
  });
});
