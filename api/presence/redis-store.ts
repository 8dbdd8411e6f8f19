import type { Redis } from 'ioredis';
import type { PresenceStore } from './store.ts';

// Per user, a sorted set of live connections scored by when they lapse
// (`<process>:<connection>`), and one set of users marked online. A process
// renews its connections' scores on a heartbeat; when it dies they lapse, and
// any surviving process's sweep marks the user offline.
const ADD = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('SADD', KEYS[2], ARGV[4])`;

const SETTLE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[2], ARGV[2])
end
return 0`;

export interface RedisPresenceOptions {
  /** A connection not renewed for this long counts as gone (its process died). */
  ttlMs: number;
  /** Key prefix, to share one Redis between deployments or test runs. */
  prefix?: string;
}

/** Presence shared by every API process through Redis, with lapsing connections. */
export class RedisPresenceStore implements PresenceStore {
  readonly shared = true;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisPresenceOptions,
  ) {
    this.prefix = options.prefix ?? 'presence:';
  }

  private connKey(userId: string) {
    return `${this.prefix}conns:${userId}`;
  }
  private get onlineKey() {
    return `${this.prefix}online`;
  }
  /** Connection ids are random UUIDs, unique across processes. */
  private member(connectionId: string) {
    return connectionId;
  }

  async add(userId: string, connectionId: string): Promise<boolean> {
    const lapse = Date.now() + this.options.ttlMs;
    const added = await this.redis.eval(ADD, 2, this.connKey(userId), this.onlineKey, this.member(connectionId), lapse, this.options.ttlMs * 2, userId);
    return added === 1;
  }

  async remove(userId: string, connectionId: string): Promise<void> {
    await this.redis.zrem(this.connKey(userId), this.member(connectionId));
  }

  async settle(userId: string): Promise<boolean> {
    return (await this.redis.eval(SETTLE, 2, this.connKey(userId), this.onlineKey, Date.now(), userId)) === 1;
  }

  async sweep(): Promise<string[]> {
    const users = await this.redis.smembers(this.onlineKey);
    if (users.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const userId of users) pipeline.eval(SETTLE, 2, this.connKey(userId), this.onlineKey, Date.now(), userId);
    const results = (await pipeline.exec()) ?? [];
    return users.filter((_, i) => results[i]?.[1] === 1);
  }

  async heartbeat(connections: ReadonlyMap<string, string>): Promise<void> {
    if (connections.size === 0) return;
    const lapse = Date.now() + this.options.ttlMs;
    const pipeline = this.redis.pipeline();
    for (const [connectionId, userId] of connections) {
      pipeline.zadd(this.connKey(userId), lapse, this.member(connectionId));
      pipeline.pexpire(this.connKey(userId), this.options.ttlMs * 2);
    }
    await pipeline.exec();
  }

  async online(userIds: readonly string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const flags = await this.redis.smismember(this.onlineKey, ...userIds);
    return new Set(userIds.filter((_, i) => flags[i] === 1));
  }

  async close(): Promise<void> {}
}
