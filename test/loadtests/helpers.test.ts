import { readFileSync } from 'node:fs';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { classifyInterval, IntervalMeter, intervals, intervalStats, percentile } from '../../loadtests/lib/batches.ts';
import { durationEnv, durationMs, endpoints, intEnv, numberEnv, stringEnv } from '../../loadtests/lib/config.ts';
import { deliveryLatencyMs, readStamp, SeqTracker, stampBody } from '../../loadtests/lib/delivery.ts';
import * as operations from '../../loadtests/lib/operations.ts';
import { chunk, churnRoles, dashboardKeys, planRooms, roomOfUser, senderIndices, userEmail } from '../../loadtests/lib/plan.ts';

describe('delivery stamps', () => {
  it('round-trips the send time through a message body', () => {
    const body = stampBody({ sentAt: 1_764_000_000_123, from: 'u42', n: 7 });
    expect(body.length).toBeLessThanOrEqual(4000);
    expect(readStamp(body)).toEqual({ sentAt: 1_764_000_000_123, from: 'u42', n: 7 });
    expect(deliveryLatencyMs(body, 1_764_000_000_223)).toBe(100);
  });

  it('ignores foreign bodies and clamps clock skew at zero', () => {
    expect(readStamp('hello')).toBeUndefined();
    expect(deliveryLatencyMs('hello', 5)).toBeUndefined();
    expect(deliveryLatencyMs(stampBody({ sentAt: 1000, from: 'a', n: 1 }), 990)).toBe(0);
    expect(() => stampBody({ sentAt: 1, from: 'bad name', n: 1 })).toThrow(/from/);
    expect(stampBody({ sentAt: 1, from: 'a', n: 1 }, 'x'.repeat(5000))).toHaveLength(4000);
  });

  it('counts missed and repeated seqs per room', () => {
    const seqs = new SeqTracker();
    expect(seqs.observe('r1', 10)).toEqual({ missed: 0, duplicate: false });
    expect(seqs.observe('r1', 11)).toEqual({ missed: 0, duplicate: false });
    expect(seqs.observe('r1', 14)).toEqual({ missed: 2, duplicate: false });
    expect(seqs.observe('r1', 14)).toEqual({ missed: 0, duplicate: true });
    expect(seqs.observe('r2', 1)).toEqual({ missed: 0, duplicate: false });
    expect(seqs.lastSeq('r1')).toBe(14);
  });
});

describe('batch cadence', () => {
  it('computes gaps and their statistics', () => {
    expect(intervals([0, 250, 510, 750])).toEqual([250, 260, 240]);
    expect(intervalStats([0])).toBeUndefined();
    expect(intervalStats([0, 250, 510, 750, 1000])).toEqual({ count: 4, min: 240, max: 260, mean: 250, p50: 250, p95: 260 });
    expect(percentile([], 50)).toBeNaN();
    expect(percentile([5, 1, 3], 0)).toBe(1);
    expect(percentile([5, 1, 3], 100)).toBe(5);
  });

  it('classifies gaps against the interval', () => {
    expect(classifyInterval(250, 250)).toBe('on_time');
    expect(classifyInterval(199, 250)).toBe('early');
    expect(classifyInterval(501, 250)).toBe('late');
    expect(classifyInterval(240, 250, { early: 0.98 })).toBe('early');
  });

  it('meters gaps one batch at a time', () => {
    const meter = new IntervalMeter();
    expect(meter.record(100)).toBeUndefined();
    expect(meter.record(360)).toBe(260);
    meter.reset();
    expect(meter.record(400)).toBeUndefined();
  });
});

