import { requireRoomMember } from '../access.ts';
import type { Context, Viewer } from '../context.ts';

/**
 * Yields from `source` until `stop` resolves, then closes `source` (which
 * unsubscribes it) and ends. Used to end a member's room subscriptions when
 * they leave the room.
 */
export async function* takeUntil<T>(source: AsyncIterator<T>, stop: Promise<unknown>): AsyncGenerator<T> {
  const stopped = stop.then(() => STOP);
  try {
    while (true) {
      const next = await Promise.race([source.next(), stopped]);
      if (typeof next === 'symbol' || next.done) return;
      yield next.value;
    }
  } finally {
    await source.return?.();
  }
}
const STOP = Symbol('stop');

/**
 * Resolves when `userId` leaves `roomId`. Subscribes at once; call `cancel`
 * when the room stream ends for another reason so the listener is released.
 */
export async function whenMemberLeaves(
  ctx: Context,
  roomId: string,
  userId: string,
): Promise<{ left: Promise<void>; cancel: () => void }> {
  const events = await ctx.pubsub.subscribe('member:changed', roomId);
  const left = (async () => {
    for await (const event of { [Symbol.asyncIterator]: () => events }) {
      if (event.userId === userId && event.change === 'left') return;
    }
  })();
  return { left: left.then(() => undefined, () => undefined), cancel: () => void events.return?.() };
}

/**
 * The common shape of a room subscription: authorizes the viewer as a member
 * (NOT_FOUND / FORBIDDEN), builds the stream, and ends it when the viewer
 * leaves the room.
 */
export async function memberRoomStream<T>(
  ctx: Context,
  roomId: string,
  build: (viewer: Viewer) => Promise<AsyncIterator<T>> | AsyncIterator<T>,
): Promise<AsyncGenerator<T>> {
  const viewer = await requireRoomMember(ctx, roomId);
  const membership = await whenMemberLeaves(ctx, roomId, viewer.id);
  let source: AsyncIterator<T>;
  try {
    source = await build(viewer);
  } catch (error) {
    membership.cancel();
    throw error;
  }
  return (async function* () {
    try {
      yield* { [Symbol.asyncIterator]: () => takeUntil(source, membership.left) };
    } finally {
      membership.cancel();
    }
  })();
}
