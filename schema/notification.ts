import { resolveCursorConnection } from '@pothos/plugin-relay';
import { z } from 'zod';
import { isId, requireViewer } from './access.ts';
import { builder } from './builder.ts';
import { badInput, notFound } from './errors.ts';
import type { NotificationEvent, NotificationKind as Kind } from './events.ts';
import { describeNotification } from './lib/notification-text.ts';
import { DateTime } from './scalars.ts';
import { User } from './user.ts';
import { parseInput } from './validation.ts';

/** Push subscriptions kept per user; registering another drops the oldest. */
const MAX_PUSH_SUBSCRIPTIONS = 10;

interface NotificationShape {
  id: string;
  kind: Kind;
  roomId: string;
  roomName: string;
  messageId: string | null;
  messageSeq: number | null;
  actorId: string | null;
  actorName: string;
  body: string;
  createdAt: Date;
  readAt: Date | null;
}

const notificationSelect = {
  id: true,
  kind: true,
  roomId: true,
  roomName: true,
  messageId: true,
  messageSeq: true,
  actorId: true,
  actorName: true,
  body: true,
  createdAt: true,
  readAt: true,
} as const;

const fromRow = (row: Omit<NotificationShape, 'kind'> & { kind: string }): NotificationShape => ({ ...row, kind: row.kind as Kind });
const fromEvent = (e: NotificationEvent): NotificationShape => ({
  id: e.id,
  kind: e.kind,
  roomId: e.roomId,
  roomName: e.roomName,
  messageId: e.messageId,
  messageSeq: e.messageSeq,
  actorId: e.actor?.id ?? null,
  actorName: e.actor?.name ?? '',
  body: e.body,
  createdAt: new Date(e.createdAt),
  readAt: null,
});

export const NotificationKind = builder.enumType('NotificationKind', {
  description: 'Why a notification was created.',
  values: {
    MENTION: { description: 'Someone mentioned the user with @name in a room message. Important: emailed when left unread.' },
    DIRECT_MESSAGE: { description: 'A message in a direct (two-member) room. Important: emailed when left unread.' },
    ADDED_TO_ROOM: { description: 'Someone added the user to a room.' },
  } as const,
});

const Notification = builder.objectRef<NotificationShape>('Notification').implement({
  description: 'Something that happened for the viewer. Delivered in the app always, by Web Push when the user has no live connection, and (mentions, direct messages) in an email digest when still unread after a delay.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable identifier (a UUID); newer notifications have greater ids.' }),
    kind: t.field({ type: NotificationKind, description: 'Why it was created.', resolve: (n) => n.kind }),
    title: t.string({ description: 'One line for a list or a push banner, e.g. "Ana mentioned you in General".', resolve: (n) => describeNotification(n).title }),
    body: t.exposeString('body', { description: 'An excerpt of the message (up to 280 characters), or a sentence about the event. Plain text.' }),
    roomId: t.exposeID('roomId', { description: 'The room it is about.' }),
    roomName: t.exposeString('roomName', { description: "The room's name when the notification was created." }),
    messageId: t.exposeID('messageId', { nullable: true, description: 'The message it is about; null for ADDED_TO_ROOM.' }),
    messageSeq: t.exposeInt('messageSeq', { nullable: true, description: "The message's seq in its room; null for ADDED_TO_ROOM." }),
    actor: t.field({
      type: User,
      nullable: true,
      description: 'Who caused it.',
      resolve: (n) => (n.actorId ? { id: n.actorId, name: n.actorName } : null),
    }),
    createdAt: t.field({ type: DateTime, description: 'When it was created.', resolve: (n) => n.createdAt }),
    readAt: t.field({ type: DateTime, nullable: true, description: 'When it was marked read; null while unread.', resolve: (n) => n.readAt }),
    read: t.boolean({ description: 'Whether it was marked read (directly, or by reading the room past its message).', resolve: (n) => n.readAt !== null }),
  }),
});

builder.queryField('notifications', (t) =>
  t.connection({
    type: Notification,
    authScopes: { loggedIn: true },
    description: "The viewer's notifications, newest first. Page with `first` and `after` (the cursor of the last one you hold); at most 100 per page.",
    resolve: (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      for (const [name, cursor] of [['after', args.after], ['before', args.before]] as const) {
        if (cursor != null && !isId(cursor)) throw badInput('Invalid cursor.', name);
      }
      return resolveCursorConnection<Promise<NotificationShape[]>>(
        { args, toCursor: (n: NotificationShape) => n.id, defaultSize: 20, maxSize: 100 },
        async ({ before, after, limit, inverted }): Promise<NotificationShape[]> => {
          const rows = await ctx.db.notification.findMany({
            // Newest first: "after" a cursor means older than it.
            where: { userId: viewer.id, id: { ...(after ? { lt: after } : {}), ...(before ? { gt: before } : {}) } },
            orderBy: { id: inverted ? 'asc' : 'desc' },
            take: limit,
            select: notificationSelect,
          });
          return rows.map(fromRow);
        },
      );
    },
  }),
);

