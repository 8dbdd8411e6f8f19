import type { MetricPoint, MetricValue } from '../../schema/context.ts';
import type { MetricUpdate } from '../../schema/events.ts';

/** How built-in `server.*` figures from several API processes combine into one value. */
export type Aggregate = 'sum' | 'max';

/** Built-in figures and how the processes' reports combine; unlisted `server.*` keys sum. */
export const SERVER_FIGURES: Readonly<Record<string, Aggregate>> = {
  'server.connections': 'sum',
  'server.onlineUsers': 'sum',
  'server.messagesPerSecond': 'sum',
  'server.activeRooms': 'sum',
  'server.deliveryLatencyMs': 'max',
};

export interface MetricStoreOptions {
  /** How far back history reaches. */
  historyMs: number;
  /** A process that stops reporting a `server.*` figure for this long no longer counts. */
  sourceTtlMs: number;
  /** Most keys kept; the least recently updated goes first. */
  maxKeys: number;
}

interface Entry {
  value: number;
  at: number;
  labels: Readonly<Record<string, string>>;
  /** One point per second, oldest first. */
  points: { at: number; value: number }[];
  /** Per-process reports of a `server.*` figure. */
  sources?: Map<string, { value: number; seenAt: number }>;
}

/** What applying an update changed, for the batcher. */
export interface Applied {
  key: string;
  /** The increment for counters, null for gauges. */
  delta: number | null;
}

/**
 * Current values and short history of every metric this process has seen.
 * Every process applies the same stream of raw updates from the pub/sub, so
 * their stores agree on gauges; counters total what a process saw since it
 * started (they are not persisted).
 */
export class MetricStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: MetricStoreOptions) {}

  /** Applies one update; null when it changed nothing (an older gauge value arriving late). */
  apply(source: string, update: MetricUpdate, now: number): Applied | null {
    let entry = this.entries.get(update.key);
    if (entry) {
      // Re-inserting keeps Map order = least recently updated first, for eviction.
      this.entries.delete(update.key);
    } else {
      entry = { value: 0, at: 0, labels: {}, points: [] };
      if (this.entries.size >= this.options.maxKeys) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
    }
    this.entries.set(update.key, entry);

    let delta: number | null = null;
    if (update.key.startsWith('server.')) {
      entry.sources ??= new Map();
      entry.sources.set(source, { value: update.value, seenAt: now });
      entry.value = this.combine(update.key, entry.sources, now);
      entry.at = Math.max(entry.at, update.at);
    } else if (update.kind === 'COUNTER') {
      entry.value += update.value;
      entry.at = Math.max(entry.at, update.at);
      delta = update.value;
    } else {
      if (update.at < entry.at) return null;
      entry.value = update.value;
      entry.at = update.at;
    }
    if (update.labels) entry.labels = update.labels;
    this.record(entry, now);
    return { key: update.key, delta };
  }

  get(key: string): MetricValue | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    return { key, value: entry.value, at: new Date(entry.at), labels: entry.labels };
  }

  history(key: string, sinceMs: number, now: number): MetricPoint[] {
    const entry = this.entries.get(key);
    if (!entry) return [];
    const from = now - Math.min(sinceMs, this.options.historyMs);
    return entry.points.filter((p) => p.at >= from).map((p) => ({ at: new Date(p.at), value: p.value }));
  }

  get size(): number {
    return this.entries.size;
  }

  private combine(key: string, sources: Map<string, { value: number; seenAt: number }>, now: number): number {
    const aggregate = SERVER_FIGURES[key] ?? 'sum';
    let result = 0;
    for (const [source, report] of sources) {
      if (now - report.seenAt > this.options.sourceTtlMs) {
        sources.delete(source); // that process stopped or died
        continue;
      }
      result = aggregate === 'sum' ? result + report.value : Math.max(result, report.value);
    }
    return result;
  }

  /** Keeps the last value of each second, within the history window. */
  private record(entry: Entry, now: number): void {
    const second = Math.floor(now / 1000) * 1000;
    const last = entry.points.at(-1);
    if (last && last.at === second) last.value = entry.value;
    else entry.points.push({ at: second, value: entry.value });
    const cutoff = now - this.options.historyMs;
    let drop = 0;
    while (drop < entry.points.length && (entry.points[drop] as { at: number }).at < cutoff) drop++;
    if (drop > 0) entry.points.splice(0, drop);
  }
}
