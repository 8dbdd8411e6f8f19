/**
 * An async iterator fed by push(): what a pub/sub subscription hands to a
 * GraphQL subscription. Values wait in order until pulled; `return()` runs the
 * release callback once (unsubscribing at the broker) and ends pending pulls.
 */
export class PushQueue<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  private readonly waiting: ((result: IteratorResult<T>) => void)[] = [];
  private done = false;

  constructor(private readonly release: () => void | Promise<void>) {}

  /** Number of values waiting to be pulled. */
  get size(): number {
    return this.values.length;
  }

  push(value: T): void {
    if (this.done) return;
    const waiter = this.waiting.shift();
    if (waiter) waiter({ value, done: false });
    else this.values.push(value);
  }

  next(): Promise<IteratorResult<T>> {
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
