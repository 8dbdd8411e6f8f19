import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimitedAction, RateLimiter, RateLimitExceeded } from '../../schema/context.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { RATE_LIMIT_ENV, type RateLimit, type RateLimitSettings } from './limits.ts';

/** The limits in force: every one null when `RATE_LIMITS=off`. */
export function rateLimitSettings(config: Config): RateLimitSettings {
  const off = config.RATE_LIMITS === 'off';
  const entries = Object.entries(RATE_LIMIT_ENV).map(([action, env]) => [action, off ? null : (config[env as keyof Config] as RateLimit)]);
  return Object.fromEntries(entries) as RateLimitSettings;
}

/**
 * Rate limits over rate-limiter-flexible's fixed windows: in this process's
 * memory, or in Redis (keys `<REDIS_PREFIX>rl:<action>:<key>`) so that every
 * process counts against the same budget. While Redis is unreachable each
 * process falls back to counting in its own memory: a Redis outage neither
 * fails sends nor lifts the limits.
 */
export function createRateLimiter(
  settings: RateLimitSettings,
  options: { redis?: Redis; prefix?: string; log: Logger; onRefused?(action: RateLimitedAction): void },
): RateLimiter {
  const limiters = new Map<RateLimitedAction, RateLimiterAbstract>();
  for (const [action, limit] of Object.entries(settings) as [RateLimitedAction, RateLimit][]) {
    if (!limit) continue;
    const base = { points: limit.points, duration: limit.durationSeconds, keyPrefix: `${options.prefix ?? ''}rl:${action}` };
    limiters.set(
      action,
      options.redis
        ? new RateLimiterRedis({
            ...base,
            storeClient: options.redis,
            // Refuse the Redis path at once during an outage rather than wait
            // for the command timeout on every request: the insurance counts.
            rejectIfRedisNotReady: true,
            insuranceLimiter: new RateLimiterMemory(base),
          })
        : new RateLimiterMemory(base),
    );
  }

  const exempt = (action: RateLimitedAction, key: string) => PER_ADDRESS.has(action) && isLoopback(key);
  const exceeded = (res: RateLimiterRes): RateLimitExceeded => ({ retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) });

  return {
    async consume(action, key) {
      const limiter = limiters.get(action);
      if (!limiter || exempt(action, key)) return null;
      try {
        await limiter.consume(key);
        return null;
      } catch (error) {
        if (error instanceof RateLimiterRes) {
          options.onRefused?.(action);
          return exceeded(error);
        }
        // Only reachable if the insurance itself failed: better to serve than to refuse everyone.
        options.log.warn({ err: error, action }, 'rate limiter failed; allowing the request');
        return null;
      }
    },
    async peek(action, key) {
      const limiter = limiters.get(action);
      if (!limiter || exempt(action, key)) return null;
      try {
        const res = await limiter.get(key);
        if (!res || res.remainingPoints > 0) return null;
        options.onRefused?.(action);
        return exceeded(res);
      } catch (error) {
        options.log.warn({ err: error, action }, 'rate limiter failed; allowing the request');
        return null;
      }
    },
    async reset(action, key) {
      await limiters.get(action)?.delete(key).catch((error: unknown) => options.log.warn({ err: error, action }, 'rate limiter reset failed'));
    },
  };
}

const PER_ADDRESS: ReadonlySet<RateLimitedAction> = new Set(['signInIp', 'signUpIp']);

/**
 * Loopback clients are not limited per address: they are a proxy on the same
 * host (whose clients TRUST_PROXY tells apart) or local tools and tests, and
 * counting them as one client would lock all of them out together.
 */
function isLoopback(address: string): boolean {
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address) || /^::ffff:127\./.test(address);
}
