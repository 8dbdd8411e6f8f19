import { GraphQLError } from 'graphql';
import { RedisPubSub as RedisEngine } from 'graphql-redis-subscriptions';
import { Redis, type RedisOptions } from 'ioredis';
import type { Events, PubSub, Topic, TopicPayload, TopicScope } from '../../schema/events.ts';
import type { Logger } from '../logger.ts';
import { redactUrl } from '../redact-url.ts';
import { channelOf } from './engine-pubsub.ts';
import { PushQueue } from './queue.ts';

/** Pub/sub over Redis, with a readiness probe for the runtime's health checks. */
export interface RedisPubSub extends PubSub {
  /**
   * Whether both Redis connections are usable now: the subscriber is connected
   * (with its channels re-subscribed) and the publisher answers PING in time.
   * Never rejects.
   */
  ping(): Promise<boolean>;
}

/**
 * Redis could not take a publish or confirm a subscribe in time (down,
 * reconnecting, hung) or the pub/sub is closed. Expected during an outage;
 * callers may translate it into a retryable error for clients.
 */
export class PubSubUnavailableError extends GraphQLError {
  override readonly name = 'PubSubUnavailableError';
  constructor(detail: string, options: { cause?: unknown } = {}) {
    // The message reaches clients (a subscribe during an outage); the detail stays in logs.
    super('Live events are temporarily unavailable; try again shortly.', {
      originalError: options.cause instanceof Error ? options.cause : undefined,
      extensions: { code: 'UNAVAILABLE', retryable: true },
    });
    this.detail = detail;
  }
  readonly detail: string;
}

export interface RedisPubSubOptions {
  /** Prepended to every channel name, to share one Redis between deployments (or test runs). */
  channelPrefix?: string;
  /** Events a subscription may have waiting before its consumer counts as too slow (SLOW_CONSUMER). */
  maxQueued?: number;
  /** How long a publish may take before it rejects, including while Redis is down. */
  publishTimeoutMs?: number;
  /** How long subscribe() waits for Redis to confirm, e.g. while reconnecting, before it rejects. */
  subscribeTimeoutMs?: number;
  /** How long createRedisPubSub() waits for the first connection before giving up. */
  startupTimeoutMs?: number;
  /** Upper bound of the reconnect backoff; reconnecting never stops. */
  maxBackoffMs?: number;
  /** Interval of the subscriber's liveness PING (0 disables it). */
  heartbeatMs?: number;
  /** Each connection error and failed publish, for metrics; must not throw. */
  onError?(error: Error, connection: 'publisher' | 'subscriber'): void;
}

const defaults: Required<Omit<RedisPubSubOptions, 'onError' | 'maxQueued'>> = {
  channelPrefix: '',
  publishTimeoutMs: 2000,
  subscribeTimeoutMs: 5000,
  startupTimeoutMs: 10_000,
  maxBackoffMs: 2000,
  heartbeatMs: 10_000,
};

/**
 * Connects to Redis and returns the typed pub/sub over it: events published by
 * any API process reach the subscribers of every process.
 *
 * Two connections, as Redis requires (a subscribed connection can only
 * (un)subscribe): the publisher fails fast while Redis is unreachable (no
 * offline queue, a command timeout), so a mutation that publishes never hangs;
 * the subscriber queues while disconnected and re-subscribes its channels by
 * itself once Redis is back. Both reconnect forever with capped backoff.
 *
 * Events published while a connection is down are lost, not replayed: callers
 * that need every event (messages) recover them from the database.
 *
 * Rejects if Redis does not answer within `startupTimeoutMs`, so that a wrong
 * REDIS_URL fails start-up rather than leaving the API half-working.
 */
