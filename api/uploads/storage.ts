import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What a store knows about stored bytes. */
export interface FileStat {
  size: number;
}

/**
 * Where uploaded bytes live, addressed by keys the server generates. Local
 * folder today; an object store later behind the same interface.
 */
export interface FileStore {
  /** A fresh key for new bytes. Keys never derive from client input. */
  newKey(): string;
  /**
   * Stores the bytes under `key`, all or nothing: when the source fails
   * (too large, client gone), nothing is left behind and the error is rethrown.
   */
  put(key: string, source: Readable | Uint8Array): Promise<FileStat>;
  /** The stored bytes; rejects with {@link FileNotFoundError} when absent. */
  get(key: string): Promise<Readable>;
  /** Null when nothing is stored under `key`. */
  stat(key: string): Promise<FileStat | null>;
  /** Removes the bytes; no error when already absent. */
  delete(key: string): Promise<void>;
}

export class FileNotFoundError extends Error {
  constructor(key: string) {
    super(`No stored file under key ${key}`);
    this.name = 'FileNotFoundError';
  }
}

const KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** True for keys of the shape {@link FileStore.newKey} hands out. */
export function isStorageKey(key: string): boolean {
  return KEY.test(key);
}

/**
 * A {@link FileStore} in a local folder (`${DATA_DIR}/uploads`). Bytes are
 * written to `.partial/` first and renamed into place once complete, so a
 * reader never sees half a file and a crash leaves only `.partial/` debris.
 */
export function createLocalFileStore(root: string): FileStore {
  const base = resolve(root);
  const partialDir = join(base, '.partial');

  function pathOf(key: string): string {
    // Keys are generated here, but a row edited by hand or a future caller
    // must still not be able to name a path outside the folder.
    if (!isStorageKey(key)) throw new Error(`Invalid storage key: ${JSON.stringify(key)}`);
    const path = join(base, key);
    if (!path.startsWith(base + sep)) throw new Error(`Invalid storage key: ${JSON.stringify(key)}`);
    return path;
  }

  return {
    newKey: () => randomUUID(),

    async put(key, source) {
      const target = pathOf(key);
      await mkdir(partialDir, { recursive: true });
      const partial = join(partialDir, `${key}.${randomUUID()}`);
      try {
        const input = source instanceof Readable ? source : Readable.from([source]);
        await pipeline(input, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
        const { size } = await stat(partial);
        await rename(partial, target);
        return { size };
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    },

    async get(key) {
      const path = pathOf(key);
      const stream = createReadStream(path);
      // Surface a missing file as a rejection here rather than as a stream
      // error after response headers have been sent.
      await new Promise<void>((ok, fail) => {
        stream.once('open', () => ok());
        stream.once('error', (error: NodeJS.ErrnoException) => fail(error.code === 'ENOENT' ? new FileNotFoundError(key) : error));
      });
      return stream;
    },

    async stat(key) {
      try {
        const s = await stat(pathOf(key));
        return s.isFile() ? { size: s.size } : null;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },

    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
  };
}
