import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock, PresenceService } from '../../schema/context.ts';
import type { PubSub } from '../../schema/events.ts';
import { durationMs, type Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { DigestScheduler } from './digest.ts';
import { createSmtpMailer, type Mailer } from './mailer.ts';
import { Notifier } from './notifier.ts';
import { PushSender } from './push-sender.ts';
import { resolveVapidKeys } from './vapid.ts';

/** The notification runtime of one API process. */
export interface Notifications {
  service: Notifier;
  push: PushSender | null;
  digests: DigestScheduler | null;
  /** Starts the digest loop. */
  start(): void;
  /** Stops timers, waits for background work, closes SMTP connections. */
  close(): Promise<void>;
}

/**
 * Builds the delivery channels from config: Web Push when VAPID keys are
 * configured or (outside production) generated, email digests when SMTP_URL
 * is set. Says at start-up which channels are on.
 */
export async function createNotifications(deps: {
  config: Config;
  db: PrismaClient;
  pubsub: PubSub;
  presence: PresenceService;
  clock: Clock;
  log: Logger;
  mailer?: Mailer;
}): Promise<Notifications> {
  const { config, db, log, clock } = deps;
  const production = config.NODE_ENV === 'production';
  const vapid = await resolveVapidKeys({
    publicKey: config.VAPID_PUBLIC_KEY,
    privateKey: config.VAPID_PRIVATE_KEY,
    subject: config.VAPID_SUBJECT,
    dataDir: config.DATA_DIR,
    production,
  });
  const push = vapid ? new PushSender({ db, log, vapid }) : null;
  const mailer = deps.mailer ?? (config.SMTP_URL ? createSmtpMailer(config.SMTP_URL, config.EMAIL_FROM) : null);
  const delayMs = durationMs(config.EMAIL_DIGEST_DELAY);
  const digests = mailer
    ? new DigestScheduler({ db, mailer, clock, log, defaultDelayMs: delayMs, tickMs: Math.min(30_000, Math.max(200, Math.floor(delayMs / 4))) })
    : null;
  if (vapid) log.info({ generated: !config.VAPID_PUBLIC_KEY }, 'web push on');
  else log.warn('web push off: set VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY to enable it');
  if (mailer) log.info({ digestDelay: config.EMAIL_DIGEST_DELAY }, 'email digests on');
  else log.info('email digests off: SMTP_URL is not set');
  const service = new Notifier({
    db,
    pubsub: deps.pubsub,
    presence: deps.presence,
    clock,
    log,
    push,
    pushPublicKey: vapid?.publicKey ?? null,
    emailEnabled: mailer !== null,
    defaultDigestDelayMs: delayMs,
    production,
  });
  return {
    service,
    push,
    digests,
    start: () => digests?.start(),
    async close() {
      await digests?.stop();
      await service.close();
      await push?.close();
      mailer?.close();
    },
  };
}
