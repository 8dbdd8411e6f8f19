import type { Redis } from 'ioredis';
import type { UserSummary } from '../../schema/events.ts';
import type { TypingChange, TypingStore } from './store.ts';

// One hash per room (user id -> {n: name, s: started, e: expires}) and a set
// of rooms that have typists, for the expiry sweep. Every script drops
// expired entries first, so whichever process runs first reports the change.
const PRUNE = `
local function prune(key, now)
  local all = redis.call('HGETALL', key)
  local out, changed = {}, 0
  for i = 1, #all, 2 do
    local v = cjson.decode(all[i + 1])
    if v.e <= now then
      redis.call('HDEL', key, all[i])
      changed = 1
    else
      table.insert(out, {all[i], v.n, v.s})
    end
  end
  return out, changed
end`;

const UPDATE = `${PRUNE}
local now = tonumber(ARGV[4])
local out, changed = prune(KEYS[1], now)
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  local started = now
  if cur then started = cjson.decode(cur).s else changed = 1 end
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({n = ARGV[2], s = started, e = now + tonumber(ARGV[5])}))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]) * 2)
  redis.call('SADD', KEYS[2], ARGV[6])
elseif cur then
  redis.call('HDEL', KEYS[1], ARGV[1])
  changed = 1
end
out = prune(KEYS[1], now)
if #out == 0 then redis.call('SREM', KEYS[2], ARGV[6]) end
return {changed, cjson.encode(out)}`;

const EXPIRE = `${PRUNE}
local out, changed = prune(KEYS[1], tonumber(ARGV[1]))
if #out == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return {changed, cjson.encode(out)}`;

function decode(json: string): UserSummary[] {
  const rows = JSON.parse(json) as [string, string, number][] | Record<string, never>;
  if (!Array.isArray(rows)) return []; // cjson encodes an empty table as {}
  return rows.sort((a, b) => a[2] - b[2]).map(([id, name]) => ({ id, name }));
}

/** Typing state shared by every API process through Redis. */
export class RedisTypingStore implements TypingStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'typing:',
  ) {}

  private roomKey(roomId: string) {
    return `${this.prefix}room:${roomId}`;
  }
  private get roomsKey() {
    return `${this.prefix}rooms`;
  }

  async update(roomId: string, user: UserSummary, isTyping: boolean, now: number, ttlMs: number): Promise<TypingChange> {
    const [changed, json] = (await this.redis.eval(
      UPDATE,
      2,
      this.roomKey(roomId),
      this.roomsKey,
      user.id,
      user.name,
      isTyping ? '1' : '0',
      now,
      ttlMs,
      roomId,
    )) as [number, string];
    return { changed: changed === 1, typists: decode(json) };
  }

  async current(roomId: string, now: number): Promise<UserSummary[]> {
    const all = await this.redis.hgetall(this.roomKey(roomId));
    const rows = Object.entries(all)
      .map(([id, json]) => ({ id, ...(JSON.parse(json) as { n: string; s: number; e: number }) }))
      .filter((r) => r.e > now);
    return rows.sort((a, b) => a.s - b.s).map((r) => ({ id: r.id, name: r.n }));
  }

  async expire(now: number): Promise<{ roomId: string; typists: UserSummary[] }[]> {
    const rooms = await this.redis.smembers(this.roomsKey);
    if (rooms.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const roomId of rooms) pipeline.eval(EXPIRE, 2, this.roomKey(roomId), this.roomsKey, now, roomId);
    const results = (await pipeline.exec()) ?? [];
    const changes: { roomId: string; typists: UserSummary[] }[] = [];
    results.forEach(([err, value], i) => {
      if (err || !value) return;
      const [changed, json] = value as [number, string];
      if (changed === 1) changes.push({ roomId: rooms[i]!, typists: decode(json) });
    });
    return changes;
  }
}
