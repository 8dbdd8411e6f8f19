import type { Clock, TypingService } from '../../schema/context.ts';
import type { PubSub, UserSummary } from '../../schema/events.ts';
import type { Logger } from '../logger.ts';
import type { TypingStore } from './store.ts';

export interface TypingOptions {
  /** A typist disappears after this long without a renewal. */
  ttlMs: number;
  /** At most one emission per user per room in this interval; changes in between are merged. */
  minIntervalMs: number;
  /** How often expired typists are looked for. */
  sweepMs: number;
}

interface RoomEmits {
  /** Ids of the set this process last published, so unchanged sets are not re-sent. */
  published: string;
  /** When each user last caused an emission from this process. */
  lastEmitBy: Map<string, number>;
  deferred?: NodeJS.Timeout;
}

/**
 * Typing indicators that cannot get stuck: an entry expires `ttlMs` after its
 * last renewal, and sending a message clears it (the send path calls
 * `set(…, false)`). Publishes `typing:changed` with the full set, at most once
 * per second per typist; faster changes are merged into the next emission.
 */
export class TypingTracker implements TypingService {
  private readonly emits = new Map<string, RoomEmits>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly deps: { pubsub: PubSub; clock: Clock; log: Logger },
    private readonly store: TypingStore,
    private readonly options: TypingOptions,
  ) {}

  start(): this {
    this.sweeper = setInterval(() => void this.sweep(), this.options.sweepMs);
    this.sweeper.unref();
    return this;
  }

  async set(roomId: string, user: UserSummary, isTyping: boolean): Promise<void> {
    const now = this.deps.clock.now().getTime();
    const change = await this.store.update(roomId, user, isTyping, now, this.options.ttlMs);
    if (change.changed) await this.emit(roomId, change.typists, user.id, now);
  }

  current(roomId: string): Promise<UserSummary[]> {
    return this.store.current(roomId, this.deps.clock.now().getTime());
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const room of this.emits.values()) clearTimeout(room.deferred);
    this.emits.clear();
  }

  private async emit(roomId: string, typists: UserSummary[], causedBy: string | null, now: number): Promise<void> {
    const room = this.emits.get(roomId) ?? { published: '', lastEmitBy: new Map<string, number>() };
    this.emits.set(roomId, room);
    const wait = causedBy === null ? 0 : (room.lastEmitBy.get(causedBy) ?? -Infinity) + this.options.minIntervalMs - now;
    if (wait > 0) {
      // Merge with whatever else changes until this user may cause an emission again.
      room.deferred ??= setTimeout(() => {
        room.deferred = undefined;
        void this.current(roomId).then((latest) => this.emit(roomId, latest, null, this.deps.clock.now().getTime()));
      }, wait);
      return;
    }
    const key = typists.map((u) => u.id).join(',');
    if (key === room.published) return;
    room.published = key;
    if (causedBy !== null) room.lastEmitBy.set(causedBy, now);
    for (const [id, at] of room.lastEmitBy) if (now - at >= this.options.minIntervalMs) room.lastEmitBy.delete(id);
    if (typists.length === 0 && !room.deferred && room.lastEmitBy.size === 0) this.emits.delete(roomId);
    try {
      await this.deps.pubsub.publish('typing:changed', roomId, { roomId, users: typists });
    } catch (err) {
      this.deps.log.warn({ err, roomId }, 'publishing typing:changed failed');
    }
  }

  private async sweep(): Promise<void> {
    try {
      const now = this.deps.clock.now().getTime();
      // Expiry is the server's doing, not the user's: it is not throttled.
      for (const { roomId, typists } of await this.store.expire(now)) await this.emit(roomId, typists, null, now);
    } catch (err) {
      this.deps.log.warn({ err }, 'typing expiry sweep failed');
    }
  }
}
