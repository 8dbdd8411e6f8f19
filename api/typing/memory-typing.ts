import type { Clock, TypingService } from '../../schema/context.ts';
import type { PubSub, UserSummary } from '../../schema/events.ts';

export interface TypingOptions {
  /** A typist disappears after this long without a renewal. */
  ttlMs: number;
  /** At most one emission per user per room in this interval; changes in between are merged. */
  minIntervalMs: number;
}

export const defaultTypingOptions: TypingOptions = { ttlMs: 5000, minIntervalMs: 1000 };

interface Typist {
  user: UserSummary;
  expiresAt: number;
}

interface RoomState {
  typists: Map<string, Typist>;
  /** Ids of the set last published, so unchanged sets are not re-sent. */
  published: string;
  /** When each user last caused an emission. */
  lastEmitBy: Map<string, number>;
  deferred?: NodeJS.Timeout;
}

/**
 * Typing state of this process, for the embedded default. Indicators cannot
 * get stuck: an entry expires `ttlMs` after its last renewal, and sending a
 * message clears it (the send path calls `set(…, false)`).
 */
export class MemoryTyping implements TypingService {
  private readonly rooms = new Map<string, RoomState>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly pubsub: PubSub,
    private readonly clock: Clock,
    private readonly options: TypingOptions = defaultTypingOptions,
  ) {}

  async set(roomId: string, user: UserSummary, isTyping: boolean): Promise<void> {
    const now = this.clock.now().getTime();
    let room = this.rooms.get(roomId);
    if (!room) {
      if (!isTyping) return;
      room = { typists: new Map(), published: '', lastEmitBy: new Map() };
      this.rooms.set(roomId, room);
    }
    if (isTyping) room.typists.set(user.id, { user, expiresAt: now + this.options.ttlMs });
    else room.typists.delete(user.id);
    this.ensureSweeper();
    await this.changed(roomId, room, [user.id], now);
  }

  async current(roomId: string): Promise<UserSummary[]> {
    return [...(this.rooms.get(roomId)?.typists.values() ?? [])].map((t) => t.user);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const room of this.rooms.values()) clearTimeout(room.deferred);
    this.rooms.clear();
  }

  private async changed(roomId: string, room: RoomState, causedBy: string[], now: number): Promise<void> {
    const key = [...room.typists.keys()].join(',');
    if (key === room.published) return;
    const waitFor = Math.max(...causedBy.map((id) => (room.lastEmitBy.get(id) ?? -Infinity) + this.options.minIntervalMs - now));
    if (waitFor > 0) {
      // Merge with whatever else changes until this user may cause an emission again.
      room.deferred ??= setTimeout(() => {
        room.deferred = undefined;
        void this.changed(roomId, room, [], this.clock.now().getTime());
      }, waitFor);
      return;
    }
    room.published = key;
    for (const id of causedBy) room.lastEmitBy.set(id, now);
    const users = [...room.typists.values()].map((t) => t.user);
    if (users.length === 0 && !room.deferred) this.rooms.delete(roomId);
    await this.pubsub.publish('typing:changed', roomId, { roomId, users });
  }

  private ensureSweeper() {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, this.options.ttlMs / 2));
    this.sweeper.unref();
  }

  private sweep() {
    const now = this.clock.now().getTime();
    for (const [roomId, room] of this.rooms) {
      const expired = [...room.typists.values()].filter((t) => t.expiresAt <= now).map((t) => t.user.id);
      if (expired.length === 0) continue;
      for (const id of expired) room.typists.delete(id);
      // Expiry is the server's doing, not the user's: it is not throttled.
      void this.changed(roomId, room, [], now);
    }
    if (this.rooms.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
