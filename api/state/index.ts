import type { Redis } from 'ioredis';
import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock } from '../../schema/context.ts';
import type { PubSub } from '../../schema/events.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { PresenceTracker } from '../presence/presence-tracker.ts';
import { RedisPresenceStore } from '../presence/redis-store.ts';
import { MemoryPresenceStore } from '../presence/store.ts';
import { RedisTypingStore } from '../typing/redis-store.ts';
import { MemoryTypingStore } from '../typing/store.ts';
import { TypingTracker } from '../typing/typing-tracker.ts';
import { createStateRedis, redisReady } from './redis-client.ts';

export interface LiveState {
  presence: PresenceTracker;
  typing: TypingTracker;
  /** The shared-state command connection when REDIS_URL is set (rate limits use it too). */
  redis?: Redis;
  /** Stops timers and closes the state connection (after presence has settled). */
  close(): Promise<void>;
}

/**
 * Presence and typing state: in this process's memory by default; in Redis
 * when REDIS_URL is set, so every API process sees the same users online and
 * typing, and a process that dies stops counting its users online once their
 * connections lapse (PRESENCE_TTL_MS).
 */
export async function createLiveState(
  config: Config,
  deps: { db: PrismaClient; pubsub: PubSub; clock: Clock; log: Logger },
): Promise<LiveState> {
  const redis = config.REDIS_URL ? createStateRedis(config.REDIS_URL, deps.log) : undefined;
  if (redis) {
    try {
      await redisReady(redis);
    } catch (error) {
      redis.disconnect();
      throw error;
    }
  }
  const ttlMs = config.PRESENCE_TTL_MS;
  const presence = new PresenceTracker(
    deps,
    redis ? new RedisPresenceStore(redis, { ttlMs, prefix: `${config.REDIS_PREFIX}presence:` }) : new MemoryPresenceStore(),
    { graceMs: config.PRESENCE_GRACE_MS, heartbeatMs: Math.max(200, Math.floor(ttlMs / 3)), sweepMs: Math.max(200, Math.floor(ttlMs / 6)) },
  ).start();
  const typing = new TypingTracker(deps, redis ? new RedisTypingStore(redis, `${config.REDIS_PREFIX}typing:`) : new MemoryTypingStore(), {
    ttlMs: config.TYPING_TTL_MS,
    minIntervalMs: 1000,
    sweepMs: Math.min(1000, Math.floor(config.TYPING_TTL_MS / 2)),
  }).start();
  return {
    presence,
    typing,
    redis,
    async close() {
      typing.stop();
      await presence.stop();
      await redis?.quit().catch(() => redis.disconnect());
    },
  };
}
