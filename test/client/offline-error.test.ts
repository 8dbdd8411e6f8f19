import { CombinedError } from '@urql/core';
import { describe, expect, it } from 'vitest';
import { isOfflineError, QueuedBehindError, retryLaterMs } from '../../web/src/client/offline-error.ts';

describe('isOfflineError', () => {
  it('is true for failures that never reached the API', () => {
    // Node's fetch ("fetch failed"), browsers ("Failed to fetch", "Load failed"), a timeout.
    for (const message of ['fetch failed', 'Failed to fetch', 'Load failed', 'The operation was aborted due to timeout']) {
      expect(isOfflineError(new CombinedError({ networkError: new TypeError(message) }))).toBe(true);
    }
    expect(isOfflineError(new CombinedError({ networkError: new QueuedBehindError() }))).toBe(true);
  });

  it('is true for gateway answers while the API restarts', () => {
    for (const status of [502, 503, 504]) {
      expect(isOfflineError(new CombinedError({ networkError: new Error('Bad Gateway'), response: { status } }))).toBe(true);
    }
  });

  it('is false for answers from the API', () => {
    expect(isOfflineError(undefined)).toBe(false);
    expect(isOfflineError(new CombinedError({ graphQLErrors: [{ message: 'No', extensions: { code: 'FORBIDDEN' } }] }))).toBe(false);
    expect(isOfflineError(new CombinedError({ networkError: new Error('Unauthorized'), response: { status: 401 } }))).toBe(false);
    expect(isOfflineError(new CombinedError({ networkError: new Error('Internal'), response: { status: 500 } }))).toBe(false);
  });
});

describe('retryLaterMs', () => {
  it('reads RATE_LIMITED retryAfter (seconds) as milliseconds', () => {
    const limited = (extensions: Record<string, unknown>) => new CombinedError({ graphQLErrors: [{ message: 'Too many', extensions }] });
    expect(retryLaterMs(limited({ code: 'RATE_LIMITED', retryAfter: 26 }))).toBe(26_000);
    expect(retryLaterMs(limited({ code: 'RATE_LIMITED' }))).toBe(1_000);
    expect(retryLaterMs(limited({ code: 'FORBIDDEN' }))).toBeUndefined();
    expect(retryLaterMs(new CombinedError({ networkError: new TypeError('fetch failed') }))).toBeUndefined();
    expect(retryLaterMs(undefined)).toBeUndefined();
  });
});
