import type { DashboardBatch, DashboardUpdate, MetricValue } from '../../schema/context.ts';

/** Reads a key's current value when a batch is built. */
export interface ValueSource {
  get(key: string): MetricValue | null;
}

/** Counters that let tests and operators see how much work batching saves. */
export interface BatcherStats {
  /** Batches built since start: one per flush of a key set, however many subscribers share it. */
  batchesBuilt: number;
  /** Batches handed to subscribers (batchesBuilt times the subscribers of each set). */
  batchesDelivered: number;
  /** Distinct key sets with at least one subscriber now. */
  keySets: number;
  subscribers: number;
}

interface Group {
  id: string;
  keys: readonly string[];
  subscribers: Set<BatchQueue>;
  /** Keys changed since the last batch, with the summed increment for counters (null: gauge). */
  pending: Map<string, number | null>;
  lastFlushAt: number;
  timer?: NodeJS.Timeout;
}

/**
 * Merges metric updates into batches per distinct key set. Subscribers whose
 * key sets are equal (in any order) share a group: the batch is built once
 * and the same object goes to each of them. A group flushes at most once per
 * interval: the first change after a quiet period goes out on the next tick,
 * later ones wait for the interval to pass, so a key updated 100 times a
 * second yields about 4 batches with a 250 ms interval.
 */
export class DashboardBatcher {
  private readonly groups = new Map<string, Group>();
  private readonly groupsByKey = new Map<string, Set<Group>>();
  private readonly counters = { batchesBuilt: 0, batchesDelivered: 0 };
  private closed = false;

  constructor(
    private readonly values: ValueSource,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A stream of batches for `keys` (deduplicated); ends on `return()` or close(). */
  subscribe(keys: readonly string[]): AsyncIterableIterator<DashboardBatch> {
    const sorted = [...new Set(keys)].sort();
    const id = sorted.join('\n');
    let group = this.groups.get(id);
    if (!group) {
      group = { id, keys: sorted, subscribers: new Set(), pending: new Map(), lastFlushAt: 0 };
      this.groups.set(id, group);
      for (const key of sorted) {
        let set = this.groupsByKey.get(key);
        if (!set) this.groupsByKey.set(key, (set = new Set()));
        set.add(group);
      }
    }
    const owner = group;
    const queue = new BatchQueue(() => this.unsubscribe(owner, queue));
    if (this.closed) void queue.return();
    else group.subscribers.add(queue);
    return queue;
  }

  /** `key` changed (delta: the increment of a counter, null for a gauge). */
  changed(key: string, delta: number | null): void {
    const groups = this.groupsByKey.get(key);
    if (!groups) return;
    for (const group of groups) {
      if (group.pending.has(key)) {
        const before = group.pending.get(key) ?? null;
        group.pending.set(key, before === null || delta === null ? delta ?? before : before + delta);
      } else {
        group.pending.set(key, delta);
      }
      this.schedule(group);
    }
  }

  stats(): BatcherStats {
    let subscribers = 0;
    for (const group of this.groups.values()) subscribers += group.subscribers.size;
    return { ...this.counters, keySets: this.groups.size, subscribers };
  }

  /** Ends every subscription and cancels pending flushes. */
  close(): void {
    this.closed = true;
    for (const group of [...this.groups.values()]) {
      clearTimeout(group.timer);
      for (const queue of [...group.subscribers]) void queue.return();
    }
  }

  private schedule(group: Group): void {
    if (group.timer) return;
    const wait = Math.max(0, group.lastFlushAt + this.intervalMs - this.now());
    group.timer = setTimeout(() => this.flush(group), wait);
    group.timer.unref();
  }

  private flush(group: Group): void {
    group.timer = undefined;
    if (group.pending.size === 0 || group.subscribers.size === 0) return;
    const updates: DashboardUpdate[] = [];
    for (const [key, delta] of group.pending) {
      const value = this.values.get(key);
      if (value) updates.push({ ...value, delta });
    }
    group.pending.clear();
    group.lastFlushAt = this.now();
    if (updates.length === 0) return;
    const batch: DashboardBatch = Object.freeze({ at: new Date(group.lastFlushAt), updates: Object.freeze(updates) });
    this.counters.batchesBuilt++;
    for (const queue of group.subscribers) {
      queue.push(batch);
      this.counters.batchesDelivered++;
    }
  }

  private unsubscribe(group: Group, queue: BatchQueue): void {
    group.subscribers.delete(queue);
    if (group.subscribers.size > 0) return;
    clearTimeout(group.timer);
    this.groups.delete(group.id);
    for (const key of group.keys) {
      const set = this.groupsByKey.get(key);
      set?.delete(group);
      if (set?.size === 0) this.groupsByKey.delete(key);
    }
  }
}

/**
 * One subscriber's stream. It holds at most one batch waiting: when the
 * consumer (the WebSocket) falls behind, the waiting batch and the new one
 * are merged, so a slow client costs constant memory and still ends up with
 * the latest value of every key it asked for.
 */
export class BatchQueue implements AsyncIterableIterator<DashboardBatch> {
  private waitingBatch: DashboardBatch | undefined;
  private waiter: ((result: IteratorResult<DashboardBatch>) => void) | undefined;
  private done = false;

  constructor(private readonly release: () => void) {}

  push(batch: DashboardBatch): void {
    if (this.done) return;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter({ value: batch, done: false });
    } else {
      this.waitingBatch = this.waitingBatch ? mergeBatches(this.waitingBatch, batch) : batch;
    }
  }

  next(): Promise<IteratorResult<DashboardBatch>> {
    if (this.waitingBatch) {
      const value = this.waitingBatch;
      this.waitingBatch = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  async return(): Promise<IteratorResult<DashboardBatch>> {
    if (!this.done) {
      this.done = true;
      this.waitingBatch = undefined;
      this.waiter?.({ value: undefined, done: true });
      this.waiter = undefined;
      this.release();
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<DashboardBatch> {
    return this;
  }
}

/** `later` wins per key; counter increments add up. */
export function mergeBatches(earlier: DashboardBatch, later: DashboardBatch): DashboardBatch {
  const byKey = new Map<string, DashboardUpdate>(earlier.updates.map((u) => [u.key, u]));
  for (const update of later.updates) {
    const before = byKey.get(update.key);
    const delta = before?.delta != null && update.delta != null ? before.delta + update.delta : update.delta;
    byKey.set(update.key, { ...update, delta });
  }
  return Object.freeze({ at: later.at, updates: Object.freeze([...byKey.values()]) });
}
