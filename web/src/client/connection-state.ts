/**
 * - `connecting`: the first connection is being opened.
 * - `connected`: the WebSocket is open and acknowledged; queued mutations are replayed.
 * - `reconnecting`: the connection was lost (dropped, or the server restarted
 *   with 1012); the next attempt is in `retryInMs`.
 * - `offline`: the last attempt could not reach the server at all (or the
 *   browser reports no network); mutations are queued; next attempt in `retryInMs`.
 * - `closed`: no more attempts: the client was disposed, or the server refused
 *   the credentials (`closeCode` 4401/4403).
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed';

/** A snapshot of the connection, replaced (never mutated) on every change. */
export interface ConnectionState {
  readonly status: ConnectionStatus;
  /** While `reconnecting`/`offline`: delay chosen for the next attempt (0 while it is being made). */
  readonly retryInMs?: number;
  /** While `reconnecting`/`offline`: epoch ms of the next attempt, for a countdown. */
  readonly retryAt?: number;
  /** Optimistic mutations (sendMessage, markRead) not yet answered by the API. */
  readonly queued: number;
  /** Close code of the last lost connection (1006 abnormal, 1012 server restart, 4403 bad token, …). */
  readonly closeCode?: number;
}

/**
 * The client's connection state as an external store: `subscribe` +
 * `getSnapshot` fit React's `useSyncExternalStore` as they are.
 */
export interface ConnectionStore {
  getSnapshot(): ConnectionState;
  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: (state: ConnectionState) => void): () => void;
}

/** A {@link ConnectionStore} plus the setter the client uses. */
export function createConnectionStore(initial: ConnectionState): ConnectionStore & { set(patch: Partial<ConnectionState>): void } {
  let state = initial;
  const listeners = new Set<(state: ConnectionState) => void>();
  return {
    getSnapshot: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(patch) {
      const next: ConnectionState = { ...state, ...patch };
      if (next.status === 'connected' || next.status === 'connecting' || next.status === 'closed') {
        delete (next as { retryInMs?: number }).retryInMs;
        delete (next as { retryAt?: number }).retryAt;
      }
      if (shallowEqual(state, next)) return;
      state = next;
      for (const listener of [...listeners]) listener(state);
    },
  };
}

function shallowEqual(a: object, b: object): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}
