import { requireRoomMember, requireViewer } from './access.ts';
import { builder } from './builder.ts';
import { unavailable } from './errors.ts';
import type { TypingEvent } from './events.ts';
import { memberRoomStream } from './lib/streams.ts';
import { limitRate } from './lib/rate-limit.ts';
import { User } from './user.ts';

const TypingState = builder.objectRef<TypingEvent>('TypingState').implement({
  description: 'Who is typing in a room right now.',
  fields: (t) => ({
    roomId: t.exposeID('roomId', { description: 'The room.' }),
    users: t.field({ type: [User], description: 'Everyone typing now, in the order they started; empty when nobody is.', resolve: (s) => s.users }),
  }),
});

builder.mutationField('setTyping', (t) =>
  t.boolean({
    authScopes: { loggedIn: true },
    description:
      'Says the viewer is typing (or stopped). Clients send `true` at most every 300 ms while keys are pressed and `false` after 300 ms idle; the server drops a typist after about 5 s without a renewal and when they send a message. Safe to repeat. Errors: NOT_FOUND, FORBIDDEN, UNAVAILABLE (shared state briefly unreachable; retry), RATE_LIMITED.',
    args: {
      roomId: t.arg.id({ required: true, description: 'The room; the viewer must be a member.' }),
      isTyping: t.arg.boolean({ required: true, description: 'true while typing, false when stopped.' }),
    },
    resolve: async (_root, args, ctx) => {
      await limitRate(ctx, 'setTyping', requireViewer(ctx).id);
      const viewer = await requireRoomMember(ctx, String(args.roomId));
      try {
        await ctx.typing.set(String(args.roomId), { id: viewer.id, name: viewer.name }, args.isTyping);
      } catch (err) {
        ctx.log.warn({ err }, 'setTyping failed');
        throw unavailable('Typing');
      }
      return true;
    },
  }),
);

builder.subscriptionField('typing', (t) =>
  t.field({
    type: TypingState,
    authScopes: { loggedIn: true },
    description:
      'The full set of typists in a room, sent when it changes (at most once per second per typist), and first on subscribe when someone is typing. Errors: NOT_FOUND, FORBIDDEN. Ends when the viewer leaves the room.',
    args: { roomId: t.arg.id({ required: true, description: 'The room; the viewer must be a member.' }) },
    subscribe: (_root, args, ctx) => {
      const roomId = String(args.roomId);
      return memberRoomStream(ctx, roomId, async (_viewer, signal) => {
        const live = await ctx.pubsub.subscribe('typing:changed', roomId);
        signal.addEventListener('abort', () => void live.return?.(), { once: true });
        return typingStates(live, await ctx.typing.current(roomId), roomId);
      });
    },
    resolve: (state) => state,
  }),
);

/** The current set first (when someone is typing), then each change; the same set is never sent twice in a row. */
async function* typingStates(live: AsyncIterableIterator<TypingEvent>, now: TypingEvent['users'], roomId: string): AsyncGenerator<TypingEvent> {
  const key = (s: TypingEvent) => s.users.map((u) => u.id).join(',');
  let last: string | undefined;
  try {
    if (now.length > 0) {
      last = key({ roomId, users: now });
      yield { roomId, users: now };
    }
    for await (const state of live) {
      if (key(state) === last) continue;
      last = key(state);
      yield state;
    }
  } finally {
    await live.return?.();
  }
}
