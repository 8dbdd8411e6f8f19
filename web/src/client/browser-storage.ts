import { makeDefaultStorage, type StorageOptions } from '@urql/exchange-graphcache/default-storage';
import type { OfflineStorage } from './storage.ts';

/**
 * IndexedDB storage for browsers (graphcache's default storage): the cache and
 * the offline queue survive a page reload, and the browser's `online` event
 * replays the queue (as does the WebSocket reconnecting).
 */
export function browserStorage(options: StorageOptions = { idbName: 'realtime-chat', maxAge: 7 }): OfflineStorage {
  return makeDefaultStorage(options) as OfflineStorage;
}
