import * as Y from 'yjs';
import type { Context } from '../context.ts';

/** A document's stored content at one point: everything up to `seq`, as one merged Yjs update. */
export interface DocState {
  /** The merged Yjs update (v1). */
  update: Uint8Array;
  /** The highest update seq it includes. */
  seq: number;
}

/** Stored updates of a document after `afterSeq` (oldest first), at most up to `upTo`. */
export function updatesAfter(ctx: Pick<Context, 'db'>, docId: string, afterSeq: number, upTo?: number) {
  return ctx.db.documentUpdate.findMany({
    where: { documentId: docId, seq: upTo === undefined ? { gt: afterSeq } : { gt: afterSeq, lte: upTo } },
    orderBy: { seq: 'asc' },
    select: { seq: true, data: true },
  });
}

/**
 * Reads the snapshot and the updates after it, consistently: a compaction
 * that commits between the two reads (it deletes updates the snapshot now
 * covers) is noticed by the snapshot's seq having moved, and the read is
 * repeated.
 */
export async function loadDocState(ctx: Pick<Context, 'db'>, docId: string): Promise<DocState> {
  for (;;) {
    const doc = await ctx.db.document.findUniqueOrThrow({ where: { id: docId }, select: { snapshot: true, snapshotSeq: true } });
    const updates = await updatesAfter(ctx, docId, doc.snapshotSeq);
    const again = await ctx.db.document.findUniqueOrThrow({ where: { id: docId }, select: { snapshotSeq: true } });
    if (again.snapshotSeq !== doc.snapshotSeq) continue;
    const parts = [...(doc.snapshot ? [doc.snapshot] : []), ...updates.map((u) => u.data)];
    return {
      update: parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts),
      seq: updates.at(-1)?.seq ?? doc.snapshotSeq,
    };
  }
}

/**
 * Merges a snapshot and updates by loading them into a Y.Doc, which also
 * drops the content of deleted text (Yjs garbage collection), so a snapshot
 * stays close to the size of the live document rather than of its history.
 */
export function mergeIntoSnapshot(parts: readonly Uint8Array[]): Uint8Array {
  const doc = new Y.Doc({ gc: true });
  try {
    doc.transact(() => {
      for (const part of parts) Y.applyUpdate(doc, part);
    });
    return Y.encodeStateAsUpdate(doc);
  } finally {
    doc.destroy();
  }
}

/** Whether `bytes` decode as a Yjs update (v1). */
export function isYjsUpdate(bytes: Uint8Array): boolean {
  try {
    Y.decodeUpdate(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stores an update as the document's next seq. The document row is locked by
 * incrementing `lastSeq` (and `size`) in the same transaction that inserts
 * the update, as messages do with the room's row: seqs have no gaps, and the
 * size guard sees every concurrent update. Returns null when the document
 * would grow past `maxBytes` (nothing is stored).
 */
export async function appendUpdate(
  ctx: Pick<Context, 'db' | 'clock'>,
  docId: string,
  userId: string,
  data: Uint8Array,
  maxBytes: number,
): Promise<{ seq: number; snapshotSeq: number; size: number } | null> {
  return ctx.db.$transaction(async (tx) => {
    const doc = await tx.document.update({
      where: { id: docId },
      data: { lastSeq: { increment: 1 }, size: { increment: data.byteLength }, updatedAt: ctx.clock.now() },
      select: { lastSeq: true, snapshotSeq: true, size: true },
    });
    if (doc.size > maxBytes) throw new DocumentFull();
    await tx.documentUpdate.create({ data: { documentId: docId, seq: doc.lastSeq, data: new Uint8Array(data), userId } });
    return { seq: doc.lastSeq, snapshotSeq: doc.snapshotSeq, size: doc.size };
  }).catch((error: unknown) => {
    if (error instanceof DocumentFull) return null;
    throw error;
  });
}

class DocumentFull extends Error {}

/**
 * Merges the snapshot and every update after it into a new snapshot and
 * deletes the merged update rows, in one transaction that holds the
 * document's row lock: appends wait for it, and a second compaction running
 * at the same time finds nothing left to do. Returns how many update rows
 * were merged (0 when another compaction got there first).
 */
export async function compact(ctx: Pick<Context, 'db'>, docId: string, minPending: number): Promise<number> {
  return ctx.db.$transaction(async (tx) => {
    const [doc] = await tx.$queryRaw<{ snapshot: Uint8Array | null; snapshotSeq: number; lastSeq: number }[]>`
      SELECT "snapshot", "snapshotSeq", "lastSeq" FROM "Document" WHERE "id" = ${docId}::uuid FOR UPDATE`;
    if (!doc || doc.lastSeq - doc.snapshotSeq < minPending) return 0;
    const updates = await tx.documentUpdate.findMany({
      where: { documentId: docId, seq: { gt: doc.snapshotSeq, lte: doc.lastSeq } },
      orderBy: { seq: 'asc' },
      select: { data: true },
    });
    const snapshot = mergeIntoSnapshot([...(doc.snapshot ? [doc.snapshot] : []), ...updates.map((u) => u.data)]);
    await tx.document.update({
      where: { id: docId },
      data: { snapshot: new Uint8Array(snapshot), snapshotSeq: doc.lastSeq, size: snapshot.byteLength },
    });
    await tx.documentUpdate.deleteMany({ where: { documentId: docId, seq: { lte: doc.lastSeq } } });
    return updates.length;
  });
}
