import * as Y from 'yjs';

/** A merged run of pending updates handed to the sender by {@link PendingUpdates.take}. */
export interface UpdateBatch {
  /** The updates merged into one (Yjs v1 encoding). */
  update: Uint8Array;
  /** How many buffered updates it covers. */
  count: number;
}

/**
 * Local Yjs updates the API has not confirmed yet, oldest first.
 *
 * An update leaves the buffer only when the mutation that carried it
 * succeeded ({@link ack}); a failed send ({@link release}) leaves the buffer as
 * it was, so the same edits go again, merged with whatever was typed
 * meanwhile. Yjs updates are idempotent, so an update the server stored but
 * whose answer was lost does no harm when it is sent again.
 *
 * At most one batch is out at a time. While it is out, new updates queue
 * behind it and compaction never touches it: acknowledging it drops exactly
 * the updates it carried.
 */
export class PendingUpdates {
  private updates: Uint8Array[] = [];
  private bytes = 0;
  private outCount = 0;

  /** Buffers past this many updates are merged into one (offline typing makes thousands of tiny ones). */
  constructor(private readonly compactAt = 500) {}

  /** Updates not confirmed yet (including the batch being sent). */
  get size(): number {
    return this.updates.length;
  }

  /** Total bytes buffered. */
  get byteLength(): number {
    return this.bytes;
  }

  /** True while a batch is out and neither acknowledged nor released. */
  get sending(): boolean {
    return this.outCount > 0;
  }

  add(update: Uint8Array): void {
    this.updates.push(update);
    this.bytes += update.byteLength;
    if (this.updates.length - this.outCount > this.compactAt) this.compact();
  }

  /**
   * Merges the oldest updates (whole ones, up to `maxBytes` of input, but at
   * least one, and at most `maxCount`) into one batch and marks them as out.
   * Null when nothing is waiting or a batch is already out.
   */
  take(maxBytes = Infinity, maxCount = Infinity): UpdateBatch | null {
    if (this.outCount > 0 || this.updates.length === 0) return null;
    let count = 0;
    let bytes = 0;
    for (const u of this.updates) {
      if (count > 0 && (bytes + u.byteLength > maxBytes || count >= maxCount)) break;
      bytes += u.byteLength;
      count++;
    }
    const parts = this.updates.slice(0, count);
    this.outCount = count;
    return { update: parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts), count };
  }

  /** The batch out was stored by the API: drop the updates it carried. */
  ack(): void {
    const dropped = this.updates.splice(0, this.outCount);
    for (const u of dropped) this.bytes -= u.byteLength;
    this.outCount = 0;
  }

  /** The batch out was not stored: keep its updates for the next attempt. */
  release(): void {
    this.outCount = 0;
  }

  /** Everything buffered merged into one update (e.g. to persist it), or null when empty. */
  merged(): Uint8Array | null {
    if (this.updates.length === 0) return null;
    return this.updates.length === 1 ? this.updates[0]! : Y.mergeUpdates(this.updates);
  }

  private compact(): void {
    const tail = this.updates.splice(this.outCount);
    const merged = Y.mergeUpdates(tail);
    this.updates.push(merged);
    this.bytes = this.updates.reduce((n, u) => n + u.byteLength, 0);
  }
}
