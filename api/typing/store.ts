import type { UserSummary } from '../../schema/events.ts';

export interface TypingChange {
  /** Whether the set of typists changed (not merely renewed). */
  changed: boolean;
  /** The room's typists afterwards, in the order they started. */
  typists: UserSummary[];
}

/**
 * Who is typing where, with expiry: this process's memory by default, Redis
 * when several processes serve one user base. Each change is decided
 * atomically, so among many processes exactly one sees it.
 */
export interface TypingStore {
  update(roomId: string, user: UserSummary, isTyping: boolean, now: number, ttlMs: number): Promise<TypingChange>;
  current(roomId: string, now: number): Promise<UserSummary[]>;
  /** Drops typists whose time ran out; returns the rooms that changed. */
  expire(now: number): Promise<{ roomId: string; typists: UserSummary[] }[]>;
}

interface Entry {
  user: UserSummary;
  startedAt: number;
  expiresAt: number;
}

/** Typing state of this process only (embedded default). */
export class MemoryTypingStore implements TypingStore {
  private readonly rooms = new Map<string, Map<string, Entry>>();

  async update(roomId: string, user: UserSummary, isTyping: boolean, now: number, ttlMs: number): Promise<TypingChange> {
    const room = this.rooms.get(roomId) ?? new Map<string, Entry>();
    let changed = this.dropExpired(room, now);
    const current = room.get(user.id);
    if (isTyping) {
      if (!current) changed = true;
      room.set(user.id, { user, startedAt: current?.startedAt ?? now, expiresAt: now + ttlMs });
    } else if (current) {
      room.delete(user.id);
      changed = true;
    }
    if (room.size > 0) this.rooms.set(roomId, room);
    else this.rooms.delete(roomId);
    return { changed, typists: ordered(room) };
  }

  async current(roomId: string, now: number): Promise<UserSummary[]> {
    const room = this.rooms.get(roomId);
    return room ? ordered(room).filter((u) => (room.get(u.id)?.expiresAt ?? 0) > now) : [];
  }

  async expire(now: number): Promise<{ roomId: string; typists: UserSummary[] }[]> {
    const changes: { roomId: string; typists: UserSummary[] }[] = [];
    for (const [roomId, room] of this.rooms) {
      if (!this.dropExpired(room, now)) continue;
      changes.push({ roomId, typists: ordered(room) });
      if (room.size === 0) this.rooms.delete(roomId);
    }
    return changes;
  }

  private dropExpired(room: Map<string, Entry>, now: number): boolean {
    let dropped = false;
    for (const [id, entry] of room) {
      if (entry.expiresAt <= now) {
        room.delete(id);
        dropped = true;
      }
    }
    return dropped;
  }
}

function ordered(room: Map<string, Entry>): UserSummary[] {
  return [...room.values()].sort((a, b) => a.startedAt - b.startedAt).map((e) => e.user);
}
