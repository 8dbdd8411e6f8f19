import DataLoader from 'dataloader';
import type { PrismaClient } from '../prisma/generated/client.ts';
import type { PresenceService } from './context.ts';

export interface MemberMark {
  userId: string;
  lastReadSeq: number;
}

/**
 * Batches the lookups that would otherwise run once per list item. Caching
 * is off: a subscription keeps its context for hours, and a cached value
 * would go stale; batching within one execution is what saves the queries.
 */
export function createLoaders(db: PrismaClient, presence: PresenceService) {
  return {
    online: new DataLoader<string, boolean>(
      async (ids) => {
        const online = await presence.online([...new Set(ids)]);
        return ids.map((id) => online.has(id));
      },
      { cache: false },
    ),
    lastSeenAt: new DataLoader<string, Date | null>(
      async (ids) => {
        const rows = await db.user.findMany({ where: { id: { in: [...new Set(ids)] } }, select: { id: true, lastSeenAt: true } });
        const byId = new Map(rows.map((r) => [r.id, r.lastSeenAt]));
        return ids.map((id) => byId.get(id) ?? null);
      },
      { cache: false },
    ),
    /** Read marks of every member of a room. */
    roomMarks: new DataLoader<string, MemberMark[]>(
      async (roomIds) => {
        const rows = await db.roomMember.findMany({
          where: { roomId: { in: [...new Set(roomIds)] } },
          select: { roomId: true, userId: true, lastReadSeq: true },
        });
        const byRoom = new Map<string, MemberMark[]>();
        for (const r of rows) {
          const list = byRoom.get(r.roomId) ?? [];
          list.push({ userId: r.userId, lastReadSeq: r.lastReadSeq });
          byRoom.set(r.roomId, list);
        }
        return roomIds.map((id) => byRoom.get(id) ?? []);
      },
      { cache: false },
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
