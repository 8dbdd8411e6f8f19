import * as Y from 'yjs';
import type { Context } from '../context.ts';
import { encodeBase64 } from './base64.ts';
import { loadDocState, updatesAfter } from './doc-store.ts';
import { RESYNC, withResyncs } from './streams.ts';

/** One DocUpdate as the subscription sends it. */
export interface DocUpdateShape {
  docId: string;
  /** Yjs update (v1), base64. */
  update: string;
  /** True for the first event: everything the client lacked when it subscribed. */
  sync: boolean;
  /** The stored update's seq, for a live update (the same for every subscriber). */
  seq?: number;
}

/** The seqs a subscriber already has: all up to `floor`, plus any that arrived ahead of a gap. */
class DeliveredSeqs {
  private readonly ahead = new Set<number>();
  constructor(public floor: number) {}

  has(seq: number): boolean {
    return seq <= this.floor || this.ahead.has(seq);
  }

  add(seq: number): void {
    if (this.has(seq)) return;
    this.ahead.add(seq);
    while (this.ahead.delete(this.floor + 1)) this.floor += 1;
  }

  /** Everything up to `seq` is covered (a full state was sent). */
  coverUpTo(seq: number): void {
    if (seq > this.floor) this.floor = seq;
    for (const s of this.ahead) if (s <= this.floor) this.ahead.delete(s);
    while (this.ahead.delete(this.floor + 1)) this.floor += 1;
  }
}


/**
 * A document's updates for one subscriber. Subscribes to live updates
 * first, then reads the stored state (snapshot plus updates) and sends what
 * the client's state vector lacks, always, as the `sync` event; then
 * forwards live updates it has not covered yet. Live events from several
 * processes may arrive out of order: Yjs applies updates in any order, so
 * they are forwarded as they come. After a pub/sub outage the stored
 * updates the subscriber may have missed are re-read and sent.
 */
export async function* docUpdateStream(
  ctx: Context,
  docId: string,
  stateVector: Uint8Array | null,
  signal: AbortSignal,
): AsyncGenerator<DocUpdateShape> {
  const live = await ctx.pubsub.subscribe('doc:update', docId);
  const close = () => void live.return?.();
  signal.addEventListener('abort', close, { once: true });
  try {
    const state = await loadDocState(ctx, docId);
    const delivered = new DeliveredSeqs(state.seq);
    const diff = stateVector ? Y.diffUpdate(state.update, stateVector) : state.update;
    yield { docId, update: encodeBase64(diff), sync: true };

    for await (const event of withResyncs(ctx.pubsub, live)) {
      if (event === RESYNC) {
        const missed = await missedUpdates(ctx, docId, delivered);
        if (missed) yield { docId, update: encodeBase64(missed), sync: false };
        continue;
      }
      if (delivered.has(event.seq)) continue;
      delivered.add(event.seq);
      yield { docId, update: event.update, sync: false, seq: event.seq };
    }
  } finally {
    signal.removeEventListener('abort', close);
    await live.return?.();
  }
}

/**
 * Stored updates the subscriber has not had, merged into one; the whole
 * stored state when a compaction already merged some of them into the
 * snapshot (duplicates are harmless to Yjs). Null when nothing is missing.
 */
async function missedUpdates(ctx: Context, docId: string, delivered: DeliveredSeqs): Promise<Uint8Array | null> {
  const rows = await updatesAfter(ctx, docId, delivered.floor);
  const contiguous = rows.length === 0 ? (await snapshotSeq(ctx, docId)) <= delivered.floor : rows[0]!.seq === delivered.floor + 1;
  if (!contiguous) {
    const state = await loadDocState(ctx, docId);
    delivered.coverUpTo(state.seq);
    return state.update;
  }
  const missing = rows.filter((row) => !delivered.has(row.seq));
  if (missing.length === 0) return null;
  for (const row of missing) delivered.add(row.seq);
  return Y.mergeUpdates(missing.map((row) => row.data));
}

async function snapshotSeq(ctx: Context, docId: string): Promise<number> {
  const doc = await ctx.db.document.findUnique({ where: { id: docId }, select: { snapshotSeq: true } });
  return doc?.snapshotSeq ?? 0;
}
