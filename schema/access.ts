import type { Context, Viewer } from './context.ts';
import { forbidden, notFound, unauthenticated } from './errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `id` has the shape of the ids this API hands out. */
export function isId(id: string): boolean {
  return UUID.test(id);
}

export function requireViewer(ctx: Context): Viewer {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer;
}

/**
 * Authorizes the viewer for a room: NOT_FOUND when the room does not exist,
 * FORBIDDEN when it exists but the viewer is not a member. Every query,
 * mutation and subscription on a room's content goes through here.
 */
export async function requireRoomMember(ctx: Context, roomId: string): Promise<Viewer> {
  const viewer = requireViewer(ctx);
  if (!isId(roomId)) throw notFound('Room');
  // One indexed read for a member (the common case); the room itself is only
  // looked up to tell NOT_FOUND from FORBIDDEN.
  const member = await ctx.db.roomMember.findUnique({ where: { roomId_userId: { roomId, userId: viewer.id } }, select: { userId: true } });
  if (member) return viewer;
  const room = await ctx.db.room.findUnique({ where: { id: roomId }, select: { id: true } });
  if (!room) throw notFound('Room');
  throw forbidden('You are not a member of this room.');
}
