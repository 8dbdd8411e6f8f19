import type { SerializedEntries, SerializedRequest, StorageAdapter } from '@urql/exchange-graphcache';

/**
 * A graphcache storage with the optional members the offline queue needs.
 * graphcache turns its offline queue on only when `onOnline`, `readMetadata`
 * and `writeMetadata` are all present.
 */
export interface OfflineStorage extends StorageAdapter {
  readMetadata(): Promise<null | SerializedRequest[]>;
  writeMetadata(json: SerializedRequest[]): void;
  onOnline(cb: () => void): void;
}

/** What {@link createMemoryStorage} keeps; hand the same object to a new storage to simulate a reload. */
export interface StoredCache {
  data: Record<string, string>;
  metadata: SerializedRequest[] | null;
}

/**
 * A storage kept in a plain object: for Node, tests and server-side use. A
 * "reload" is a new client created over the same storage (or the same
 * {@link StoredCache}). `onOnline` only records the callback: the realtime
 * client replays the queue itself when its WebSocket connects again.
 */
export function createMemoryStorage(state: StoredCache = { data: {}, metadata: null }): OfflineStorage & { readonly state: StoredCache } {
  return {
    state,
    async readData() {
      return { ...state.data };
    },
    async writeData(delta: SerializedEntries) {
      applyDelta(state.data, delta);
    },
    async readMetadata() {
      return state.metadata ? structuredClone(state.metadata) : null;
    },
    writeMetadata(json: SerializedRequest[]) {
      state.metadata = structuredClone(json);
    },
    onOnline() {},
  };
}

/** Applies a graphcache delta: `undefined` deletes a key. */
export function applyDelta(target: Record<string, string>, delta: SerializedEntries): void {
  for (const [key, value] of Object.entries(delta)) {
    if (value === undefined) delete target[key];
    else target[key] = value;
  }
}
