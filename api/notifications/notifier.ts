import { isIP } from 'node:net';
import type { Notification, PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock, NotificationService, PresenceService } from '../../schema/context.ts';
import type { MessageEvent, NotificationEvent, NotificationKind, PubSub, UserSummary } from '../../schema/events.ts';
import { describeNotification } from '../../schema/lib/notification-text.ts';
import type { Logger } from '../logger.ts';
import { mentionCandidates, mentionedNames, mentionMatches } from './mentions.ts';
import type { PushSender } from './push-sender.ts';

/** Kinds that go out by email when left unread. */
const IMPORTANT: ReadonlySet<NotificationKind> = new Set(['MENTION', 'DIRECT_MESSAGE']);
/** Characters of a message kept in its notification (and so in push payloads, which are capped near 4 KB). */
const EXCERPT_CHARS = 280;

export interface NotifierOptions {
  db: PrismaClient;
  pubsub: PubSub;
  presence: PresenceService;
  clock: Clock;
  log: Logger;
  /** Null when Web Push is off (no VAPID keys). */
  push: PushSender | null;
  pushPublicKey: string | null;
  /** Whether an SMTP server is configured, so unread important notifications become due for a digest. */
  emailEnabled: boolean;
  defaultDigestDelayMs: number;
  /** Production accepts only public https push endpoints. */
  production: boolean;
}

interface Draft {
  userId: string;
  kind: NotificationKind;
  roomId: string;
  roomName: string;
  messageId: string | null;
  messageSeq: number | null;
  actorId: string;
  actorName: string;
  body: string;
}

/**
 * Creates notifications from chat activity and routes each one: in-app
 * always (stored, then `notification:added`), Web Push when the user has no
 * live connection and wants push, and for mentions and direct messages an
 * `emailDueAt` that the digest scheduler acts on if the notification is
 * still unread by then. Hooks return at once; the work runs on a later turn
 * of the event loop and its failures are logged.
 */
