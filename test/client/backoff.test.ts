import { describe, expect, it } from 'vitest';
import { reconnectDelayMs, RECONNECT_SCHEDULE_MS } from '../../web/src/client/backoff.ts';

describe('reconnectDelayMs', () => {
  it('follows 0, 2, 5, 10, 30 s, then stays at 30 s', () => {
    const noJitter = { random: () => 0 };
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => reconnectDelayMs(n, noJitter))).toEqual([0, 2_000, 5_000, 10_000, 30_000, 30_000, 30_000, 30_000]);
    expect(RECONNECT_SCHEDULE_MS).toEqual([0, 2_000, 5_000, 10_000, 30_000]);
  });

  it('adds up to 20% jitter, and at least a 1 s window, never less than the schedule', () => {
    const almostOne = { random: () => 0.999_999 };
    expect([0, 1, 2, 3, 4, 9].map((n) => reconnectDelayMs(n, almostOne))).toEqual([1_000, 3_000, 6_000, 12_000, 36_000, 36_000]);
    for (let attempt = 0; attempt < 8; attempt++) {
      for (let i = 0; i < 200; i++) {
        const delay = reconnectDelayMs(attempt);
        const base = RECONNECT_SCHEDULE_MS[Math.min(attempt, 4)]!;
        expect(delay).toBeGreaterThanOrEqual(base);
        expect(delay).toBeLessThanOrEqual(base + Math.max(1_000, base * 0.2));
      }
    }
  });

  it('spreads clients that reconnect at the same moment', () => {
    const first = new Set(Array.from({ length: 100 }, () => reconnectDelayMs(0)));
    expect(first.size).toBeGreaterThan(50);
  });

  it('takes a custom schedule and jitter (tests use a fast one)', () => {
    const fast = { schedule: [0, 100, 300], jitterRatio: 0, minJitterMs: 0 };
    expect([0, 1, 2, 3].map((n) => reconnectDelayMs(n, fast))).toEqual([0, 100, 300, 300]);
    expect(reconnectDelayMs(-1, fast)).toBe(0);
    expect(() => reconnectDelayMs(0, { schedule: [] })).toThrow(/empty/);
  });
});
