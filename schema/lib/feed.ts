import type { Context, Services } from '../context.ts';

/**
 * A subscription whose events form one ordered feed per key (a room's
 * messages by seq), the same for every subscriber of the key. A field
 * declares it in its `orderedFeed` extension; the WebSocket runtime then runs
 * one feed per key and process (ordering, gap filling, execution and
 * serialization once per event) instead of one stream per subscriber. The
 * field's own `subscribe` stays the reference behaviour (and serves
 * operations that cannot share results).
 */
export interface OrderedFeed<E extends { seq: number }> {
  /**
   * Authorizes the viewer for the field's arguments (throwing the field's
   * GraphQLErrors: NOT_FOUND, FORBIDDEN, BACKLOG_TOO_LARGE...), and says which
   * feed to follow and from where: `afterSeq` null means live events only.
   */
  open(ctx: Context, args: Record<string, unknown>): Promise<{ key: string; userId: string; afterSeq: number | null }>;
  /** Live events of a key, active at the broker when it resolves; seq order is not guaranteed. */
  live(services: Services, key: string): Promise<AsyncIterableIterator<E>>;
  /** Ids of users who leave the key's audience (their subscriptions end). */
  leaves(services: Services, key: string): Promise<AsyncIterableIterator<string>>;
  /** Which of `userIds` still belong to the key's audience (re-checked after a broker outage, when leave events may have been lost). */
  members(services: Services, key: string, userIds: string[]): Promise<Set<string>>;
  /** The last seq stored now. */
  head(services: Services, key: string): Promise<number>;
  /** Stored events with after < seq < before (before null: all after), in seq order. */
  range(services: Services, key: string, after: number, before: number | null): Promise<E[]>;
  /** Names one event the same in every process (the shared-results key). */
  eventKey(event: E): string;
}

/** Maps a pub/sub iterator, dropping values mapped to null; `return()` unsubscribes the source. */
export function mapIterator<T, U>(source: AsyncIterableIterator<T>, fn: (value: T) => U | null): AsyncIterableIterator<U> {
  return {
    async next() {
      while (true) {
        const step = await source.next();
        if (step.done) return { done: true, value: undefined };
        const value = fn(step.value);
        if (value !== null) return { done: false, value };
      }
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
