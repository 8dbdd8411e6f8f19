import { isId, requireRoomMember, requireViewer } from './access.ts';
import { builder } from './builder.ts';
import { notFound } from './errors.ts';
import type { ReceiptEvent } from './events.ts';
import { advanceReadMark } from './lib/read-marks.ts';
import { memberRoomStream } from './lib/streams.ts';
import { Message } from './message.ts';
import { Room } from './room.ts';
import { DateTime } from './scalars.ts';
import { User } from './user.ts';

const ReadReceipt = builder.objectRef<ReceiptEvent>('ReadReceipt').implement({
  description: "A member's read mark in a room: they have read every message up to `lastReadSeq`.",
  fields: (t) => ({
    roomId: t.exposeID('roomId', { description: 'The room.' }),
    user: t.field({ type: User, description: 'The member.', resolve: (r) => r.user }),
    lastReadSeq: t.exposeInt('lastReadSeq', { description: 'The highest seq read; 0 when nothing is read yet.' }),
    readAt: t.field({ type: DateTime, nullable: true, description: 'When the mark last moved; null when nothing is read yet.', resolve: (r) => r.readAt || null }),
  }),
});

builder.mutationField('markRead', (t) =>
  t.field({
    type: ReadReceipt,
    authScopes: { loggedIn: true },
    description:
      "Marks a message and everything before it as read by the viewer. The mark only moves forward: marking an older message changes nothing and returns the current mark. Safe to repeat. Errors: NOT_FOUND (room or message), FORBIDDEN.",
    args: {
      roomId: t.arg.id({ required: true, description: 'The room.' }),
      messageId: t.arg.id({ required: true, description: 'The newest message the viewer has seen.' }),
    },
    resolve: async (_root, args, ctx) => {
      const roomId = String(args.roomId);
      const viewer = await requireRoomMember(ctx, roomId);
      const messageId = String(args.messageId);
      const message = isId(messageId)
        ? await ctx.db.message.findUnique({ where: { id: messageId }, select: { roomId: true, seq: true } })
        : null;
      if (!message || message.roomId !== roomId) throw notFound('Message');
      return advanceReadMark(ctx, roomId, viewer, message.seq);
    },
  }),
);

builder.subscriptionField('readReceipts', (t) =>
  t.field({
    type: ReadReceipt,
    authScopes: { loggedIn: true },
    description: "Members' read marks as they move forward (including the viewer's own). Errors: NOT_FOUND, FORBIDDEN. Ends when the viewer leaves the room.",
    args: { roomId: t.arg.id({ required: true, description: 'The room; the viewer must be a member.' }) },
    subscribe: (_root, args, ctx) =>
      memberRoomStream(ctx, String(args.roomId), () => ctx.pubsub.subscribe('receipt:updated', String(args.roomId))),
    resolve: (receipt) => receipt,
  }),
);

builder.objectField(Room, 'unreadCount', (t) =>
  t.int({
    description: "Messages from others after the viewer's read mark.",
    resolve: async (room, _args, ctx) => {
      const viewer = requireViewer(ctx);
      const mark = await ctx.db.roomMember.findUnique({
        where: { roomId_userId: { roomId: room.id, userId: viewer.id } },
        select: { lastReadSeq: true },
      });
      return ctx.db.message.count({
        where: { roomId: room.id, seq: { gt: mark?.lastReadSeq ?? 0 }, senderId: { not: viewer.id } },
      });
    },
  }),
);

builder.objectField(Room, 'readReceipts', (t) =>
  t.field({
    type: [ReadReceipt],
    description: "Every member's read mark, most advanced first.",
    resolve: async (room, _args, ctx) => {
      const rows = await ctx.db.roomMember.findMany({
        where: { roomId: room.id },
        orderBy: [{ lastReadSeq: 'desc' }, { joinedAt: 'asc' }],
        select: { lastReadSeq: true, readAt: true, user: { select: { id: true, name: true } } },
      });
      return rows.map((r) => ({ roomId: room.id, user: r.user, lastReadSeq: r.lastReadSeq, readAt: r.readAt?.toISOString() ?? '' }));
    },
  }),
);

builder.objectField(Message, 'readCount', (t) =>
  t.int({
    description: 'How many current members other than the sender have read this message (their mark is at or past it).',
    resolve: async (message, _args, ctx) => {
      const marks = await ctx.loaders.roomMarks.load(message.roomId);
      return marks.filter((m) => m.userId !== message.sender.id && m.lastReadSeq >= message.seq).length;
    },
  }),
);
