import { z } from 'zod';
import type { RateLimitedAction } from '../../schema/context.ts';

export type { RateLimitedAction };

/** At most `points` uses per `durationSeconds` window, or null: unlimited. */
export type RateLimit = { points: number; durationSeconds: number } | null;

export type RateLimitSettings = Record<RateLimitedAction, RateLimit>;

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/**
 * An env value such as `120/30s` (120 uses per 30 seconds) or `off`. The
 * defaults sit well above what the product's clients do, so that only
 * scripts and attackers meet them.
 */
export const rateLimitEnv = z
  .string()
  .trim()
  .regex(/^(off|\d+\s*\/\s*\d+\s*[smhd])$/, 'a limit such as 120/30s (uses per window) or off')
  .transform((value): RateLimit => {
    if (value === 'off') return null;
    const [, points, amount, unit] = /^(\d+)\s*\/\s*(\d+)\s*([smhd])$/.exec(value) as unknown as [string, string, string, keyof typeof UNIT_SECONDS];
    return { points: Number(points), durationSeconds: Number(amount) * UNIT_SECONDS[unit] };
  })
  .refine((limit) => limit === null || (limit.points > 0 && limit.durationSeconds > 0), 'points and window must be above 0');

/**
 * Default limits, as env strings. Why these numbers:
 * - sign-in per address counts every attempt (each costs a scrypt hash);
 *   per email only failures count, so a user's own sign-ins never lock them out;
 * - sendMessage: a fast typist sends 2 messages/s, and a client flushing its
 *   offline queue sends faster for a moment: 120 per 30 s allows both;
 * - setTyping: renewals every 300 ms are ~3.3/s in one room: 60 per 10 s;
 * - publishMetrics: a feeder pushing 20 calls/s stays far below 1,200 per minute;
 * - docUpdate: an editor sends about one update per keystroke (a fast typist
 *   ~10/s) plus a burst when it comes back online: 1,200 per minute;
 * - docAwareness: cursor moves, throttled by clients, plus a renewal every 15 s: 600 per minute.
 */
export const DEFAULT_RATE_LIMITS: Record<RateLimitedAction, string> = {
  signInIp: '30/1m',
  signInEmail: '10/15m',
  signUpIp: '20/1h',
  sendMessage: '120/30s',
  setTyping: '60/10s',
  publishMetrics: '1200/1m',
  upload: '30/1m',
  docUpdate: '1200/1m',
  docAwareness: '600/1m',
};

/** The env variable that sets each action's limit. */
export const RATE_LIMIT_ENV: Record<RateLimitedAction, string> = {
  signInIp: 'RATE_LIMIT_SIGN_IN_IP',
  signInEmail: 'RATE_LIMIT_SIGN_IN_EMAIL',
  signUpIp: 'RATE_LIMIT_SIGN_UP_IP',
  sendMessage: 'RATE_LIMIT_SEND_MESSAGE',
  setTyping: 'RATE_LIMIT_SET_TYPING',
  publishMetrics: 'RATE_LIMIT_PUBLISH_METRICS',
  upload: 'RATE_LIMIT_UPLOAD',
  docUpdate: 'RATE_LIMIT_DOC_UPDATE',
  docAwareness: 'RATE_LIMIT_DOC_AWARENESS',
};
