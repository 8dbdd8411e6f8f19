import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/**
 * A Redis connection for shared state (presence, typing). Commands fail fast
 * while Redis is unreachable instead of queueing, so a mutation never hangs on
 * an outage; the connection reconnects forever with capped backoff.
 */
export function createStateRedis(url: string, log: Logger): Redis {
  let down = false;
  const redis = new Redis(url, {
    connectTimeout: 5000,
    commandTimeout: 2000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(2000, 50 * 2 ** Math.min(times, 10)) + Math.floor(Math.random() * 50),
  });
  redis.on('error', (err) => {
    if (!down) log.warn({ err: err.message }, 'state Redis connection lost; reconnecting');
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info('state Redis connection recovered');
    down = false;
  });
  return redis;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
