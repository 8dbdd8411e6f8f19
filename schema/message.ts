import { resolveCursorConnection } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import { isId, requireRoomMember, requireViewer } from './access.ts';
import { Attachment } from './attachment.ts';
import { builder, type MessageShape } from './builder.ts';
import type { Context, Services, Viewer } from './context.ts';
import { ErrorCode, badInput, unavailable, userError } from './errors.ts';
import type { MessageEvent } from './events.ts';
import { Room } from './room.ts';
import { DateTime } from './scalars.ts';
import { User } from './user.ts';
import { parseInput } from './validation.ts';
import { advanceReadMark } from './lib/read-marks.ts';
import { mapIterator, type OrderedFeed } from './lib/feed.ts';
import { memberRoomStream, RESYNC, withResyncs } from './lib/streams.ts';
import { limitRate } from './lib/rate-limit.ts';

export const Message = builder.objectRef<MessageShape>('Message').implement({
  description: 'A chat message. Immutable once sent.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable identifier (a UUID).' }),
    roomId: t.exposeID('roomId', { description: 'The room it was sent to.' }),
    seq: t.exposeInt('seq', {
      description: 'Position in the room: 1 for the first message, then increasing by exactly one, with no gaps.',
    }),
    body: t.exposeString('body', { description: 'Plain text, 1 to 4000 characters. Render as text, never as HTML.' }),
    clientId: t.exposeString('clientId', { description: "The sender's idempotency key given to sendMessage." }),
    createdAt: t.field({ type: DateTime, description: 'When the server accepted the message.', resolve: (m) => m.createdAt }),
    sender: t.field({ type: User, description: 'Who sent it.', resolve: (m) => m.sender }),
    attachments: t.field({ type: [Attachment], description: 'Files sent with the message, in the order given.', resolve: (m) => m.attachments }),
  }),
});

/** Prisma selection that yields everything a MessageShape needs, in one query. */
const messageInclude = {
  sender: { select: { id: true, name: true } },
  attachments: { select: { id: true, name: true, size: true, contentType: true }, orderBy: { createdAt: 'asc' } },
} as const;

function toEvent(m: MessageShape): MessageEvent {
  return { ...m, createdAt: m.createdAt.toISOString() };
}
function fromEvent(e: MessageEvent): MessageShape {
  return { ...e, createdAt: new Date(e.createdAt) };
}

const SendMessage = z.object({
  roomId: z.string(),
  body: z.string().refine((s) => s.trim().length > 0, 'must not be empty').pipe(z.string().max(4000, 'must be at most 4000 characters')),
  clientId: z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
  attachmentIds: z.array(z.string()).max(10, 'at most 10 attachments'),
});

const SendMessageInput = builder.inputType('SendMessageInput', {
  description: 'A message to send.',
  fields: (t) => ({
    roomId: t.id({ required: true, description: 'The room to send to; the viewer must be a member.' }),
    body: t.string({ required: true, description: 'Plain text, 1 to 4000 characters, not only white space.' }),
    clientId: t.string({
      required: true,
      description:
        'Idempotency key chosen by the sender (e.g. a UUID), 1 to 100 characters. Sending the same clientId again returns the first message and creates nothing new, so a client can safely retry.',
    }),
    attachmentIds: t.idList({
      required: false,
      description: 'Uploads (from `POST /uploads`) to attach, owned by the viewer and not attached elsewhere. At most 10.',
    }),
  }),
});

