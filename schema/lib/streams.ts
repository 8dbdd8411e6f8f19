import type { Context } from '../context.ts';

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
