export { createRealtimeClient, ClientDisposedError } from './realtime-client.ts';
export type {
  BacklogTooLarge,
  ChatMessage,
  MessageSubscription,
  PendingMessage,
  RealtimeClient,
  RealtimeClientOptions,
  SubscribeMessagesOptions,
  LiveVariables,
} from './realtime-client.ts';
export type { ConnectionState, ConnectionStatus, ConnectionStore } from './connection-state.ts';
export { reconnectDelayMs, RECONNECT_SCHEDULE_MS, type BackoffOptions } from './backoff.ts';
export { createMemoryStorage, type OfflineStorage, type StoredCache } from './storage.ts';
export { browserStorage } from './browser-storage.ts';
export { isOfflineError, QueuedBehindError, retryLaterMs } from './offline-error.ts';