describe('environment', () => {
  it('reads numbers, strings and durations with defaults', () => {
    const env = { VUS: '300', SHARE: '0.25', EMPTY: ' ', NAME: 'x', D: '1m30s' };
    expect(intEnv(env, 'VUS', 1)).toBe(300);
    expect(intEnv(env, 'MISSING', 7)).toBe(7);
    expect(intEnv(env, 'EMPTY', 7)).toBe(7);
    expect(numberEnv(env, 'SHARE', 1, { min: 0, max: 1 })).toBe(0.25);
    expect(stringEnv(env, 'NAME', 'y')).toBe('x');
    expect(durationEnv(env, 'D', '5m')).toBe('1m30s');
    expect(durationMs('1m30s')).toBe(90_000);
    expect(durationMs('1h2m3s500ms')).toBe(3_723_500);
  });

  it('names the variable in errors', () => {
    expect(() => intEnv({ VUS: '2k' }, 'VUS', 1)).toThrow(/VUS must be an integer/);
    expect(() => intEnv({ VUS: '0' }, 'VUS', 1, { min: 1 })).toThrow(/VUS must be at least 1/);
    expect(() => numberEnv({ S: 'x' }, 'S', 1)).toThrow(/S must be a number/);
    expect(() => durationEnv({ D: '5 minutes' }, 'D', '1m')).toThrow(/D must be a duration/);
  });

  it('derives the GraphQL and WebSocket urls', () => {
    expect(endpoints({})).toEqual({ httpUrl: 'http://localhost:4000/graphql', wsUrl: 'ws://localhost:4000/graphql' });
    expect(endpoints({ BASE_URL: 'https://api.example.com/' })).toEqual({ httpUrl: 'https://api.example.com/graphql', wsUrl: 'wss://api.example.com/graphql' });
    expect(endpoints({ BASE_URL: 'http://h:1/graphql', WS_URL: 'ws://other:2/graphql' })).toEqual({ httpUrl: 'http://h:1/graphql', wsUrl: 'ws://other:2/graphql' });
    expect(() => endpoints({ BASE_URL: 'localhost:4000' })).toThrow(/BASE_URL/);
    expect(() => endpoints({ WS_URL: 'http://x' })).toThrow(/WS_URL/);
  });
});

describe('plan', () => {
  it('names users deterministically per run', () => {
    expect(userEmail('r1', 3)).toBe('lt-r1-3@loadtest.example');
    expect(() => userEmail('Bad Run', 1)).toThrow(/RUN_ID/);
  });

  it('splits users into rooms and picks senders in each', () => {
    const rooms = planRooms(7, 3);
    expect(rooms).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(roomOfUser(5, 3)).toBe(1);
    expect(senderIndices(rooms, 0.34)).toEqual([0, 3, 6]);
    expect(senderIndices(planRooms(20, 10), 0.2)).toEqual([0, 1, 10, 11]);
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(() => planRooms(0, 3)).toThrow();
    expect(() => senderIndices(rooms, 0)).toThrow();
  });

  it('keeps a stayer in every room for the churn scenario', () => {
    expect(churnRoles([[0, 1, 2, 3], [4, 5]], 2)).toEqual({ stayers: [[0, 1], [4]], churners: [2, 3, 5] });
  });

  it('rotates dashboard key sets', () => {
    expect(dashboardKeys(6, 3, 0, 2)).toEqual(['app.loadtest.k0', 'app.loadtest.k1', 'app.loadtest.k2']);
    expect(dashboardKeys(6, 3, 1, 2)).toEqual(['app.loadtest.k1', 'app.loadtest.k2', 'app.loadtest.k3']);
    expect(dashboardKeys(6, 3, 2, 2)).toEqual(dashboardKeys(6, 3, 0, 2));
    expect(() => dashboardKeys(3, 4, 0, 1)).toThrow();
  });
});

describe('operations', () => {
  it('are valid against the public contract, schema/schema.graphql', () => {
    const schema = buildSchema(readFileSync(new URL('../../schema/schema.graphql', import.meta.url), 'utf8'));
    const documents = Object.entries(operations as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
    expect(documents.length).toBeGreaterThanOrEqual(10);
    for (const [name, document] of documents) expect(validate(schema, parse(document)), name).toEqual([]);
  });

  it('narrows results', () => {
    expect(operations.messageFrom({ messageAdded: { id: '1', roomId: 'r', seq: 1, body: 'b', createdAt: 'x' } })?.seq).toBe(1);
    expect(operations.messageFrom({ other: 1 })).toBeUndefined();
    expect(operations.messageFrom(null)).toBeUndefined();
    expect(operations.batchFrom({ dashboard: { at: 'x', updates: [] } })?.at).toBe('x');
    expect(operations.batchFrom({ dashboard: { at: 'x' } })).toBeUndefined();
    expect(operations.errorCode({ errors: [{ message: 'm', extensions: { code: 'CONFLICT' } }] })).toBe('CONFLICT');
  });
});