builder.mutationField('sendMessage', (t) =>
  t.field({
    type: Message,
    authScopes: { loggedIn: true },
    description:
      'Sends a message to a room. Safe to retry with the same clientId. Errors: BAD_USER_INPUT (empty or too long body, bad attachments), NOT_FOUND, FORBIDDEN, CONFLICT (clientId already used in another room), RATE_LIMITED (retry after `extensions.retryAfter` seconds, with the same clientId).',
    args: { input: t.arg({ type: SendMessageInput, required: true, description: 'The message.' }) },
    resolve: async (_root, { input }, ctx) => {
      const data = parseInput(SendMessage, {
        roomId: String(input.roomId),
        body: input.body,
        clientId: input.clientId,
        attachmentIds: (input.attachmentIds ?? []).map(String),
      });
      // Counted before any database work, so a flood costs the server nothing more.
      await limitRate(ctx, 'sendMessage', requireViewer(ctx).id);
      const viewer = await requireRoomMember(ctx, data.roomId);
      const { message, created } = await sendMessage(ctx, viewer, data);
      if (created) {
        try {
          await ctx.pubsub.publish('message:added', message.roomId, toEvent(message));
          ctx.metrics.messagePublished();
        } catch (error) {
          // The message is stored; subscribers pick it up from the database
          // when the next event reveals the gap, or when they resume.
          ctx.log.error({ err: error, roomId: message.roomId, seq: message.seq }, 'publishing message:added failed');
        }
        ctx.dashboard.messageSent(message.roomId);
        ctx.notifications.onMessage(toEvent(message));
      }
      // Sending ends typing and implies having read everything up to here.
      // Both are side effects of a message that is already stored: a failure
      // (e.g. Redis down) is logged, never turned into an error for the send.
      try {
        await ctx.typing.set(message.roomId, { id: viewer.id, name: viewer.name }, false);
        if (created) await advanceReadMark(ctx, message.roomId, viewer, message.seq);
      } catch (err) {
        ctx.log.warn({ err, roomId: message.roomId }, 'updating typing or read mark after a send failed');
      }
      return message;
    },
  }),
);

async function findByClientId(ctx: Context, senderId: string, clientId: string, roomId: string) {
  const existing = await ctx.db.message.findUnique({
    where: { senderId_clientId: { senderId, clientId } },
    include: messageInclude,
  });
  if (existing && existing.roomId !== roomId) {
    throw userError(ErrorCode.CONFLICT, 'This clientId was already used for a message in another room.', { field: 'clientId' });
  }
  return existing;
}

/** PostgreSQL's lock_not_available (55P03), as the driver adapter reports it. */
function isLockTimeout(error: unknown): boolean {
  const text = `${(error as Error)?.message ?? ''} ${JSON.stringify((error as { meta?: unknown })?.meta ?? '')} ${String((error as { cause?: unknown })?.cause ?? '')}`;
  return /55P03|lock timeout|lock_not_available/i.test(text);
}

/**
 * Stores a message. The room row is locked by incrementing its `lastSeq` in the
 * same transaction that inserts the message, which serializes senders per room
 * and makes seqs gap-free: a failed insert rolls the increment back.
 */
