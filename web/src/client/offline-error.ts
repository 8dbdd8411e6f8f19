import type { CombinedError } from '@urql/core';

/**
 * The error given to a queued mutation that was not sent because an earlier
 * one could not reach the server: sending it would overtake the earlier one.
 */
export class QueuedBehindError extends Error {
  override readonly name = 'QueuedBehindError';
  constructor() {
    super('Not sent: an earlier queued mutation could not reach the server');
  }
}

// Gateways answer these while the API behind them restarts; the mutation never ran.
const GATEWAY_STATUSES = new Set([502, 503, 504]);

/**
 * True when a result failed because the API could not be reached, so that the
 * mutation should wait in the offline queue rather than fail.
 *
 * graphcache's default test only knows browser wording ("Failed to fetch");
 * Node's fetch says "fetch failed" (the cause, e.g. ECONNREFUSED, is nested),
 * so the rule here is structural: a network error without any HTTP response,
 * or a gateway status, is "offline". A response from the API, even an error, is not.
 */
export function isOfflineError(error: CombinedError | undefined): boolean {
  if (!error?.networkError) return false;
  const status = (error.response as { status?: number } | undefined)?.status;
  if (status !== undefined) return GATEWAY_STATUSES.has(status);
  return true;
}

/**
 * For an API answer that says "not now", how long to wait before sending
 * again, in ms; undefined for any other result. Such a mutation stays queued,
 * with the same `clientId`, instead of failing:
 * - `RATE_LIMITED` (e.g. while a long offline queue is replayed): after
 *   `extensions.retryAfter`;
 * - `UNAVAILABLE` with `retryable: true` (the API is up but its database or
 *   Redis is not, e.g. during a restart): 0 unless it names a `retryAfter`,
 *   so the reconnect schedule alone sets the pace.
 */
export function retryLaterMs(error: CombinedError | undefined): number | undefined {
  const limited = error?.graphQLErrors.find((e) => e.extensions?.code === 'RATE_LIMITED');
  const unavailable = error?.graphQLErrors.find((e) => e.extensions?.code === 'UNAVAILABLE' && e.extensions.retryable === true);
  const notNow = limited ?? unavailable;
  if (!notNow) return undefined;
  const seconds = Number(notNow.extensions.retryAfter);
  if (Number.isFinite(seconds) && seconds > 0) return seconds * 1_000;
  return limited ? 1_000 : 0;
}
