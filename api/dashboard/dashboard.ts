import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Clock, DashboardBatch, DashboardService, MetricPoint, MetricValue, Viewer } from '../../schema/context.ts';
import type { MetricUpdate, MetricsPublished, PubSub } from '../../schema/events.ts';
import type { Logger } from '../logger.ts';
import { DashboardBatcher, type BatcherStats } from './batcher.ts';
import { MetricStore } from './metric-store.ts';
import { createPublisherCheck } from './publishers.ts';
import { ServerFigures } from './server-figures.ts';

/** How often each process reports its own `server.*` figures. */
const SAMPLE_INTERVAL_MS = 1000;

export interface DashboardOptions {
  pubsub: PubSub;
  db: PrismaClient;
  clock: Clock;
  log: Logger;
  /** At most one batch per key set per interval. */
  intervalMs: number;
  /** History kept per key for sparklines. */
  historyMs: number;
  /** Users with these emails may publish, besides those with the 'publisher' role. */
  publisherEmails: readonly string[];
  /** Report `server.*` figures every second (on by default). */
  sampleServerFigures?: boolean;
}

/**
 * The live dashboard of one API process. Raw updates from publishMetrics and
 * from every process's figure sampler travel through the pub/sub topic
 * `metric:updated`; this process applies them to its store and batches them
 * for the subscribers connected to it, so batching happens next to the
 * subscriber whatever process the publisher reached.
 */
export class Dashboard implements DashboardService {
  /** Identifies this process's reports of `server.*` figures. */
  readonly source = randomUUID();
  readonly figures: ServerFigures;
  private readonly store: MetricStore;
  private readonly batcher: DashboardBatcher;
  private readonly isPublisher: (viewer: Viewer) => Promise<boolean>;
  private feed?: AsyncIterableIterator<MetricsPublished>;
  private feedDone?: Promise<void>;
  private sampler?: NodeJS.Timeout;

  constructor(private readonly options: DashboardOptions) {
    const now = () => options.clock.now().getTime();
    this.store = new MetricStore({ historyMs: options.historyMs, sourceTtlMs: 5 * SAMPLE_INTERVAL_MS, maxKeys: 10_000 });
    this.batcher = new DashboardBatcher(this.store, options.intervalMs, now);
    this.figures = new ServerFigures(now);
    this.isPublisher = createPublisherCheck(options.db, options.publisherEmails);
  }

  /** Subscribes to the updates of every process and starts the figure sampler. */
  async start(): Promise<void> {
    const feed = await this.options.pubsub.subscribe('metric:updated');
    this.feed = feed;
    this.feedDone = (async () => {
      for await (const published of { [Symbol.asyncIterator]: () => feed }) this.apply(published);
    })().catch((err) => this.options.log.error({ err }, 'dashboard feed failed'));
    if (this.options.sampleServerFigures !== false) {
      this.sampler = setInterval(() => void this.report(), SAMPLE_INTERVAL_MS);
      this.sampler.unref();
    }
  }

  /** Stops sampling, ends every dashboard subscription and leaves the pub/sub topic. */
  async close(): Promise<void> {
    clearInterval(this.sampler);
    this.batcher.close();
    await this.feed?.return?.();
    await this.feedDone;
  }

  canPublish(viewer: Viewer): Promise<boolean> {
    return this.isPublisher(viewer);
  }

  async publish(updates: MetricUpdate[]): Promise<void> {
    await this.options.pubsub.publish('metric:updated', { source: this.source, updates });
  }

  current(keys: readonly string[]): (MetricValue | null)[] {
    return keys.map((key) => this.store.get(key));
  }

  history(key: string, sinceMs: number): MetricPoint[] {
    return this.store.history(key, sinceMs, this.options.clock.now().getTime());
  }

  subscribe(keys: readonly string[]): AsyncIterableIterator<DashboardBatch> {
    return this.batcher.subscribe(keys);
  }

  observeDelivery(latencyMs: number): void {
    this.figures.observeDelivery(latencyMs);
  }

  messageSent(roomId: string): void {
    this.figures.messageSent(roomId);
  }

  /** Batching counters, e.g. to check that subscribers sharing keys share batches. */
  stats(): BatcherStats & { keys: number } {
    return { ...this.batcher.stats(), keys: this.store.size };
  }

  private apply(published: MetricsPublished): void {
    const now = this.options.clock.now().getTime();
    for (const update of published.updates) {
      const applied = this.store.apply(published.source, update, now);
      if (applied) this.batcher.changed(applied.key, applied.delta);
    }
  }

  private async report(): Promise<void> {
    try {
      await this.options.pubsub.publish('metric:updated', { source: this.source, updates: this.figures.sample() });
    } catch (err) {
      this.options.log.warn({ err }, 'publishing server figures failed');
    }
  }
}
