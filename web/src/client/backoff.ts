/**
 * When to try the WebSocket again after it was lost.
 *
 * The schedule is the product's: at once, then 2, 5, 10 and 30 s, and every
 * 30 s after that. Jitter is added on top (never subtracted) so that the
 * thousands of clients a draining server closes at the same instant (code 1012)
 * do not all come back in the same millisecond, and so that no attempt comes
 * earlier than the schedule promises.
 */
export const RECONNECT_SCHEDULE_MS: readonly number[] = [0, 2_000, 5_000, 10_000, 30_000];

export interface BackoffOptions {
  /** Delays for attempt 0, 1, 2, …; the last one repeats. Default {@link RECONNECT_SCHEDULE_MS}. */
  schedule?: readonly number[];
  /**
   * Jitter as a share of the delay (default 0.2: 10 s becomes 10–12 s), but at
   * least `minJitterMs`, so that the immediate first retry is spread too.
   */
  jitterRatio?: number;
  /** Smallest jitter window; default 1000 ms (the first retry lands within 0–1 s). */
  minJitterMs?: number;
  /** A number in [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry after a
 * loss): `schedule[min(attempt, last)]` plus a random jitter in
 * `[0, max(minJitterMs, delay × jitterRatio))`.
 */
export function reconnectDelayMs(attempt: number, options: BackoffOptions = {}): number {
  const schedule = options.schedule ?? RECONNECT_SCHEDULE_MS;
  if (schedule.length === 0) throw new Error('reconnect schedule must not be empty');
  const base = schedule[Math.min(Math.max(0, Math.floor(attempt)), schedule.length - 1)]!;
  const window = Math.max(options.minJitterMs ?? 1_000, base * (options.jitterRatio ?? 0.2));
  return Math.round(base + (options.random ?? Math.random)() * window);
}