export async function createRedisPubSub(url: string, log: Logger, options: RedisPubSubOptions = {}): Promise<RedisPubSub> {
  const opts = { ...defaults, ...options };
  const where = redactUrl(url);
  let closing = false;

  const common: RedisOptions = {
    connectTimeout: 5000,
    // Exponential, capped, forever; the jitter keeps several API processes
    // from hitting a recovering Redis in lockstep.
    retryStrategy: (times) => Math.min(opts.maxBackoffMs, 50 * 2 ** Math.min(times, 10)) + Math.floor(Math.random() * 50),
    lazyConnect: false,
  };
  const publisher = new Redis(url, {
    ...common,
    connectionName: 'api-publisher',
    enableOfflineQueue: false,
    commandTimeout: opts.publishTimeoutMs,
    // A PUBLISH cut off by a disconnect has already been reported as failed
    // (by the timeout); sending it again after the reconnect would deliver an
    // event its publisher gave up on, out of order.
    autoResendUnfulfilledCommands: false,
  });
  const subscriber = new Redis(url, {
    ...common,
    connectionName: 'api-subscriber',
    autoResubscribe: true,
    // Keep queued (un)subscribes across any outage: dropping an UNSUBSCRIBE
    // would leave a channel subscribed for good.
    maxRetriesPerRequest: null,
  });
  for (const [name, redis] of [['publisher', publisher], ['subscriber', subscriber]] as const) {
    watchConnection(name, redis, log, where, () => closing);
    if (opts.onError) redis.on('error', (err: Error) => opts.onError?.(err, name));
  }

  const engine = new RedisEngine({ publisher, subscriber: quietSubscriber(subscriber, log) });

  let startupError: Error | undefined;
  const noteStartupError = (error: Error) => (startupError = error);
  publisher.on('error', noteStartupError);
  try {
    await Promise.all([whenReady(publisher, opts.startupTimeoutMs), whenReady(subscriber, opts.startupTimeoutMs)]);
  } catch (error) {
    closing = true;
    publisher.disconnect();
    subscriber.disconnect();
    const reason = startupError ? `${startupError.message} (gave up after ${opts.startupTimeoutMs} ms)` : (error as Error).message;
    throw new Error(`Redis at ${where} is unreachable: ${reason}`, { cause: startupError ?? error });
  } finally {
    publisher.off('error', noteStartupError);
  }
  log.info({ redis: where }, 'pub/sub connected to Redis');

  // A subscriber never sends anything on its own, so a connection that died
  // without a FIN/RST (network partition) would look healthy forever while
  // delivering nothing. A periodic PING notices and forces a reconnect.
  const heartbeat =
    opts.heartbeatMs > 0
      ? setInterval(() => {
          if (closing || subscriber.status !== 'ready') return;
          void withTimeout(subscriber.ping(), opts.heartbeatMs, 'heartbeat PING').catch((error: Error) => {
            if (closing || subscriber.status !== 'ready') return;
            log.warn({ err: error, connection: 'subscriber', redis: where }, 'Redis subscriber unresponsive; reconnecting');
            subscriber.disconnect(true);
          });
        }, opts.heartbeatMs)
      : undefined;
  heartbeat?.unref();

  const channel = (topic: string, scope: readonly unknown[]) => opts.channelPrefix + channelOf(topic, scope);

  // ioredis emits 'ready' and then, in the same handler, re-sends the
  // SUBSCRIBEs of a reconnected subscriber; a PING queued after them is
  // answered once they are all active, which is when listeners may re-read.
  const reconnectListeners = new Set<() => void>();
  let firstReady = subscriber.status !== 'ready';
  subscriber.on('ready', () => {
    if (firstReady) {
      firstReady = false;
      return;
    }
    setImmediate(() => {
      subscriber.ping().then(
        () => {
          for (const listener of [...reconnectListeners]) {
            try {
              listener();
            } catch (err) {
              log.error({ err }, 'a pub/sub reconnect listener failed');
            }
          }
        },
        () => {}, // lost again; the next 'ready' tries again
      );
    });
  });

  return {
    async publish<K extends Topic>(topic: K, ...args: Events[K]): Promise<void> {
      if (closing) throw new PubSubUnavailableError('pub/sub is closed');
      const name = channel(topic, args.slice(0, -1));
      try {
        await engine.publish(name, args[args.length - 1]);
      } catch (error) {
        opts.onError?.(error as Error, 'publisher');
        throw new PubSubUnavailableError(`Redis: publishing to ${name} failed: ${(error as Error).message}`, { cause: error });
      }
    },

    async subscribe<K extends Topic>(topic: K, ...scope: TopicScope<K>): Promise<AsyncIterableIterator<TopicPayload<K>>> {
      if (closing) throw new PubSubUnavailableError('pub/sub is closed');
      const name = channel(topic, scope);
      let id: number | undefined;
      const queue = new PushQueue<TopicPayload<K>>(() => {
        if (id !== undefined) unsubscribe(engine, id);
      }, options.maxQueued);
      const subscribed = engine.subscribe<TopicPayload<K>>(name, (payload) => queue.push(payload));
      // graphql-redis-subscriptions 2.7 keeps an internal promise per channel
      // being subscribed that nobody awaits; when the SUBSCRIBE fails (only on
      // close during an outage here) it would become an unhandled rejection.
      (engine as unknown as EngineInternals).subsPendingRefsMap?.get(name)?.pending.catch(() => {});
      try {
        // The engine's promise resolves on Redis' SUBSCRIBE reply for the
        // first subscriber of a channel, but at once for later ones, even
        // while the channel is being re-subscribed after a reconnect. A PING
        // on the same connection is answered only after everything sent
        // before it, so its reply proves the channel is active.
        id = await withTimeout(
          subscribed.then(async (subId) => {
            await subscriber.ping();
            return subId;
          }),
          opts.subscribeTimeoutMs,
          `subscribing to ${name}`,
        );
      } catch (error) {
        // The SUBSCRIBE may still complete once Redis is back; undo it then.
        subscribed.then((subId) => unsubscribe(engine, subId)).catch(() => {});
        throw error;
      }
      return queue;
    },

    onReconnect(listener: () => void): () => void {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },

    async ping(): Promise<boolean> {
      if (closing || subscriber.status !== 'ready' || publisher.status !== 'ready') return false;
      try {
        return (await publisher.ping()) === 'PONG';
      } catch {
        return false;
      }
    },

    async close(): Promise<void> {
      if (closing) return;
      closing = true;
      if (heartbeat) clearInterval(heartbeat);
      await Promise.all([quit(publisher), quit(subscriber)]);
      log.info({ redis: where }, 'pub/sub disconnected from Redis');
    },
  };
}

