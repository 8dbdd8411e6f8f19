import type { Client } from 'graphql-ws';
import * as Y from 'yjs';
import { wsClient } from './client.ts';

export const APPLY_DOC_UPDATE = `mutation ($docId: ID!, $update: String!) { applyDocUpdate(docId: $docId, update: $update) }`;
export const DOC_UPDATES = `subscription ($docId: ID!, $stateVector: String) { docUpdates(docId: $docId, stateVector: $stateVector) { docId update sync } }`;

export const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
export const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));

/** Runs one query or mutation over a graphql-ws connection. */
export function execute<T = Record<string, any>>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
): Promise<{ data?: T | null; errors?: { message: string; extensions?: Record<string, any> }[] }> {
  return new Promise((resolve, reject) => {
    let result: { data?: T | null; errors?: any[] } = {};
    client.subscribe<T>({ query, variables }, {
      next: (value) => (result = value as typeof result),
      error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
      complete: () => resolve(result),
    });
  });
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A Node editor of a shared document: a Y.Doc wired to the API over one
 * graphql-ws connection, as a browser client is. Local changes go out with
 * applyDocUpdate while online and wait in `pending` while offline; on
 * (re)connect it subscribes with its state vector, applies the sync, then
 * pushes what it changed meanwhile.
 */
export class DocEditor {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText('content');
  /** Markers this editor inserted (never deleted by anyone). */
  readonly markers: string[] = [];
  /** Updates sent, and largest single update, in bytes. */
  readonly stats = { sent: 0, sentBytes: 0, maxUpdateBytes: 0, received: 0, syncBytes: 0 };
  private client: Client | null = null;
  private unsubscribe: (() => void) | null = null;
  private pending: Uint8Array[] = [];
  private inFlight = new Set<Promise<void>>();
  readonly errors: unknown[] = [];
  online = false;

  constructor(
    readonly name: string,
    private wsUrl: string,
    private readonly token: string,
    readonly docId: string,
  ) {
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === 'remote') return;
      if (this.online) this.send(update);
      else this.pending.push(update);
    });
  }

  /** Connects (to `wsUrl`, or another process) and resolves once the sync event is applied and pending changes pushed. */
  async connect(wsUrl = this.wsUrl): Promise<void> {
    this.wsUrl = wsUrl;
    this.client = wsClient(wsUrl, this.token, { onNonLazyError: () => {} });
    const client = this.client;
    let synced!: () => void;
    let failed!: (error: unknown) => void;
    const sync = new Promise<void>((resolve, reject) => ((synced = resolve), (failed = reject)));
    this.unsubscribe = client.subscribe<{ docUpdates: { update: string; sync: boolean } }>(
      { query: DOC_UPDATES, variables: { docId: this.docId, stateVector: toBase64(Y.encodeStateVector(this.doc)) } },
      {
        next: (result) => {
          if (result.errors) {
            this.errors.push(...result.errors);
            failed(result.errors);
            return;
          }
          const event = result.data!.docUpdates;
          const bytes = fromBase64(event.update);
          this.stats.received += 1;
          if (event.sync) this.stats.syncBytes = bytes.byteLength;
          Y.applyUpdate(this.doc, bytes, 'remote');
          if (event.sync) synced();
        },
        error: (error) => {
          if (this.client === client) this.errors.push(error);
          failed(error);
        },
        complete: () => {},
      },
    );
    await sync;
    this.online = true;
    if (this.pending.length > 0) {
      // What changed while offline, as one diff.
      this.send(Y.mergeUpdates(this.pending.splice(0)));
    }
  }

  /** Stops sending and receiving; local edits continue and wait in `pending`. */
  async disconnect(): Promise<void> {
    this.online = false;
    await this.settled();
    this.unsubscribe?.();
    await this.client?.dispose();
    this.client = null;
  }

  /** Resolves when every update sent so far was answered. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /**
   * One random edit: mostly typing lowercase letters, sometimes a unique
   * marker (`<NAME:n>`), sometimes deleting 1–3 lowercase letters. Markers are
   * never deleted, so every one must survive in the converged text.
   */
  randomEdit(random: () => number): void {
    const length = this.text.length;
    const roll = random();
    if (roll < 0.3 && length > 0) {
      const text = this.text.toString();
      const at = Math.floor(random() * length);
      let count = 0;
      while (count < 3 && at + count < text.length && /[a-z]/.test(text[at + count]!) && random() < 0.8) count += 1;
      if (count > 0) this.text.delete(at, count);
      return;
    }
    let at = Math.floor(random() * (length + 1));
    // Never inside a marker: it must survive whole.
    for (const match of this.text.toString().matchAll(/<[A-Z]+:\d+>/g)) {
      if (at > match.index && at < match.index + match[0].length) at = match.index + match[0].length;
    }
    if (roll > 0.9) {
      const marker = `<${this.name}:${this.markers.length}>`;
      this.markers.push(marker);
      this.text.insert(at, marker);
    } else {
      const letters = Array.from({ length: 1 + Math.floor(random() * 3) }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
      this.text.insert(at, letters);
    }
  }

  async dispose(): Promise<void> {
    this.online = false;
    this.unsubscribe?.();
    await this.client?.dispose();
    this.client = null;
    this.doc.destroy();
  }

  /**
   * Queues a change and sends the queue, one applyDocUpdate at a time with
   * everything queued merged into one update (as a browser provider does):
   * a slow server gets fewer, larger updates instead of a pile of requests.
   */
  private send(update: Uint8Array): void {
    this.pending.push(update);
    if (this.flushing) return;
    const done = this.flush().finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  private flushing = false;

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.online && this.client && this.pending.length > 0) {
        const batch = this.pending.splice(0);
        const update = batch.length === 1 ? batch[0]! : Y.mergeUpdates(batch);
        this.stats.sent += 1;
        this.stats.sentBytes += update.byteLength;
        this.stats.maxUpdateBytes = Math.max(this.stats.maxUpdateBytes, update.byteLength);
        try {
          const result = await execute<{ applyDocUpdate: boolean }>(this.client, APPLY_DOC_UPDATE, { docId: this.docId, update: toBase64(update) });
          if (result.errors?.length || result.data?.applyDocUpdate !== true) {
            this.errors.push(result.errors);
            this.pending.unshift(update);
            return;
          }
        } catch (error) {
          // The connection went away: keep the change for the next connect.
          this.pending.unshift(update);
          if (this.online) this.errors.push(error);
          return;
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
