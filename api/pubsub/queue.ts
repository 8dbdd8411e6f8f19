import { slowConsumer } from '../../schema/errors.ts';

/** Events a subscription may have waiting before its consumer counts as too slow. */
export const DEFAULT_MAX_QUEUED = 1000;

/**
 * An async iterator fed by push(): what a pub/sub subscription hands to a
 * GraphQL subscription. Values wait in order until pulled; `return()` runs the
 * release callback once (unsubscribing at the broker) and ends pending pulls.
 *
 * graphql-ws sends a subscription's next event only once the previous frame
 * left the socket, so a client that stops reading makes events pile up here.
 * Past `maxQueued` the queue drops them and its next pull throws
 * SLOW_CONSUMER, so memory stays bounded; the client resumes with afterSeq.
 */
export class PushQueue<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  private readonly waiting: ((result: IteratorResult<T>) => void)[] = [];
  private done = false;
  private overflowed = false;

  constructor(
    private readonly release: () => void | Promise<void>,
    private readonly maxQueued = DEFAULT_MAX_QUEUED,
  ) {}

  /** Number of values waiting to be pulled. */
  get size(): number {
    return this.values.length;
  }

  push(value: T): void {
    if (this.done || this.overflowed) return;
    const waiter = this.waiting.shift();
    if (waiter) waiter({ value, done: false });
    else if (this.values.length >= this.maxQueued) {
      this.overflowed = true;
      this.values.length = 0;
    } else this.values.push(value);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.overflowed && !this.done) {
      void this.return();
      return Promise.reject(slowConsumer(this.maxQueued));
    }
    if (this.values.length > 0) return Promise.resolve({ value: this.values.shift() as T, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async return(): Promise<IteratorResult<T>> {
    if (!this.done) {
      this.done = true;
      this.values.length = 0;
      for (const waiter of this.waiting.splice(0)) waiter({ value: undefined, done: true });
      await this.release();
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
