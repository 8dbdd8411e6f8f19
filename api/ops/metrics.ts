import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OperationalMetrics } from '../../schema/context.ts';

/** Prefix of every metric this server exposes, the default process metrics included. */
export const METRIC_PREFIX = 'realtime_api_';

/** Delivery latency buckets, in seconds: 1 ms (same process, idle) to 10 s (backed up). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The subscription field whose results count as message deliveries. */
const MESSAGE_FIELD = 'messageAdded';

/**
 * The server's Prometheus metrics. Each server owns its registry (never
 * prom-client's global one), so several servers in one process, as in tests,
 * keep separate figures and do not clash on metric names.
 */
export interface ServerMetrics {
  readonly registry: Registry;
  /** What the schema reports through `ctx.metrics`. */
  readonly schema: OperationalMetrics;
  /** Reads the number of open WebSockets at each scrape. */
  countConnectionsWith(count: () => number): void;
  /** Reads the number of HTTP requests being served at each scrape. */
  countInFlightWith(count: () => number): void;
  /** Reads the running subscriptions by root field at each scrape. */
  countSubscriptionsWith(count: () => ReadonlyMap<string, number>): void;
  /**
   * A subscription result is about to be sent; `value` is what it carries
   * under the root field (null or undefined when it carries only errors).
   */
  resultSent(field: string, value: unknown, now?: number): void;
  /** The same result was sent to `count` subscribers at once. */
  resultsSent(field: string, value: unknown, count: number, now?: number): void;
  dbError(): void;
  redisError(connection: string): void;
  /** A rate limit refused a use of `action` (sendMessage, signInIp, …). */
  rateLimited(action: string): void;
  /** The exposition text and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** Creates the metrics of one server, with Node's default process metrics under {@link METRIC_PREFIX}. */
export function createServerMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  let connections = () => 0;
  let inFlight = () => 0;
  let running: () => ReadonlyMap<string, number> = () => new Map();
  new Gauge({
    name: `${METRIC_PREFIX}websocket_connections`,
    help: 'Open WebSocket connections, authenticated or not.',
    registers: [registry],
    collect() {
      this.set(connections());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}http_requests_in_flight`,
    help: 'HTTP requests being served (GraphQL and uploads; probes and scrapes excluded).',
    registers: [registry],
    collect() {
      this.set(inFlight());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}active_subscriptions`,
    help: 'Running graphql-ws subscriptions, by root field.',
    labelNames: ['operation'],
    registers: [registry],
    collect() {
      this.reset();
      // Always present, so that dashboards show 0 rather than no data.
      this.set({ operation: MESSAGE_FIELD }, 0);
      for (const [operation, count] of running()) this.set({ operation }, count);
    },
  });
  const published = new Counter({
    name: `${METRIC_PREFIX}messages_published_total`,
    help: 'Chat messages stored and published by this process (idempotent retries excluded).',
    registers: [registry],
  });
  const delivered = new Counter({
    name: `${METRIC_PREFIX}messages_delivered_total`,
    help: 'messageAdded results sent to WebSocket subscribers of this process.',
    registers: [registry],
  });
  const latency = new Histogram({
    name: `${METRIC_PREFIX}message_delivery_latency_seconds`,
    help: 'From a message being stored (createdAt) to its messageAdded result being sent; only subscriptions selecting createdAt are measured.',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const dbErrors = new Counter({
    name: `${METRIC_PREFIX}db_errors_total`,
    help: 'Database errors: unexpected Prisma errors masked in GraphQL responses, and failed readiness checks.',
    registers: [registry],
  });
  const redisErrors = new Counter({
    name: `${METRIC_PREFIX}redis_errors_total`,
    help: 'Redis connection errors and failed publishes, by connection.',
    labelNames: ['connection'],
    registers: [registry],
  });
  // Without a first sample a counter is absent from the scrape until it
  // moves, and an alert on rate() would have nothing to compare against.
  redisErrors.inc({ connection: 'publisher' }, 0);
  redisErrors.inc({ connection: 'subscriber' }, 0);
  const refusals = new Counter({
    name: `${METRIC_PREFIX}rate_limited_total`,
    help: 'Uses refused by a rate limit, by action.',
    labelNames: ['action'],
    registers: [registry],
  });

  const resultsSent: ServerMetrics['resultsSent'] = (field, value, count, now = Date.now()) => {
    if (field !== MESSAGE_FIELD || value === null || typeof value !== 'object' || count < 1) return;
    delivered.inc(count);
    const createdAt = (value as { createdAt?: unknown }).createdAt;
    if (typeof createdAt !== 'string') return;
    const stored = Date.parse(createdAt);
    // Clocks of two processes can disagree by a little; a negative age is that skew, not a delivery time.
    if (!Number.isFinite(stored)) return;
    const age = Math.max(0, now - stored) / 1000;
    for (let i = 0; i < count; i++) latency.observe(age);
  };

  return {
    registry,
    schema: { messagePublished: () => published.inc() },
    countConnectionsWith(count) {
      connections = count;
    },
    countInFlightWith(count) {
      inFlight = count;
    },
    countSubscriptionsWith(count) {
      running = count;
    },
    resultSent: (field, value, now = Date.now()) => resultsSent(field, value, 1, now),
    resultsSent,
    dbError: () => dbErrors.inc(),
    redisError: (connection) => redisErrors.inc({ connection }),
    rateLimited: (action) => refusals.inc({ action }),
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
