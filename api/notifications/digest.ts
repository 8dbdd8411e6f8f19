import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock } from '../../schema/context.ts';
import type { Logger } from '../logger.ts';
import type { Mailer } from './mailer.ts';
import { describeNotification } from '../../schema/lib/notification-text.ts';

export interface DigestOptions {
  db: PrismaClient;
  mailer: Mailer;
  clock: Clock;
  log: Logger;
  /** The server's default delay; a user's own choice replaces it. */
  defaultDelayMs: number;
  /** How often the scheduler looks for due notifications. */
  tickMs: number;
  /** Wait before retrying a digest whose sending failed. */
  retryMs?: number;
}

/** Users handled per tick; the rest wait for the next one. */
const USERS_PER_TICK = 50;
/** Most notifications listed in one email. */
const MAX_LISTED = 50;

/**
 * Emails important notifications (mentions, direct messages) that stayed
 * unread past their due time, as one digest per user per window. State lives
 * in the database (`emailDueAt`, `emailedAt`), so a restart loses nothing and
 * several API processes can run the loop at once: a digest's rows are claimed
 * with one conditional UPDATE before sending, so no two processes send them.
 * A user is mailed at most once per delay window: notifications that become
 * due sooner are postponed to the window's end and go in the next digest.
 */
export class DigestScheduler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Digests sent since start (tests and logs). */
  sent = 0;

  constructor(private readonly options: DigestOptions) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.runOnce()
        .catch((err) => this.options.log.error({ err }, 'email digest run failed'))
        .finally(() => {
          this.running = undefined;
          if (this.stopped) return;
          this.timer = setTimeout(loop, this.options.tickMs);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(loop, this.options.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Sends every digest that is due now. */
  async runOnce(): Promise<void> {
    const { db } = this.options;
    const now = this.options.clock.now();
    const due = await db.notification.findMany({
      where: { emailDueAt: { lte: now }, readAt: null, emailedAt: null },
      select: { userId: true },
      distinct: ['userId'],
      take: USERS_PER_TICK,
    });
    for (const { userId } of due) {
      if (this.stopped) return;
      try {
        await this.digestFor(userId, now);
      } catch (err) {
        this.options.log.error({ err, userId }, 'email digest failed');
      }
    }
  }

  private async digestFor(userId: string, now: Date): Promise<void> {
    const { db } = this.options;
    // What falls due before the next tick would only make a second email a moment later.
    const dueWhere = { userId, readAt: null, emailedAt: null, emailDueAt: { lte: new Date(now.getTime() + this.options.tickMs) } };
    const user = await db.user.findUnique({
      where: { id: userId },
      select: { email: true, name: true, notificationPreferences: { select: { email: true, digestDelaySeconds: true } } },
    });
    const prefs = user?.notificationPreferences;
    if (!user || prefs?.email === false) {
      // Turned off after these were created: they will never be mailed.
      await db.notification.updateMany({ where: dueWhere, data: { emailDueAt: null } });
      return;
    }
    const windowMs = prefs?.digestDelaySeconds != null ? prefs.digestDelaySeconds * 1000 : this.options.defaultDelayMs;
    const last = await db.notification.findFirst({
      where: { userId, emailedAt: { gt: new Date(now.getTime() - windowMs) } },
      orderBy: { emailedAt: 'desc' },
      select: { emailedAt: true },
    });
    if (last?.emailedAt) {
      await db.notification.updateMany({ where: dueWhere, data: { emailDueAt: new Date(last.emailedAt.getTime() + windowMs) } });
      return;
    }
    const batch = randomUUID();
    const { count } = await db.notification.updateMany({ where: dueWhere, data: { emailedAt: now, emailBatch: batch } });
    if (count === 0) return; // another process claimed them
    const rows = await db.notification.findMany({ where: { emailBatch: batch }, orderBy: { id: 'asc' } });
    const listed = rows.slice(0, MAX_LISTED);
    const lines = listed.map((n) => {
      const { title } = describeNotification(n);
      return `- ${title} (${n.createdAt.toISOString().slice(0, 16).replace('T', ' ')} UTC):\n    ${quote(n.body)}`;
    });
    if (rows.length > listed.length) lines.push(`- … and ${rows.length - listed.length} more`);
    const subject = rows.length === 1 ? `1 unread notification: ${describeNotification(rows[0]!).title}` : `${rows.length} unread notifications`;
    const text = [
      `Hi ${user.name},`,
      '',
      `While you were away, ${rows.length === 1 ? 'this needs' : 'these need'} your attention:`,
      '',
      ...lines,
      '',
      'Open the app to reply. You can turn these emails off in your notification preferences.',
      '',
    ].join('\n');
    try {
      await this.options.mailer.send({ to: user.email, subject, text });
      this.sent++;
      this.options.log.info({ userId, notifications: rows.length }, 'email digest sent');
    } catch (err) {
      // Release the claim so the next run after the back-off tries again.
      const retryAt = new Date(now.getTime() + (this.options.retryMs ?? 60_000));
      await db.notification.updateMany({ where: { emailBatch: batch }, data: { emailedAt: null, emailBatch: null, emailDueAt: retryAt } });
      this.options.log.warn({ err: String(err), userId }, 'sending an email digest failed; will retry');
    }
  }
}

function quote(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  return `"${line.length > 200 ? `${line.slice(0, 199)}…` : line}"`;
}
