import webpush from 'web-push';
import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Logger } from '../logger.ts';
import type { VapidKeys } from './vapid.ts';

export interface PushSenderOptions {
  db: PrismaClient;
  log: Logger;
  vapid: VapidKeys;
  /** Attempts per delivery, the first included. */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time. */
  baseBackoffMs?: number;
  /** How long one request to a push service may take. */
  timeoutMs?: number;
}

/** How a push service answered, as far as delivery goes. */
type Outcome = 'delivered' | 'gone' | 'retry' | 'rejected';

/**
 * Sends Web Push messages (RFC 8030, payload encrypted with aes128gcm, VAPID
 * authentication) to every subscription of a user. The `web-push` library
 * builds the encrypted request; it is sent with fetch so that any endpoint
 * URL works and retries stay under our control. A subscription the push
 * service answers 404 or 410 for is deleted; network failures, 429 and 5xx
 * are retried with exponential backoff, then dropped with a log line. No
 * failure ever escapes to the caller.
 */
export class PushSender {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  private readonly maxAttempts: number;
  private readonly baseBackoffMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: PushSenderOptions) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.baseBackoffMs = options.baseBackoffMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Sends `payload` (JSON, under 3 KB) to each of the user's subscriptions. */
  async sendToUser(userId: string, payload: object, urgency: 'normal' | 'high'): Promise<void> {
    if (this.closed) return;
    const subscriptions = await this.options.db.pushSubscription.findMany({
      where: { userId },
      select: { id: true, endpoint: true, p256dh: true, auth: true },
    });
    const body = JSON.stringify(payload);
    await Promise.all(subscriptions.map((s) => this.attempt(s, body, urgency, 1)));
  }

  /** Cancels scheduled retries and waits for requests under way. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inflight]);
  }

  private async attempt(
    subscription: { id: string; endpoint: string; p256dh: string; auth: string },
    body: string,
    urgency: 'normal' | 'high',
    attempt: number,
  ): Promise<void> {
    if (this.closed) return;
    const work = this.deliver(subscription, body, urgency);
    this.inflight.add(work);
    const outcome = await work.finally(() => this.inflight.delete(work));
    const log = this.options.log;
    const where = { subscriptionId: subscription.id, origin: safeOrigin(subscription.endpoint), attempt };
    if (outcome === 'delivered' || outcome === 'rejected') return;
    if (outcome === 'gone') {
      await this.options.db.pushSubscription
        .deleteMany({ where: { id: subscription.id } })
        .then(() => log.info(where, 'push subscription expired; deleted'))
        .catch((err) => log.error({ ...where, err }, 'deleting an expired push subscription failed'));
      return;
    }
    if (attempt >= this.maxAttempts) {
      log.warn(where, 'push delivery failed; giving up');
      return;
    }
    const delay = this.baseBackoffMs * 2 ** (attempt - 1);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(subscription, body, urgency, attempt + 1);
    }, delay);
    timer.unref();
    this.timers.add(timer);
  }

  private async deliver(subscription: { id: string; endpoint: string; p256dh: string; auth: string }, body: string, urgency: 'normal' | 'high'): Promise<Outcome> {
    const log = this.options.log;
    const where = { subscriptionId: subscription.id, origin: safeOrigin(subscription.endpoint) };
    let request: webpush.RequestDetails;
    try {
      request = webpush.generateRequestDetails(
        { endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
        body,
        { vapidDetails: this.options.vapid, TTL: 24 * 3600, urgency, contentEncoding: 'aes128gcm' },
      );
    } catch (err) {
      // Bad keys stored for this subscription: it can never work.
      log.warn({ ...where, err }, 'push subscription unusable; deleted');
      return 'gone';
    }
    try {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) headers[name] = String(value);
      const response = await fetch(request.endpoint, {
        method: 'POST',
        headers,
        body: request.body ? new Uint8Array(request.body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return 'delivered';
      if (response.status === 404 || response.status === 410) return 'gone';
      if (response.status === 429 || response.status >= 500) {
        log.warn({ ...where, status: response.status }, 'push service busy or failing; will retry');
        return 'retry';
      }
      log.warn({ ...where, status: response.status }, 'push service refused the message');
      return 'rejected';
    } catch (err) {
      log.warn({ ...where, err: String(err) }, 'push request failed; will retry');
      return 'retry';
    }
  }
}

function safeOrigin(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return 'invalid';
  }
}
