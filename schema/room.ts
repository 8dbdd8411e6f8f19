import { z } from 'zod';
import type { Context } from './context.ts';
import { requireRoomMember, requireViewer, isId } from './access.ts';
import { builder, type RoomShape } from './builder.ts';
import { badInput, forbidden, notFound } from './errors.ts';
import { DateTime } from './scalars.ts';
import { User } from './user.ts';
import { parseInput } from './validation.ts';

export const Room = builder.objectRef<RoomShape & { isPrivate: boolean; lastSeq: number; lastMessageAt: Date | null }>('Room').implement({
  description: 'A chat room. Only its members can read it, write to it or subscribe to it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable identifier (a UUID).' }),
    name: t.exposeString('name', { description: 'Room name, 1 to 100 characters.' }),
    isPrivate: t.exposeBoolean('isPrivate', {
      description: 'Private rooms cannot be joined with joinRoom; members are added when the room is created.',
    }),
    createdAt: t.field({ type: DateTime, description: 'When the room was created.', resolve: (r) => r.createdAt }),
    lastMessageAt: t.field({
      type: DateTime,
      nullable: true,
      description: 'When the latest message was sent; null before the first one.',
      resolve: (r) => r.lastMessageAt,
    }),
    lastSeq: t.exposeInt('lastSeq', {
      description: 'The `seq` of the latest message (0 when empty). Pass it as `afterSeq` to messageAdded to receive only what comes next.',
    }),
    members: t.field({
      type: [User],
      description: 'Current members, in the order they joined.',
      resolve: async (room, _args, ctx) => {
        const rows = await ctx.db.roomMember.findMany({
          where: { roomId: room.id },
          orderBy: { joinedAt: 'asc' },
          select: { user: { select: { id: true, name: true } } },
        });
        return rows.map((r) => r.user);
      },
    }),
  }),
});

const roomSelect = {
  id: true,
  name: true,
  isPrivate: true,
  createdAt: true,
  createdById: true,
  lastSeq: true,
  lastMessageAt: true,
} as const;

const CreateRoom = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
  memberIds: z.array(z.string()).max(1000, 'at most 1000 members'),
  isPrivate: z.boolean(),
});

const CreateRoomInput = builder.inputType('CreateRoomInput', {
  description: 'A new room.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Room name, 1 to 100 characters.' }),
    memberIds: t.idList({
      required: false,
      description: 'Users to add besides the creator, who is always a member. At most 1000. Unknown ids are BAD_USER_INPUT.',
    }),
    isPrivate: t.boolean({ required: false, defaultValue: false, description: 'When true, nobody can join by id; defaults to false.' }),
  }),
});

builder.queryField('rooms', (t) =>
  t.field({
    type: [Room],
    authScopes: { loggedIn: true },
    description: "The viewer's rooms, most recently active first.",
    resolve: async (_root, _args, ctx) => {
      const viewer = requireViewer(ctx);
      return ctx.db.room.findMany({
        where: { members: { some: { userId: viewer.id } } },
        orderBy: [{ lastMessageAt: { sort: 'desc', nulls: 'last' } }, { createdAt: 'desc' }],
        select: roomSelect,
      });
    },
  }),
);

builder.queryField('room', (t) =>
  t.field({
    type: Room,
    authScopes: { loggedIn: true },
    description: 'One room the viewer is a member of. Errors: NOT_FOUND, FORBIDDEN for non-members.',
    args: { id: t.arg.id({ required: true, description: 'The room id.' }) },
    resolve: async (_root, { id }, ctx) => {
      await requireRoomMember(ctx, String(id));
      return ctx.db.room.findUniqueOrThrow({ where: { id: String(id) }, select: roomSelect });
    },
  }),
);

builder.mutationField('createRoom', (t) =>
  t.field({
    type: Room,
    authScopes: { loggedIn: true },
    description: 'Creates a room with the viewer and the given users as members.',
    args: { input: t.arg({ type: CreateRoomInput, required: true, description: 'The room to create.' }) },
    resolve: async (_root, { input }, ctx) => {
      const viewer = requireViewer(ctx);
      const data = parseInput(CreateRoom, {
        name: input.name,
        memberIds: (input.memberIds ?? []).map(String),
        isPrivate: input.isPrivate ?? false,
      });
      const others = [...new Set(data.memberIds)].filter((id) => id !== viewer.id);
      if (others.some((id) => !isId(id))) throw badInput('memberIds: unknown user id', 'memberIds');
      const found = await ctx.db.user.count({ where: { id: { in: others } } });
      if (found !== others.length) throw badInput('memberIds: unknown user id', 'memberIds');
      const room = await ctx.db.room.create({
        data: {
          name: data.name,
          isPrivate: data.isPrivate,
          createdById: viewer.id,
          members: { create: [viewer.id, ...others].map((userId) => ({ userId })) },
        },
        select: roomSelect,
      });
      for (const userId of [viewer.id, ...others]) await publishMembership(ctx, room.id, userId, 'joined');
      ctx.notifications.onMembersAdded(room, others, { id: viewer.id, name: viewer.name });
      return room;
    },
  }),
);

builder.mutationField('joinRoom', (t) =>
  t.field({
    type: Room,
    authScopes: { loggedIn: true },
    description: 'Joins a public room. Safe to repeat: joining a room you are in returns it unchanged. Errors: NOT_FOUND, FORBIDDEN for private rooms.',
    args: { roomId: t.arg.id({ required: true, description: 'The room to join.' }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const roomId = String(args.roomId);
      if (!isId(roomId)) throw notFound('Room');
      const room = await ctx.db.room.findUnique({
        where: { id: roomId },
        select: { ...roomSelect, members: { where: { userId: viewer.id }, select: { userId: true } } },
      });
      if (!room) throw notFound('Room');
      const { members, ...shape } = room;
      if (members.length > 0) return shape;
      if (room.isPrivate) throw forbidden('This room is private.');
      await ctx.db.roomMember.upsert({
        where: { roomId_userId: { roomId, userId: viewer.id } },
        create: { roomId, userId: viewer.id },
        update: {},
      });
      await publishMembership(ctx, roomId, viewer.id, 'joined');
      return shape;
    },
  }),
);

builder.mutationField('leaveRoom', (t) =>
  t.boolean({
    authScopes: { loggedIn: true },
    description:
      'Leaves a room. Returns true when the viewer was a member, false when not (safe to repeat). Live subscriptions to the room end. Errors: NOT_FOUND.',
    args: { roomId: t.arg.id({ required: true, description: 'The room to leave.' }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const roomId = String(args.roomId);
      if (!isId(roomId)) throw notFound('Room');
      const exists = await ctx.db.room.count({ where: { id: roomId } });
      if (!exists) throw notFound('Room');
      const { count } = await ctx.db.roomMember.deleteMany({ where: { roomId, userId: viewer.id } });
      if (count > 0) {
        await publishMembership(ctx, roomId, viewer.id, 'left');
      }
      return count > 0;
    },
  }),
);

/**
 * Announces a membership change that is already stored. A broker outage does
 * not turn it into an error (the client would retry a change that happened):
 * it is logged, and room feeds re-check their subscribers' membership when
 * the broker is back.
 */
async function publishMembership(ctx: Context, roomId: string, userId: string, change: 'joined' | 'left'): Promise<void> {
  try {
    await ctx.pubsub.publish('member:changed', roomId, { roomId, userId, change });
  } catch (error) {
    ctx.log.error({ err: error, roomId, userId, change }, 'publishing member:changed failed');
  }
}
