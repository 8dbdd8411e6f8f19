import { requireRoomMember } from '../access.ts';
import type { Context, Viewer } from '../context.ts';
import type { PubSub } from '../events.ts';

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
 * Makes `return()` take effect at once. An async generator that is awaiting
 * (not paused at a yield) queues `return()` until its next yield, so a
 * subscription to a quiet room would stay subscribed until the room's next
 * event. `interrupt` unblocks it (closes whatever it awaits); the returned
 * promise still waits for the generator's `finally` blocks.
 */
export function returnable<T>(source: AsyncGenerator<T>, interrupt: () => void): AsyncIterableIterator<T> {
  return {
    next: () => source.next(),
    return: (value?: unknown) => {
      interrupt();
      return source.return(value as T);
    },
    throw: (error?: unknown) => {
      interrupt();
      return source.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * The common shape of a room subscription: authorizes the viewer as a member
 * (NOT_FOUND / FORBIDDEN), builds the stream, and ends it when the viewer
 * leaves the room or the client unsubscribes. `build` gets a signal that
 * aborts on unsubscribe; a generator source closes its pub/sub queue on it.
 */
export async function memberRoomStream<T>(
  ctx: Context,
  roomId: string,
  build: (viewer: Viewer, signal: AbortSignal) => Promise<AsyncIterator<T>> | AsyncIterator<T>,
): Promise<AsyncIterableIterator<T>> {
  const viewer = await requireRoomMember(ctx, roomId);
  const membership = await whenMemberLeaves(ctx, roomId, viewer.id);
  const controller = new AbortController();
  let source: AsyncIterator<T>;
  try {
    source = await build(viewer, controller.signal);
  } catch (error) {
    membership.cancel();
    throw error;
  }
  // Ending the source (its pub/sub queue closed) ends the stream; that is
  // how both leaving the room and unsubscribing stop it without waiting for
  // the room's next event.
  const end = () => {
    controller.abort();
    void source.return?.();
  };
  void membership.left.then(end);
  const stream = (async function* () {
    try {
      yield* { [Symbol.asyncIterator]: () => source };
    } finally {
      membership.cancel();
    }
  })();
  return returnable(stream, () => {
    end();
    membership.cancel();
  });
}

/** Yielded by `withResyncs` after the broker reconnected. */
export const RESYNC = Symbol('resync');

/**
 * The events of a live pub/sub iterator, with RESYNC in between whenever the
 * broker reconnected: events published during the outage never arrive, so
 * the consumer re-reads the database at once instead of waiting for the next
 * event to show the gap. Ends when `live` ends.
 */
export async function* withResyncs<T>(pubsub: Pick<PubSub, 'onReconnect'>, live: AsyncIterator<T>): AsyncGenerator<T | typeof RESYNC> {
  let resync = false;
  let wake = () => {};
  const stopListening = pubsub.onReconnect(() => {
    resync = true;
    wake();
  });
  try {
    let pending = live.next();
    while (true) {
      const woken = new Promise<typeof RESYNC>((resolve) => (wake = () => resolve(RESYNC)));
      const next = resync ? RESYNC : await Promise.race([pending, woken]);
      if (next === RESYNC) {
        resync = false;
        yield RESYNC;
        continue;
      }
      if (next.done) return;
      pending = live.next();
      yield next.value;
    }
  } finally {
    stopListening();
  }
}