builder.queryField('unreadNotificationCount', (t) =>
  t.int({
    authScopes: { loggedIn: true },
    description: "How many of the viewer's notifications are unread (for a badge).",
    resolve: (_root, _args, ctx) => ctx.db.notification.count({ where: { userId: requireViewer(ctx).id, readAt: null } }),
  }),
);

builder.subscriptionField('notificationAdded', (t) =>
  t.field({
    type: Notification,
    authScopes: { loggedIn: true },
    description: "Each new notification of the viewer, as it is created. Reconnecting clients catch up with the notifications query.",
    subscribe: (_root, _args, ctx) => ctx.pubsub.subscribe('notification:added', requireViewer(ctx).id),
    resolve: (event) => fromEvent(event),
  }),
);

builder.mutationField('markNotificationRead', (t) =>
  t.field({
    type: Notification,
    authScopes: { loggedIn: true },
    description: 'Marks one of the viewer\'s notifications read (repeating it is harmless); a read notification is never emailed. Errors: NOT_FOUND.',
    args: { id: t.arg.id({ required: true, description: 'The notification.' }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const id = String(args.id);
      if (!isId(id)) throw notFound('Notification');
      await ctx.db.notification.updateMany({ where: { id, userId: viewer.id, readAt: null }, data: { readAt: ctx.clock.now() } });
      const row = await ctx.db.notification.findFirst({ where: { id, userId: viewer.id }, select: notificationSelect });
      if (!row) throw notFound('Notification');
      return fromRow(row);
    },
  }),
);

builder.mutationField('markAllNotificationsRead', (t) =>
  t.int({
    authScopes: { loggedIn: true },
    description: "Marks all the viewer's notifications read; returns how many were unread.",
    resolve: async (_root, _args, ctx) => {
      const { count } = await ctx.db.notification.updateMany({ where: { userId: requireViewer(ctx).id, readAt: null }, data: { readAt: ctx.clock.now() } });
      return count;
    },
  }),
);

interface PreferencesShape {
  push: boolean;
  email: boolean;
  digestDelaySeconds: number;
  usesDefaultDelay: boolean;
  pushAvailable: boolean;
  emailAvailable: boolean;
}

const NotificationPreferences = builder.objectRef<PreferencesShape>('NotificationPreferences').implement({
  description: "How the viewer's notifications are delivered besides the app.",
  fields: (t) => ({
    push: t.exposeBoolean('push', { description: 'Web Push to registered browsers while the user has no live connection.' }),
    email: t.exposeBoolean('email', { description: 'Email digests of mentions and direct messages left unread.' }),
    digestDelaySeconds: t.exposeInt('digestDelaySeconds', {
      description: 'How long a mention or direct message may stay unread before it is emailed; also the shortest gap between two digests.',
    }),
    usesDefaultDelay: t.exposeBoolean('usesDefaultDelay', { description: "Whether digestDelaySeconds is the server's default (the user set none)." }),
    pushAvailable: t.exposeBoolean('pushAvailable', { description: 'Whether this server sends Web Push at all (it has VAPID keys).' }),
    emailAvailable: t.exposeBoolean('emailAvailable', { description: 'Whether this server sends email at all (it has an SMTP server).' }),
  }),
});

async function loadPreferences(ctx: Parameters<typeof requireViewer>[0], userId: string): Promise<PreferencesShape> {
  const row = await ctx.db.notificationPreferences.findUnique({ where: { userId } });
  return {
    push: row?.push ?? true,
    email: row?.email ?? true,
    digestDelaySeconds: row?.digestDelaySeconds ?? Math.round(ctx.notifications.defaultDigestDelayMs / 1000),
    usesDefaultDelay: row?.digestDelaySeconds == null,
    pushAvailable: ctx.notifications.pushPublicKey !== null,
    emailAvailable: ctx.notifications.emailEnabled,
  };
}

builder.queryField('notificationPreferences', (t) =>
  t.field({
    type: NotificationPreferences,
    authScopes: { loggedIn: true },
    description: "The viewer's delivery preferences (defaults until changed).",
    resolve: (_root, _args, ctx) => loadPreferences(ctx, requireViewer(ctx).id),
  }),
);

const UpdatePreferences = z.object({
  push: z.boolean().optional(),
  email: z.boolean().optional(),
  digestDelaySeconds: z.number().int().min(60, 'must be at least 60').max(7 * 86_400, 'must be at most 604800 (7 days)').nullable().optional(),
});

const UpdateNotificationPreferencesInput = builder.inputType('UpdateNotificationPreferencesInput', {
  description: 'Preferences to change; omitted fields stay as they are.',
  fields: (t) => ({
    push: t.boolean({ required: false, description: 'Web Push on or off.' }),
    email: t.boolean({ required: false, description: 'Email digests on or off.' }),
    digestDelaySeconds: t.int({ required: false, description: "60 to 604800 seconds; null returns to the server's default." }),
  }),
});

builder.mutationField('updateNotificationPreferences', (t) =>
  t.field({
    type: NotificationPreferences,
    authScopes: { loggedIn: true },
    description: 'Changes how the viewer is notified; applies to notifications created afterwards. Errors: BAD_USER_INPUT.',
    args: { input: t.arg({ type: UpdateNotificationPreferencesInput, required: true, description: 'The changes.' }) },
    resolve: async (_root, { input }, ctx) => {
      const viewer = requireViewer(ctx);
      const data = parseInput(UpdatePreferences, {
        ...(input.push != null ? { push: input.push } : {}),
        ...(input.email != null ? { email: input.email } : {}),
        ...(input.digestDelaySeconds !== undefined ? { digestDelaySeconds: input.digestDelaySeconds } : {}),
      });
      await ctx.db.notificationPreferences.upsert({ where: { userId: viewer.id }, create: { userId: viewer.id, ...data }, update: data });
      return loadPreferences(ctx, viewer.id);
    },
  }),
);

const PushSubscriptionRef = builder.objectRef<{ id: string; endpoint: string; createdAt: Date }>('PushSubscription').implement({
  description: "A browser's Web Push subscription registered for the viewer.",
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable identifier.' }),
    endpoint: t.exposeString('endpoint', { description: "The push service URL from the browser's PushSubscription." }),
    createdAt: t.field({ type: DateTime, description: 'When it was registered.', resolve: (s) => s.createdAt }),
  }),
});

