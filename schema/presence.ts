import { requireViewer } from './access.ts';
import { builder } from './builder.ts';
import type { Context } from './context.ts';
import type { PresenceEvent as PresenceEventShape } from './events.ts';
import { DateTime } from './scalars.ts';
import { returnable } from './lib/streams.ts';
import { User } from './user.ts';

export const PresenceStatus = builder.enumType('PresenceStatus', {
  description: 'Whether a user is connected.',
  values: {
    ONLINE: { description: 'Holds at least one live WebSocket connection (or left less than a few seconds ago).' },
    OFFLINE: { description: 'No live connection.' },
  } as const,
});

builder.objectField(User, 'status', (t) =>
  t.field({
    type: PresenceStatus,
    description: 'ONLINE while the user holds a live WebSocket connection to the API.',
    resolve: async (user, _args, ctx) => ((await ctx.loaders.online.load(user.id)) ? 'ONLINE' : 'OFFLINE'),
  }),
);

builder.objectField(User, 'lastSeenAt', (t) =>
  t.field({
    type: DateTime,
    nullable: true,
    description: "When the user's last live connection closed; null if they were never seen offline.",
    resolve: (user, _args, ctx) => (user.lastSeenAt !== undefined ? user.lastSeenAt : ctx.loaders.lastSeenAt.load(user.id)),
  }),
);

const PresenceEvent = builder.objectRef<PresenceEventShape>('PresenceEvent').implement({
  description: 'A user came online or went offline.',
  fields: (t) => ({
    user: t.field({
      type: User,
      description: 'Who changed.',
      resolve: (e) => ({ ...e.user, lastSeenAt: e.lastSeenAt ? new Date(e.lastSeenAt) : null }),
    }),
    status: t.field({ type: PresenceStatus, description: 'The new status.', resolve: (e) => e.status }),
    lastSeenAt: t.field({
      type: DateTime,
      nullable: true,
      description: 'When the last connection closed (for OFFLINE); null for ONLINE.',
      resolve: (e) => e.lastSeenAt,
    }),
  }),
});

/** How long "shares a room with the viewer" answers are reused by one subscription. */
const SHARED_ROOM_TTL_MS = 30_000;

builder.subscriptionField('presenceChanged', (t) =>
  t.field({
    type: PresenceEvent,
    authScopes: { loggedIn: true },
    description:
      'Presence changes of users who share at least one room with the viewer (not the viewer). A user counts as offline only after their last connection has been closed for a few seconds, so reloads do not flap.',
    subscribe: async (_root, _args, ctx) => {
      const viewer = requireViewer(ctx);
      const events = await ctx.pubsub.subscribe('presence:changed');
      return returnable(filterAsync(events, sharesRoomWith(ctx, viewer.id)), () => void events.return?.());
    },
    resolve: (event) => event,
  }),
);

function sharesRoomWith(ctx: Context, viewerId: string) {
  const known = new Map<string, { shares: boolean; at: number }>();
  return async (event: PresenceEventShape): Promise<boolean> => {
    const userId = event.user.id;
    if (userId === viewerId) return false;
    const now = Date.now();
    const cached = known.get(userId);
    if (cached && now - cached.at < SHARED_ROOM_TTL_MS) return cached.shares;
    const shared = await ctx.db.roomMember.count({
      where: { userId, room: { members: { some: { userId: viewerId } } } },
      take: 1,
    });
    known.set(userId, { shares: shared > 0, at: now });
    return shared > 0;
  };
}

async function* filterAsync<T>(source: AsyncIterableIterator<T>, keep: (value: T) => Promise<boolean>): AsyncGenerator<T> {
  try {
    for await (const value of source) if (await keep(value)) yield value;
  } finally {
    await source.return?.();
  }
}
