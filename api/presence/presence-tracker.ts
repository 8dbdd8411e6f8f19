import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock, PresenceService } from '../../schema/context.ts';
import type { PubSub, UserSummary } from '../../schema/events.ts';
import type { Logger } from '../logger.ts';
import type { PresenceStore } from './store.ts';

export interface PresenceOptions {
  /** A user whose last connection closed stays online this long, so reloads do not flap. */
  graceMs: number;
  /** How often this process renews its connections in a shared store. */
  heartbeatMs: number;
  /** How often this process looks for users whose connections lapsed (a process died). */
  sweepMs: number;
}

/**
 * Turns WebSocket connects and disconnects into presence: ONLINE when a user's
 * first connection opens (tabs count once), OFFLINE a grace period after the
 * last one closes, with `lastSeenAt` stored. With a shared store, a process
 * that dies stops renewing its connections and the survivors report its users
 * offline once those lapse.
 */
export class PresenceTracker implements PresenceService {
  /** This process's live connections: connection id -> user id. */
  private readonly local = new Map<string, string>();
  private readonly pending = new Set<NodeJS.Timeout>();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly deps: { pubsub: PubSub; db: PrismaClient; clock: Clock; log: Logger },
    private readonly store: PresenceStore,
    private readonly options: PresenceOptions,
  ) {}

  /** Starts the heartbeat and sweep timers. */
  start(): this {
    const every = (ms: number, fn: () => Promise<void>) => {
      const timer = setInterval(() => void fn().catch((err) => this.deps.log.warn({ err }, 'presence upkeep failed')), ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.heartbeatMs, () => this.store.heartbeat(this.local));
    every(this.options.sweepMs, async () => {
      for (const userId of await this.store.sweep()) await this.wentOffline(userId);
    });
    return this;
  }

  online(userIds: readonly string[]): Promise<Set<string>> {
    return this.store.online(userIds);
  }

  /** An authenticated connection opened. */
  async connected(user: UserSummary, connectionId: string): Promise<void> {
    this.local.set(connectionId, user.id);
    try {
      if (await this.store.add(user.id, connectionId)) await this.publish(user, 'ONLINE', null);
    } catch (err) {
      this.deps.log.warn({ err, userId: user.id }, 'recording presence online failed');
    }
  }

  /** An authenticated connection closed. */
  async disconnected(user: UserSummary, connectionId: string): Promise<void> {
    this.local.delete(connectionId);
    try {
      await this.store.remove(user.id, connectionId);
    } catch (err) {
      this.deps.log.warn({ err, userId: user.id }, 'recording presence disconnect failed');
    }
    const timer = setTimeout(() => {
      this.pending.delete(timer);
      void this.settle(user.id);
    }, this.options.graceMs);
    this.pending.add(timer);
  }

  /**
   * On shutdown. With a shared store this process's connections are left to
   * lapse: clients reconnect to another process meanwhile and never show as
   * offline, and those who do not are reported by the survivors. Alone, this
   * process reports its users offline now.
   */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    for (const timer of this.pending) clearTimeout(timer);
    this.pending.clear();
    if (this.store.shared) {
      this.local.clear();
      await this.store.close();
      return;
    }
    const users = new Set(this.local.values());
    for (const [connectionId, userId] of this.local) await this.store.remove(userId, connectionId).catch(() => {});
    this.local.clear();
    await Promise.all([...users].map((id) => this.settle(id)));
    await this.store.close();
  }

  private async settle(userId: string): Promise<void> {
    try {
      if (await this.store.settle(userId)) await this.wentOffline(userId);
    } catch (err) {
      this.deps.log.warn({ err, userId }, 'settling presence failed');
    }
  }

  private async wentOffline(userId: string): Promise<void> {
    const lastSeenAt = this.deps.clock.now();
    try {
      const user = await this.deps.db.user.update({ where: { id: userId }, data: { lastSeenAt }, select: { id: true, name: true } });
      await this.publish(user, 'OFFLINE', lastSeenAt.toISOString());
    } catch (err) {
      this.deps.log.error({ err, userId }, 'recording presence offline failed');
    }
  }

  private async publish(user: UserSummary, status: 'ONLINE' | 'OFFLINE', lastSeenAt: string | null): Promise<void> {
    try {
      await this.deps.pubsub.publish('presence:changed', { user: { id: user.id, name: user.name }, status, lastSeenAt });
    } catch (err) {
      this.deps.log.error({ err, userId: user.id }, 'publishing presence failed');
    }
  }
}