const base64url = (bytes: number) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]+={0,2}$/, 'must be URL-safe base64')
    .refine((s) => Buffer.from(s, 'base64url').length === bytes, `must encode ${bytes} bytes`);

const RegisterPush = z.object({
  endpoint: z.string().max(2048, 'must be at most 2048 characters'),
  keys: z.object({
    p256dh: base64url(65).refine((s) => Buffer.from(s, 'base64url')[0] === 4, 'must be an uncompressed P-256 public key'),
    auth: base64url(16),
  }),
});

const PushKeysInput = builder.inputType('PushSubscriptionKeysInput', {
  description: "The keys of a browser's PushSubscription (`subscription.toJSON().keys`).",
  fields: (t) => ({
    p256dh: t.string({ required: true, description: "The browser's P-256 ECDH public key, URL-safe base64 (65 bytes)." }),
    auth: t.string({ required: true, description: 'The authentication secret, URL-safe base64 (16 bytes).' }),
  }),
});

const RegisterPushInput = builder.inputType('RegisterPushSubscriptionInput', {
  description: "A browser's PushSubscription, as `subscription.toJSON()` gives it.",
  fields: (t) => ({
    endpoint: t.string({ required: true, description: 'The push service URL (https).' }),
    keys: t.field({ type: PushKeysInput, required: true, description: 'The encryption keys.' }),
  }),
});

builder.queryField('webPushPublicKey', (t) =>
  t.string({
    nullable: true,
    description: "The server's VAPID public key (URL-safe base64), to pass as applicationServerKey to pushManager.subscribe(); null when Web Push is off.",
    resolve: (_root, _args, ctx) => ctx.notifications.pushPublicKey,
  }),
);

builder.mutationField('registerPushSubscription', (t) =>
  t.field({
    type: PushSubscriptionRef,
    authScopes: { loggedIn: true },
    description: `Registers a browser for Web Push. Registering the same endpoint again updates it (and moves it to the viewer). Each user keeps at most ${MAX_PUSH_SUBSCRIPTIONS}; the oldest goes first. A subscription the push service reports gone (404/410) is deleted. Errors: BAD_USER_INPUT.`,
    args: { input: t.arg({ type: RegisterPushInput, required: true, description: 'The subscription.' }) },
    resolve: async (_root, { input }, ctx) => {
      const viewer = requireViewer(ctx);
      const data = parseInput(RegisterPush, input);
      const refused = ctx.notifications.checkPushEndpoint(data.endpoint);
      if (refused) throw badInput(`endpoint: ${refused}`, 'endpoint');
      const keys = { p256dh: data.keys.p256dh, auth: data.keys.auth };
      const saved = await ctx.db.pushSubscription.upsert({
        where: { endpoint: data.endpoint },
        create: { userId: viewer.id, endpoint: data.endpoint, ...keys },
        update: { userId: viewer.id, ...keys },
        select: { id: true, endpoint: true, createdAt: true },
      });
      const surplus = await ctx.db.pushSubscription.findMany({
        where: { userId: viewer.id },
        orderBy: { id: 'desc' },
        skip: MAX_PUSH_SUBSCRIPTIONS,
        select: { id: true },
      });
      if (surplus.length > 0) await ctx.db.pushSubscription.deleteMany({ where: { id: { in: surplus.map((s) => s.id) } } });
      return saved;
    },
  }),
);

builder.mutationField('unregisterPushSubscription', (t) =>
  t.boolean({
    authScopes: { loggedIn: true },
    description: "Removes one of the viewer's push subscriptions; true when it existed (safe to repeat).",
    args: { endpoint: t.arg.string({ required: true, description: 'The endpoint given to registerPushSubscription.' }) },
    resolve: async (_root, args, ctx) => {
      const { count } = await ctx.db.pushSubscription.deleteMany({ where: { endpoint: args.endpoint, userId: requireViewer(ctx).id } });
      return count > 0;
    },
  }),
);
