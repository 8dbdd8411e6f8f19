import type { ServerResponse } from 'node:http';

/**
 * Counts work in progress (HTTP requests, GraphQL operations over WebSocket)
 * so that a stopping server can wait for it before closing the database
 * under it.
 */
export class InFlight {
  private count = 0;
  private readonly idleWaiters = new Set<() => void>();

  /** Work in progress now. */
  get size(): number {
    return this.count;
  }

  /** Counts `res` until it is finished or its connection is gone. */
  trackResponse(res: ServerResponse): void {
    this.count++;
    res.once('close', () => this.release());
  }

  /** Counts `work` until it settles; returns it unchanged. */
  track<T>(work: Promise<T>): Promise<T> {
    this.count++;
    work.then(
      () => this.release(),
      () => this.release(),
    );
    return work;
  }

  /** Resolves `true` once nothing is in progress, or `false` at `deadline` (epoch ms) if something still is. */
  idle(deadline: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(this.count === 0);
      }, Math.max(0, deadline - Date.now()));
      this.idleWaiters.add(done);
    });
  }

  private release() {
    this.count--;
    if (this.count === 0) for (const waiter of [...this.idleWaiters]) waiter();
  }
}