async function sendMessage(
  ctx: Context,
  sender: Viewer,
  data: z.infer<typeof SendMessage>,
): Promise<{ message: MessageShape; created: boolean }> {
  const senderId = sender.id;
  const attachmentIds = [...new Set(data.attachmentIds)];
  if (attachmentIds.some((id) => !isId(id))) throw badInput('attachmentIds: unknown upload', 'attachmentIds');
  try {
    // A retry with a clientId already used is caught by the unique index
    // (below), not looked up first: the first send of a message, by far the
    // common case, costs no extra read. Under a busy event loop an
    // interactive transaction can outlive Prisma's default 5 s, so it gets
    // more room, and running out is reported as retryable (UNAVAILABLE): the
    // transaction rolled back, and the client's retry with the same clientId
    // stores the message once.
    return await ctx.db.$transaction(
      async (tx) => {
        // A lock held elsewhere must not block a send for long: waiting for
        // the room's row lock is bounded like the transaction itself.
        await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(ctx.limits.sendTimeoutMs))}`);
        const now = ctx.clock.now();
        const room = await tx.room.update({
          where: { id: data.roomId },
          data: { lastSeq: { increment: 1 }, lastMessageAt: now },
          select: { lastSeq: true },
        });
        const created = await tx.message.create({
          data: { roomId: data.roomId, seq: room.lastSeq, senderId, body: data.body, clientId: data.clientId, createdAt: now },
          select: { id: true, roomId: true, seq: true, body: true, clientId: true, createdAt: true },
        });
        let attachments: MessageShape['attachments'] = [];
        if (attachmentIds.length > 0) {
          const { count } = await tx.upload.updateMany({
            where: { id: { in: attachmentIds }, ownerId: senderId, messageId: null },
            data: { messageId: created.id },
          });
          if (count !== attachmentIds.length) {
            throw badInput('attachmentIds: each must be your own upload, not yet attached to a message', 'attachmentIds');
          }
          attachments = await tx.upload.findMany({ where: { messageId: created.id }, ...messageInclude.attachments });
        }
        const message: MessageShape = { ...created, sender: { id: sender.id, name: sender.name }, attachments };
        return { message, created: true };
      },
      { maxWait: ctx.limits.sendTimeoutMs, timeout: ctx.limits.sendTimeoutMs },
    );
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'P2002') {
      // The same clientId raced in from another request and won.
      const winner = await findByClientId(ctx, senderId, data.clientId, data.roomId);
      if (winner) return { message: winner, created: false };
    }
    if (code === 'P2028' || isLockTimeout(error)) {
      ctx.log.warn({ err: error, roomId: data.roomId }, 'sendMessage transaction timed out');
      throw unavailable('Sending');
    }
    throw error;
  }
}

builder.objectField(Room, 'messages', (t) =>
  t.connection({
    type: Message,
    description:
      'Message history, oldest first within a page. Page backwards from the newest with `last` and `before` (the cursor of the oldest message you hold); at most 100 per page.',
    resolve: (room, args, ctx) => {
      for (const cursor of [args.before, args.after]) {
        if (cursor != null && !/^\d{1,10}$/.test(cursor)) throw badInput('Invalid cursor.', cursor === args.before ? 'before' : 'after');
      }
      return resolveCursorConnection<Promise<MessageShape[]>>(
        { args, toCursor: (m: MessageShape) => String(m.seq), defaultSize: 50, maxSize: ctx.limits.maxHistoryPage },
        ({ before, after, limit, inverted }): Promise<MessageShape[]> =>
          ctx.db.message.findMany({
            where: {
              roomId: room.id,
              seq: { ...(before ? { lt: Number(before) } : {}), ...(after ? { gt: Number(after) } : {}) },
            },
            orderBy: { seq: inverted ? 'desc' : 'asc' },
            take: limit,
            include: messageInclude,
          }),
      );
    },
  }),
);

builder.subscriptionType({
  description: 'Live events over WebSocket (graphql-transport-ws protocol on the same /graphql path).',
});

builder.subscriptionField('messageAdded', (t) =>
  t.field({
    type: Message,
    authScopes: { loggedIn: true },
    description:
      "New messages of a room, each once and in `seq` order. With `afterSeq`, first replays every stored message after it, then continues live with no gap or duplicate at the hand-over. Errors: NOT_FOUND, FORBIDDEN, BACKLOG_TOO_LARGE (more than the replay limit is missing: load history with room.messages and subscribe again with a recent afterSeq). Ends when the viewer leaves the room.",
    args: {
      roomId: t.arg.id({ required: true, description: 'The room; the viewer must be a member.' }),
      afterSeq: t.arg.int({ required: false, description: 'The last seq the client already has; omit to receive only new messages.' }),
    },
    // A message is the same for every subscriber: its result is executed once
    // per distinct operation and shared (see api/fanout/shared-results.ts).
    // One ordered feed per room and process serves every subscriber that can
    // share results (see api/fanout/feed-hub.ts).
    extensions: { sharedResultKey: (message: MessageShape) => `${message.roomId}:${message.seq}`, orderedFeed: roomMessageFeed },
    subscribe: (_root, args, ctx) => {
      if (args.afterSeq != null && args.afterSeq < 0) throw badInput('afterSeq must be 0 or more.', 'afterSeq');
      return memberRoomStream(ctx, String(args.roomId), (viewer, signal) => roomMessages(ctx, String(args.roomId), viewer.id, args.afterSeq ?? null, signal));
    },
    resolve: (message) => message,
  }),
);

/**
 * The messages of a room in seq order, exactly once each. Subscribes to live
 * events first, then reads the starting point (the backlog after `afterSeq`,
 * or the room's current seq), and fills from the database any gap the live
 * stream shows (events from several API processes can arrive out of order).
 */
async function* roomMessages(ctx: Context, roomId: string, viewerId: string, afterSeq: number | null, signal: AbortSignal): AsyncGenerator<MessageShape> {
  const live = await ctx.pubsub.subscribe('message:added', roomId);
  // Unsubscribing closes the queue, which ends the wait for the next event.
  const close = () => void live.return?.();
  signal.addEventListener('abort', close, { once: true });
  try {
    let cursor: number;
    if (afterSeq === null) {
      const room = await ctx.db.room.findUniqueOrThrow({ where: { id: roomId }, select: { lastSeq: true } });
      cursor = room.lastSeq;
    } else {
      cursor = afterSeq;
      await checkBacklog(ctx, roomId, afterSeq);
      for (const m of await range(ctx, roomId, afterSeq, null)) {
        yield m;
        cursor = m.seq;
      }
    }
    for await (const event of withResyncs(ctx.pubsub, live)) {
      if (event === RESYNC) {
        // A leave during the outage was not announced: the stream ends as a leave would end it.
        if (!(await roomMessageFeed.members(ctx, roomId, [viewerId])).has(viewerId)) return;
        for (const m of await range(ctx, roomId, cursor, null)) {
          yield m;
          cursor = m.seq;
        }
        continue;
      }
      if (event.seq <= cursor) continue;
      if (event.seq > cursor + 1) {
        for (const m of await range(ctx, roomId, cursor, event.seq)) {
          yield m;
          cursor = m.seq;
        }
      }
      yield fromEvent(event);
      cursor = event.seq;
    }
  } finally {
    signal.removeEventListener('abort', close);
    await live.return?.();
  }
}


/** Stored messages with after < seq < before (before omitted: all after). */
function range(ctx: Pick<Services, 'db'>, roomId: string, after: number, before: number | null): Promise<MessageShape[]> {
  return ctx.db.message.findMany({
    where: { roomId, seq: before === null ? { gt: after } : { gt: after, lt: before } },
    orderBy: { seq: 'asc' },
    include: messageInclude,
  });
}

/** Checks the backlog after `afterSeq` is within the replay limit (BACKLOG_TOO_LARGE otherwise). */
async function checkBacklog(ctx: Context, roomId: string, afterSeq: number): Promise<void> {
  const limit = ctx.limits.maxReplay;
  const pending = await ctx.db.message.count({ where: { roomId, seq: { gt: afterSeq } } });
  if (pending > limit) {
    const room = await ctx.db.room.findUniqueOrThrow({ where: { id: roomId }, select: { lastSeq: true } });
    throw new GraphQLError(`More than ${limit} messages were sent after seq ${afterSeq}; load history and resubscribe.`, {
      extensions: { code: 'BACKLOG_TOO_LARGE', limit, lastSeq: room.lastSeq },
    });
  }
}

/** messageAdded as one feed per room: the same authorization, replay limit and order as roomMessages. */
const roomMessageFeed: OrderedFeed<MessageShape> = {
  async open(ctx, args) {
    const roomId = String(args.roomId);
    const afterSeq = (args.afterSeq as number | null | undefined) ?? null;
    if (afterSeq !== null && afterSeq < 0) throw badInput('afterSeq must be 0 or more.', 'afterSeq');
    const viewer = await requireRoomMember(ctx, roomId);
    if (afterSeq !== null) await checkBacklog(ctx, roomId, afterSeq);
    return { key: roomId, userId: viewer.id, afterSeq };
  },
  async live(services, roomId) {
    return mapIterator(await services.pubsub.subscribe('message:added', roomId), fromEvent);
  },
  async leaves(services, roomId) {
    const events = await services.pubsub.subscribe('member:changed', roomId);
    return mapIterator(events, (e) => (e.change === 'left' ? e.userId : null));
  },
  async members(services, roomId, userIds) {
    const rows = await services.db.roomMember.findMany({ where: { roomId, userId: { in: userIds } }, select: { userId: true } });
    return new Set(rows.map((r) => r.userId));
  },
  async head(services, roomId) {
    return (await services.db.room.findUniqueOrThrow({ where: { id: roomId }, select: { lastSeq: true } })).lastSeq;
  },
  range: (services, roomId, after, before) => range(services, roomId, after, before),
  eventKey: (message) => `${message.roomId}:${message.seq}`,
};