export class Notifier implements NotificationService {
  readonly pushPublicKey: string | null;
  readonly defaultDigestDelayMs: number;
  readonly emailEnabled: boolean;
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: NotifierOptions) {
    this.pushPublicKey = options.pushPublicKey;
    this.defaultDigestDelayMs = options.defaultDigestDelayMs;
    this.emailEnabled = options.emailEnabled;
  }

  onMessage(message: MessageEvent): void {
    this.later('creating message notifications', () => this.fromMessage(message));
  }

  onMembersAdded(room: { id: string; name: string }, userIds: readonly string[], by: UserSummary): void {
    const recipients = [...new Set(userIds)].filter((id) => id !== by.id);
    if (recipients.length === 0) return;
    this.later('creating room notifications', () =>
      this.create(
        recipients.map((userId) => ({
          userId,
          kind: 'ADDED_TO_ROOM',
          roomId: room.id,
          roomName: room.name,
          messageId: null,
          messageSeq: null,
          actorId: by.id,
          actorName: by.name,
          body: `${by.name} added you to ${room.name}.`,
        })),
      ),
    );
  }

  onRoomRead(roomId: string, userId: string, seq: number): void {
    this.later('marking notifications read', async () => {
      await this.options.db.notification.updateMany({
        where: { userId, roomId, messageSeq: { lte: seq }, readAt: null },
        data: { readAt: this.options.clock.now() },
      });
    });
  }

  checkPushEndpoint(endpoint: string): string | null {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return 'must be an absolute URL';
    }
    if (url.username || url.password) return 'must not contain credentials';
    if (url.protocol === 'https:') {
      if (this.options.production && isPrivateHost(url.hostname)) return 'must be a public push service';
      return null;
    }
    // Plain http only outside production, where tests and local push servers live.
    if (url.protocol === 'http:' && !this.options.production) return null;
    return 'must be an https:// URL';
  }

  /** Waits for background work under way (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private later(what: string, task: () => Promise<void>): void {
    if (this.closed) return;
    const work: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(task)
      .catch((err) => this.options.log.error({ err }, `${what} failed`))
      .finally(() => this.inflight.delete(work));
    this.inflight.add(work);
  }

  private async fromMessage(message: MessageEvent): Promise<void> {
    const { db } = this.options;
    const senderId = message.sender.id;
    const recipients = new Map<string, NotificationKind>();
    // A member whose read mark already passed the message (they read it before this ran) needs no notification.
    const readUpTo = new Map<string, number>();
    const tokens = mentionedNames(message.body);
    if (tokens.length > 0) {
      const candidates = await db.roomMember.findMany({
        where: { roomId: message.roomId, userId: { not: senderId }, user: { OR: tokens.flatMap(mentionCandidates) } },
        select: { lastReadSeq: true, user: { select: { id: true, name: true } } },
        take: 1000,
      });
      for (const { user, lastReadSeq } of candidates) {
        readUpTo.set(user.id, lastReadSeq);
        if (tokens.some((token) => mentionMatches(token, user.name))) recipients.set(user.id, 'MENTION');
      }
    }
    // Three rows are enough to tell a direct (two-member) room from a group.
    const members = await db.roomMember.findMany({ where: { roomId: message.roomId }, select: { userId: true, lastReadSeq: true }, take: 3 });
    if (members.length === 2) {
      const other = members.find((m) => m.userId !== senderId);
      if (other && !recipients.has(other.userId)) recipients.set(other.userId, 'DIRECT_MESSAGE');
      if (other) readUpTo.set(other.userId, other.lastReadSeq);
    }
    for (const userId of recipients.keys()) if ((readUpTo.get(userId) ?? 0) >= message.seq) recipients.delete(userId);
    if (recipients.size === 0) return;
    const room = await db.room.findUnique({ where: { id: message.roomId }, select: { name: true } });
    if (!room) return;
    const body = message.body.length > EXCERPT_CHARS ? `${message.body.slice(0, EXCERPT_CHARS - 1)}…` : message.body;
    await this.create(
      [...recipients].map(([userId, kind]) => ({
        userId,
        kind,
        roomId: message.roomId,
        roomName: room.name,
        messageId: message.id,
        messageSeq: message.seq,
        actorId: senderId,
        actorName: message.sender.name,
        body,
      })),
    );
  }

  private async create(drafts: Draft[]): Promise<void> {
    const { db, pubsub, log } = this.options;
    const userIds = drafts.map((d) => d.userId);
    const preferences = new Map(
      (await db.notificationPreferences.findMany({ where: { userId: { in: userIds } } })).map((p) => [p.userId, p]),
    );
    const now = this.options.clock.now();
    const rows = await db.notification.createManyAndReturn({
      data: drafts.map((draft) => {
        const prefs = preferences.get(draft.userId);
        const emailed = this.options.emailEnabled && IMPORTANT.has(draft.kind) && prefs?.email !== false;
        const delayMs = prefs?.digestDelaySeconds != null ? prefs.digestDelaySeconds * 1000 : this.options.defaultDigestDelayMs;
        return { ...draft, createdAt: now, emailDueAt: emailed ? new Date(now.getTime() + delayMs) : null };
      }),
    });
    const online = await this.options.presence.online(userIds);
    await Promise.all(
      rows.map(async (row) => {
        const event = toEvent(row);
        await pubsub.publish('notification:added', row.userId, event).catch((err) => log.error({ err, userId: row.userId }, 'publishing notification:added failed'));
        const push = this.options.push;
        if (!push || online.has(row.userId) || preferences.get(row.userId)?.push === false) return;
        const unreadCount = await db.notification.count({ where: { userId: row.userId, readAt: null } });
        await push.sendToUser(
          row.userId,
          {
            type: 'notification',
            notification: { id: event.id, kind: event.kind, title: describeNotification(row).title, body: event.body, roomId: event.roomId, messageId: event.messageId, createdAt: event.createdAt },
            unreadCount,
          },
          IMPORTANT.has(event.kind) ? 'high' : 'normal',
        );
      }),
    );
  }
}

type NotificationRow = Pick<
  Notification,
  'id' | 'userId' | 'kind' | 'roomId' | 'roomName' | 'messageId' | 'messageSeq' | 'actorId' | 'actorName' | 'body' | 'createdAt'
>;

function toEvent(row: NotificationRow): NotificationEvent {
  return {
    id: row.id,
    userId: row.userId,
    kind: row.kind as NotificationKind,
    roomId: row.roomId,
    roomName: row.roomName,
    messageId: row.messageId,
    messageSeq: row.messageSeq,
    actor: row.actorId ? { id: row.actorId, name: row.actorName } : null,
    body: row.body,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Loopback, private, link-local and unspecified addresses, and localhost names. */
function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal')) return true;
  const version = isIP(host);
  if (version === 4) {
    const [a = 0, b = 0] = host.split('.').map(Number);
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  if (version === 6) return host === '::' || host === '::1' || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith('::ffff:');
  return false;
}
