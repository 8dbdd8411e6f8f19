import { makeErrorResult, stringifyDocument, type CombinedError, type Exchange, type Operation, type OperationResult } from '@urql/core';
import type { SerializedRequest } from '@urql/exchange-graphcache';
import { filter, makeSubject, merge, onPush, pipe, share } from 'wonka';
import { QueuedBehindError } from './offline-error.ts';

export interface OutboxOptions {
  isOfflineError(error: CombinedError | undefined): boolean;
  /** Stores the unacknowledged mutations, oldest first (graphcache's metadata format). */
  persist(requests: SerializedRequest[]): void;
  /** Called whenever the number of unacknowledged mutations changes. */
  onSizeChange?(size: number): void;
  /** A mutation could not be delivered (its `error` passed `isOfflineError`): everything waits until `release()`. */
  onBlocked?(error: CombinedError | undefined): void;
  /** The API answered a mutation. */
  onAnswered?(): void;
}

/** See {@link createOutbox}. */
export interface Outbox {
  /** Sits between graphcache's offlineExchange and the fetch exchange. */
  readonly exchange: Exchange;
  /** Optimistic mutations sent but not answered by the API yet (queued or in flight). */
  readonly size: number;
  /** Lets mutations go again after an offline failure; call right before graphcache replays its queue. */
  release(): void;
  /** Stops persisting: teardowns from a disposed client must not drop the stored queue. */
  close(): void;
}

/**
 * Sends optimistic mutations (the ones graphcache queues offline) one at a
 * time, in order, and keeps a durable record of every one not yet answered.
 *
 * Why it exists, given graphcache's offlineExchange:
 * - graphcache replays its queue by dispatching everything at once; the fetch
 *   exchange would then race the requests and the API could store the
 *   messages in another order. Here the next one leaves only after the
 *   previous one was answered.
 * - once one mutation fails for lack of network, the ones behind it are failed
 *   at once as offline too (without a request), and so is anything sent until
 *   the queue is replayed, so a later message can never overtake an earlier one.
 * - graphcache writes its queue as empty the moment it starts a replay; a page
 *   closed during the replay would lose what was not answered yet. This record
 *   drops a mutation only when the API answered it, so a reload replays the
 *   rest (the API dedupes a repeated `clientId`).
 */
export function createOutbox(options: OutboxOptions): Outbox {
  const unacked = new Map<number, Operation>();
  const pending: Operation[] = [];
  let inFlight: Operation | null = null;
  let blocked = false;
  let closed = false;
  let persistScheduled = false;
  let release: (op: Operation) => void = () => {};
  let emitResult: (result: OperationResult) => void = () => {};

  const isQueued = (op: Operation) => op.kind === 'mutation' && op.context.optimistic === true;

  const changed = () => {
    options.onSizeChange?.(unacked.size);
    if (closed || persistScheduled) return;
    // Coalesced: a replay of 200 mutations changes the record 400 times in one tick.
    persistScheduled = true;
    queueMicrotask(() => {
      persistScheduled = false;
      if (closed) return;
      options.persist(
        Array.from(unacked.values(), (op) => ({ query: stringifyDocument(op.query), variables: op.variables, extensions: undefined })),
      );
    });
  };

  const failOffline = (op: Operation) => queueMicrotask(() => emitResult(makeErrorResult(op, new QueuedBehindError())));

  const pump = () =>
    queueMicrotask(() => {
      if (inFlight || blocked || closed) return;
      const next = pending.shift();
      if (!next) return;
      inFlight = next;
      release(next);
    });

  const enqueue = (op: Operation) => {
    unacked.delete(op.key);
    unacked.set(op.key, op);
    changed();
    if (blocked) failOffline(op);
    else {
      pending.push(op);
      pump();
    }
  };

  const teardown = (op: Operation) => {
    const i = pending.findIndex((p) => p.key === op.key);
    if (i >= 0) pending.splice(i, 1);
    if (inFlight?.key === op.key) {
      // The fetch exchange aborts it and no result will come.
      inFlight = null;
      pump();
    }
    if (!closed && unacked.delete(op.key)) changed();
  };

  const answered = (result: OperationResult) => {
    if (!inFlight || result.operation.key !== inFlight.key) return;
    inFlight = null;
    if (options.isOfflineError(result.error)) {
      // graphcache queues this one; everything behind it follows, in order.
      blocked = true;
      for (const op of pending.splice(0)) failOffline(op);
      options.onBlocked?.(result.error);
      return;
    }
    options.onAnswered?.();
    if (unacked.delete(result.operation.key)) changed();
    pump();
  };

  const exchange: Exchange = ({ forward }) => (ops$) => {
    const shared = share(ops$);
    const released = makeSubject<Operation>();
    const synthetic = makeSubject<OperationResult>();
    release = released.next;
    emitResult = synthetic.next;
    const direct$ = pipe(
      shared,
      filter((op) => {
        if (op.kind === 'teardown') teardown(op);
        return !isQueued(op);
      }),
    );
    const queued$ = pipe(
      shared,
      filter(isQueued),
      onPush(enqueue),
      filter(() => false),
    );
    const results$ = pipe(forward(merge([direct$, queued$, released.source])), onPush(answered));
    return merge([results$, synthetic.source]);
  };

  return {
    exchange,
    get size() {
      return unacked.size;
    },
    release() {
      blocked = false;
      pump();
    },
    close() {
      closed = true;
      pending.length = 0;
    },
  };
}
