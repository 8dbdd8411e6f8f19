/** What a provider keeps of a document between page loads. */
export interface SavedDoc {
  /** The whole document as last seen (a Yjs update), so it can be shown offline. */
  state: Uint8Array;
  /** Local edits the API had not confirmed yet (merged), or null; they are sent again. */
  pending: Uint8Array | null;
}

/** Where a {@link DocProvider} keeps a document across reloads (see {@link indexedDbPersistence}). */
export interface DocPersistence {
  load(docId: string): Promise<SavedDoc | null>;
  save(docId: string, saved: SavedDoc): Promise<void>;
}

const STORE = 'docs';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * Documents kept in IndexedDB, one database per user (`dbName`), so a second
 * account in the same browser never sends the first one's edits.
 */
export function indexedDbPersistence(dbName: string, idb: IDBFactory = globalThis.indexedDB): DocPersistence {
  let opened: Promise<IDBDatabase> | undefined;
  const open = () =>
    (opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = idb.open(dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => {
        opened = undefined;
        reject(req.error);
      };
    }));
  return {
    async load(docId) {
      const db = await open();
      const saved = (await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(docId))) as SavedDoc | undefined;
      return saved ?? null;
    },
    async save(docId, saved) {
      const db = await open();
      const tx = db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).put(saved, docId);
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    },
  };
}

/** A persistence in a Map: for Node and tests; hand the same map to a new provider to simulate a reload. */
export function memoryPersistence(map: Map<string, SavedDoc> = new Map()): DocPersistence & { readonly map: Map<string, SavedDoc> } {
  return {
    map,
    async load(docId) {
      const saved = map.get(docId);
      return saved ? { state: saved.state.slice(), pending: saved.pending?.slice() ?? null } : null;
    },
    async save(docId, saved) {
      map.set(docId, { state: saved.state.slice(), pending: saved.pending?.slice() ?? null });
    },
  };
}
