import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock, PresenceService } from '../../schema/context.ts';
import type { PubSub, UserSummary } from '../../schema/events.ts';
import type { Logger } from '../logger.ts';

/**
 * Presence of this process's connections, for the embedded default. A user
 * is online while they hold at least one authenticated WebSocket (several
 * tabs count once). After the last one closes they stay online for a grace
 * period, so a page reload does not flap offline and online.
 */
export class MemoryPresence implements PresenceService {
  private readonly connections = new Map<string, number>();
  private readonly leaving = new Map<string, { timer: NodeJS.Timeout; user: UserSummary }>();

  constructor(
    private readonly deps: { pubsub: PubSub; db: PrismaClient; clock: Clock; log: Logger },
    private readonly graceMs: number,
  ) {}

  async online(userIds: readonly string[]): Promise<Set<string>> {
    return new Set(userIds.filter((id) => this.connections.has(id) || this.leaving.has(id)));
  }

  /** A connection of `user` was authenticated. */
  async connected(user: UserSummary): Promise<void> {
    const count = (this.connections.get(user.id) ?? 0) + 1;
    this.connections.set(user.id, count);
    const pending = this.leaving.get(user.id);
    if (pending) {
      clearTimeout(pending.timer);
      this.leaving.delete(user.id);
      return; // never reported offline
    }
    if (count === 1) await this.publish(user, 'ONLINE', null);
  }

  /** A connection of `user` closed. */
  async disconnected(user: UserSummary): Promise<void> {
    const count = (this.connections.get(user.id) ?? 1) - 1;
    if (count > 0) {
      this.connections.set(user.id, count);
      return;
    }
    this.connections.delete(user.id);
    const timer = setTimeout(() => {
      this.leaving.delete(user.id);
      void this.wentOffline(user);
    }, this.graceMs);
    this.leaving.set(user.id, { timer, user });
  }

  /** Reports everyone in their grace period offline now (on shutdown). */
  async flush(): Promise<void> {
    const pending = [...this.leaving.values()];
    this.leaving.clear();
    for (const { timer } of pending) clearTimeout(timer);
    await Promise.all(pending.map(({ user }) => this.wentOffline(user)));
  }

  private async wentOffline(user: UserSummary): Promise<void> {
    const lastSeenAt = this.deps.clock.now();
    try {
      await this.deps.db.user.update({ where: { id: user.id }, data: { lastSeenAt }, select: { id: true } });
      await this.publish(user, 'OFFLINE', lastSeenAt.toISOString());
    } catch (err) {
      this.deps.log.error({ err, userId: user.id }, 'recording presence offline failed');
    }
  }

  private async publish(user: UserSummary, status: 'ONLINE' | 'OFFLINE', lastSeenAt: string | null) {
    try {
      await this.deps.pubsub.publish('presence:changed', { user, status, lastSeenAt });
    } catch (err) {
      this.deps.log.error({ err, userId: user.id }, 'publishing presence failed');
    }
  }
}
