import type { Context } from '../context.ts';
import type { ReceiptEvent } from '../events.ts';

/**
 * Moves a member's mark forward to `seq` (never back) and publishes it.
 * Returns the mark as it stands afterwards.
 */
export async function advanceReadMark(ctx: Context, roomId: string, user: { id: string; name: string }, seq: number): Promise<ReceiptEvent> {
  const readAt = ctx.clock.now();
  const { count } = await ctx.db.roomMember.updateMany({
    where: { roomId, userId: user.id, lastReadSeq: { lt: seq } },
    data: { lastReadSeq: seq, readAt },
  });
  if (count === 0) {
    const mark = await ctx.db.roomMember.findUnique({
      where: { roomId_userId: { roomId, userId: user.id } },
      select: { lastReadSeq: true, readAt: true },
    });
    return { roomId, user, lastReadSeq: mark?.lastReadSeq ?? 0, readAt: mark?.readAt?.toISOString() ?? '' };
  }
  ctx.notifications.onRoomRead(roomId, user.id, seq);
  const receipt = { roomId, user: { id: user.id, name: user.name }, lastReadSeq: seq, readAt: readAt.toISOString() };
  try {
    await ctx.pubsub.publish('receipt:updated', roomId, receipt);
  } catch (err) {
    ctx.log.error({ err, roomId }, 'publishing receipt:updated failed');
  }
  return receipt;
}
