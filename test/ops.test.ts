import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { GraphQLError, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { isDbError, maskErrorReportingDb } from '../api/ops/db-errors.ts';
import { InFlight } from '../api/ops/in-flight.ts';
import { createServerMetrics } from '../api/ops/metrics.ts';
import { createReadiness } from '../api/ops/readiness.ts';
import { subscriptionRootField } from '../api/ops/root-field.ts';
import { createMemoryPubSub } from '../api/pubsub/index.ts';

describe('subscriptionRootField', () => {
  it('finds the root field and its response key, behind aliases and fragments', () => {
    expect(subscriptionRootField(parse('subscription { messageAdded(roomId: "1") { seq } }'), null)).toEqual({ field: 'messageAdded', responseKey: 'messageAdded' });
    expect(subscriptionRootField(parse('subscription S { m: messageAdded(roomId: "1") { seq } }'), 'S')).toEqual({ field: 'messageAdded', responseKey: 'm' });
    expect(subscriptionRootField(parse('subscription { ...F } fragment F on Subscription { __typename typing(roomId: "1") { roomId } }'), undefined)).toEqual({
      field: 'typing',
      responseKey: 'typing',
    });
    expect(subscriptionRootField(parse('subscription { ... on Subscription { presenceChanged { status } } }'), null)?.field).toBe('presenceChanged');
  });

  it('ignores queries and mutations, and picks the named operation', () => {
    expect(subscriptionRootField(parse('mutation { sendMessage(input: {}) { id } }'), null)).toBeUndefined();
    const doc = parse('query Q { me { id } } subscription S { typing(roomId: "1") { roomId } }');
    expect(subscriptionRootField(doc, 'Q')).toBeUndefined();
    expect(subscriptionRootField(doc, 'S')?.field).toBe('typing');
    expect(subscriptionRootField(doc, null)).toBeUndefined(); // ambiguous without a name
  });
});

describe('InFlight', () => {
  it('is idle at once when nothing runs, and when the last piece of work ends', async () => {
    const inFlight = new InFlight();
    expect(await inFlight.idle(Date.now() + 1000)).toBe(true);
    let finish!: () => void;
    inFlight.track(new Promise<void>((resolve) => (finish = resolve)));
    const res = new EventEmitter() as unknown as ServerResponse;
    inFlight.trackResponse(res);
    expect(inFlight.size).toBe(2);
    const idle = inFlight.idle(Date.now() + 5000);
    finish();
    await Promise.resolve();
    res.emit('close');
    expect(await idle).toBe(true);
    expect(inFlight.size).toBe(0);
  });

  it('gives up at the deadline', async () => {
    const inFlight = new InFlight();
    inFlight.track(new Promise(() => {}));
    const started = Date.now();
    expect(await inFlight.idle(started + 50)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('counts rejected work as finished', async () => {
    const inFlight = new InFlight();
    await inFlight.track(Promise.reject(new Error('boom'))).catch(() => {});
    await Promise.resolve();
    expect(inFlight.size).toBe(0);
  });
});

describe('database error reporting', () => {
  const prismaError = () => Object.assign(new Error('Database `x` does not exist'), { name: 'PrismaClientKnownRequestError' });

  it('recognises Prisma and driver adapter errors, also as the cause of another error', () => {
    expect(isDbError(prismaError())).toBe(true);
    expect(isDbError(Object.assign(new Error('x'), { name: 'DriverAdapterError' }))).toBe(true);
    expect(isDbError(new GraphQLError('wrapped', { originalError: prismaError() }))).toBe(true);
    expect(isDbError(Object.assign(new Error('bad query'), { name: 'PrismaClientValidationError' }))).toBe(false);
    expect(isDbError(new Error('other'))).toBe(false);
  });

  it('reports masked database errors only', () => {
    let reported = 0;
    const mask = maskErrorReportingDb(() => reported++);
    const expected = new GraphQLError('Not a member', { extensions: { code: 'FORBIDDEN' } });
    expect(mask(expected, 'Unexpected error.', false)).toBe(expected);
    expect(reported).toBe(0);
    const masked = mask(prismaError(), 'Unexpected error.', false) as GraphQLError;
    expect(masked.message).toBe('Unexpected error.');
    expect(reported).toBe(1);
    mask(new Error('a bug'), 'Unexpected error.', false);
    expect(reported).toBe(1);
  });
});

describe('readiness', () => {
  const db = (query: () => Promise<unknown>) => ({ $queryRaw: (() => query()) as never });

  it('is ready with a database that answers and an in-process pub/sub', async () => {
    const readiness = createReadiness({ db: db(async () => [{ '?column?': 1 }]), pubsub: createMemoryPubSub(), timeoutMs: 100 });
    expect(await readiness.check()).toEqual({ status: 'ready', checks: { db: 'ok', pubsub: 'in-process' } });
  });

  it('names a failed and a hung dependency, each bounded by the timeout', async () => {
    let failures = 0;
    const pubsub = Object.assign(createMemoryPubSub(), { ping: () => new Promise<boolean>(() => {}) });
    const readiness = createReadiness({ db: db(() => Promise.reject(new Error('down'))), pubsub, timeoutMs: 50, onDbFailure: () => failures++ });
    const started = Date.now();
    expect(await readiness.check()).toEqual({ status: 'not ready', checks: { db: 'failed', pubsub: 'timeout' } });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(failures).toBe(1);
  });

  it('shares one check between concurrent probes, and reports draining without checking', async () => {
    let queries = 0;
    const readiness = createReadiness({ db: db(async () => queries++), pubsub: createMemoryPubSub(), timeoutMs: 100 });
    await Promise.all([readiness.check(), readiness.check(), readiness.check()]);
    expect(queries).toBe(1);
    readiness.drain();
    expect(await readiness.check()).toEqual({ status: 'draining', checks: {} });
    expect(queries).toBe(1);
  });
});

describe('server metrics', () => {
  it('counts a delivery for each messageAdded result with data, and its latency when createdAt is selected', async () => {
    const metrics = createServerMetrics();
    const now = Date.parse('2026-01-01T00:00:01.000Z');
    metrics.resultSent('messageAdded', { seq: 1, createdAt: '2026-01-01T00:00:00.950Z' }, now);
    metrics.resultSent('messageAdded', { seq: 2 }, now);
    metrics.resultSent('messageAdded', null, now);
    metrics.resultSent('typing', { roomId: '1' }, now);
    const { body } = await metrics.scrape();
    expect(body).toMatch(/^realtime_api_messages_delivered_total 2$/m);
    expect(body).toMatch(/^realtime_api_message_delivery_latency_seconds_count 1$/m);
    expect(body).toMatch(/^realtime_api_message_delivery_latency_seconds_bucket\{le="0.05"\} 1$/m);
    expect(body).toMatch(/^realtime_api_message_delivery_latency_seconds_bucket\{le="0.025"\} 0$/m);
  });

  it('keeps separate registries per server', async () => {
    const a = createServerMetrics();
    const b = createServerMetrics();
    a.schema.messagePublished();
    expect((await a.scrape()).body).toMatch(/^realtime_api_messages_published_total 1$/m);
    expect((await b.scrape()).body).toMatch(/^realtime_api_messages_published_total 0$/m);
  });
});
