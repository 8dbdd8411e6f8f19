import type { ConnectionStore } from '../client/connection-state.ts';

/** One `docUpdates` result: a base64 Yjs update; `sync` marks the catch-up that opens every (re)subscription. */
export interface DocUpdateMessage {
  update: string;
  sync: boolean;
}

/** What became of a mutation the provider sent. */
export type SendOutcome =
  /** The API stored it. */
  | { ok: true }
  /** It did not reach the API, or the API said "not now": send it again later (not before `afterMs`). */
  | { ok: false; retry: true; afterMs?: number }
  /** The API refused it (not a member, too large, malformed): sending the same again cannot succeed. */
  | { ok: false; retry: false; message: string; code?: string };

/** Why the API ended a subscription. */
export interface SubscriptionError {
  message: string;
  code?: string;
  /** The API said to subscribe again (UNAVAILABLE with `retryable`); otherwise it ended for good (FORBIDDEN, NOT_FOUND). */
  retryable?: boolean;
}

export interface SubscriptionHandlers<T> {
  next(value: T): void;
  /** The subscription ended with an error; no more values come. */
  error(error: SubscriptionError): void;
}

/**
 * How a {@link DocProvider} reaches the API. {@link realtimeDocTransport} is
 * the real one (over the app's realtime client); tests of the provider's own
 * bookkeeping may pass a fake.
 */
export interface DocTransport {
  /** The WebSocket's state: the provider sends while `connected` and shows `offline` otherwise. */
  readonly connection: ConnectionStore;
  /**
   * Subscribes `docUpdates`. `stateVector` is read on every (re)subscription,
   * after a reconnect too, so the server's catch-up covers exactly what the
   * client lacks at that moment.
   */
  subscribeUpdates(docId: string, stateVector: () => string, handlers: SubscriptionHandlers<DocUpdateMessage>): () => void;
  /** Subscribes `docAwareness` (full states first, then changes); base64 y-protocols awareness updates. */
  subscribeAwareness(docId: string, handlers: SubscriptionHandlers<string>): () => void;
  applyUpdate(docId: string, update: string): Promise<SendOutcome>;
  applyAwareness(docId: string, update: string): Promise<SendOutcome>;
}