/** graphql-redis-subscriptions internals worked around above (checked against 2.7.0). */
interface EngineInternals {
  subsPendingRefsMap?: Map<string, { pending: { catch(onRejected: () => void): unknown } }>;
}

function unsubscribe(engine: RedisEngine, id: number) {
  try {
    engine.unsubscribe(id);
  } catch {
    // Already unsubscribed.
  }
}

/**
 * The subscriber connection as graphql-redis-subscriptions uses it, minus two
 * hazards: it fires UNSUBSCRIBE without handling the promise (a rejection on
 * close would crash the process), and it sends PUNSUBSCRIBE for every channel
 * although this module never subscribes to patterns.
 */
function quietSubscriber(redis: Redis, log: Logger): Redis {
  const port = {
    on(event: string, listener: (...args: unknown[]) => void) {
      redis.on(event, listener);
      return port;
    },
    subscribe: (channel: string, callback: (err?: Error | null) => void) => redis.subscribe(channel, callback),
    psubscribe() {
      throw new Error('pattern subscriptions are not used');
    },
    unsubscribe(channel: string) {
      return redis.unsubscribe(channel).catch((err: Error) => {
        log.debug({ err, channel }, 'Redis UNSUBSCRIBE dropped (connection closed)');
      });
    },
    punsubscribe: () => Promise.resolve(),
    quit: () => redis.quit(),
  };
  return port as unknown as Redis;
}

/** Logs each outage once: when a ready connection is lost, and when it is back. */
function watchConnection(name: string, redis: Redis, log: Logger, where: string, closing: () => boolean) {
  let wasReady = false;
  let lostAt: number | undefined;
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
    log.debug({ err, connection: name, redis: where }, 'Redis connection error');
  });
  redis.on('close', () => {
    if (closing() || !wasReady || lostAt !== undefined) return;
    lostAt = Date.now();
    log.warn({ connection: name, redis: where, reason: lastError?.message }, 'Redis connection lost; reconnecting');
  });
  redis.on('reconnecting', (delayMs: number) => {
    log.debug({ connection: name, redis: where, delayMs }, 'Redis reconnecting');
  });
  redis.on('ready', () => {
    if (lostAt !== undefined) {
      log.info({ connection: name, redis: where, downMs: Date.now() - lostAt }, 'Redis connection recovered');
    }
    wasReady = true;
    lostAt = undefined;
    lastError = undefined;
  });
}

function whenReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return withTimeout(new Promise<void>((resolve) => redis.once('ready', () => resolve())), timeoutMs, 'connecting');
}

/** QUIT lets in-flight commands finish; when Redis is down it would wait for the reconnect, so cut it short. */
async function quit(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await withTimeout(redis.quit(), 1000, 'QUIT');
      return;
    } catch {
      // Fall through to a hard disconnect.
    }
  }
  redis.disconnect();
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PubSubUnavailableError(`Redis: ${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The URL without its password, for logs. */
