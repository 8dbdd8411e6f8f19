import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SerializedEntries, SerializedRequest } from '@urql/exchange-graphcache';
import { applyDelta, type OfflineStorage, type StoredCache } from './storage.ts';

/** A storage in a file; `flush()` resolves when every write so far is on disk. */
export interface FileStorage extends OfflineStorage {
  flush(): Promise<void>;
}

/**
 * A graphcache storage in one JSON file, for Node clients (bots, CLIs, tests)
 * whose queued mutations must survive a process restart.
 *
 * Node-only (imports node:fs); browsers use {@link browserStorage}. Writes go
 * through a temporary file and a rename, one at a time, so a crash leaves
 * either the old or the new content, never half a file.
 */
export function createFileStorage(path: string): FileStorage {
  let state: StoredCache | undefined;
  let writing: Promise<void> = Promise.resolve();

  const load = async (): Promise<StoredCache> => {
    if (state) return state;
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<StoredCache>;
      state = { data: parsed.data ?? {}, metadata: parsed.metadata ?? null };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      state = { data: {}, metadata: null };
    }
    return state;
  };

  const save = () => {
    const snapshot = JSON.stringify(state);
    writing = writing.then(async () => {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, snapshot);
      await rename(tmp, path);
    });
    return writing;
  };

  return {
    async readData() {
      return { ...(await load()).data };
    },
    async writeData(delta: SerializedEntries) {
      applyDelta((await load()).data, delta);
      await save();
    },
    async readMetadata() {
      return (await load()).metadata;
    },
    writeMetadata(json: SerializedRequest[]) {
      void load().then((s) => {
        s.metadata = json;
        return save();
      });
    },
    // Nothing to listen to in Node: the client replays when its WebSocket connects.
    onOnline() {},
    flush: () => writing,
  };
}
