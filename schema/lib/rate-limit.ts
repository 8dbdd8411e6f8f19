import type { Context, RateLimitedAction } from '../context.ts';
import { rateLimited } from '../errors.ts';

/** Counts one use of `action` by `key`; throws RATE_LIMITED (with `retryAfter`) over the limit. */
export async function limitRate(ctx: Pick<Context, 'rateLimiter'>, action: RateLimitedAction, key: string): Promise<void> {
  const refused = await ctx.rateLimiter.consume(action, key);
  if (refused) throw rateLimited(refused.retryAfterSeconds);
}

/** Throws RATE_LIMITED when `key` already used up `action`, without counting a use. */
export async function checkRate(ctx: Pick<Context, 'rateLimiter'>, action: RateLimitedAction, key: string): Promise<void> {
  const refused = await ctx.rateLimiter.peek(action, key);
  if (refused) throw rateLimited(refused.retryAfterSeconds);
}

/** The per-address key; requests whose address is unknown share one budget rather than escape it. */
export function addressKey(ctx: Pick<Context, 'clientIp'>): string {
  return ctx.clientIp ?? 'unknown';
}
