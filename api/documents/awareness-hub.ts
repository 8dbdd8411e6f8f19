import { randomUUID } from 'node:crypto';
import { applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates, type Awareness } from 'y-protocols/awareness';
import type { DocAwarenessResult, DocAwarenessService, DocRef, Logger } from '../../schema/context.ts';
import type { DocAwarenessEvent, PubSub, UserSummary } from '../../schema/events.ts';
import { passiveAwareness, stampAwarenessUpdate, stampedUserId } from './awareness-update.ts';

export interface AwarenessHubOptions {
  pubsub: PubSub;
  log: Logger;
  /** A state not renewed for this long is removed (clients renew every 15 s). */
  timeoutMs: number;
  /** Updates one subscriber may have waiting; past it they are replaced by one full state. */
  maxQueued?: number;
}

/** One followed document's awareness on this process. */
interface Entry {
  doc: DocRef;
  awareness: Awareness;
  destroyAwareness(): void;
  /** Yjs clientID → the user who first sent it. */
  owners: Map<number, string>;
  subscribers: Set<UpdateQueue>;
  disposed: boolean;
  /** Releases the entry's pub/sub subscriptions. */
  unsubscribe(): void;
}

const BASE64 = 'base64';
const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(BASE64);
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, BASE64));

/**
 * Document awareness (who is in a document, their cursors), kept in each
 * process's memory: one y-protocols Awareness per document that has a
 * subscriber or a live state here. Accepted updates are applied locally and
 * published on `doc:awareness`; every other process following the document
 * applies them to its own copy, and a process that starts following a
 * document asks the others for their current states. A state is removed
 * when it is not renewed within `timeoutMs`, when its user goes offline
 * (their last WebSocket closed: `presence:changed`) or leaves the room.
 */
export class DocAwarenessHub implements DocAwarenessService {
  private readonly entries = new Map<string, Promise<Entry>>();
  /** The same entries once open, so that disposing one removes it at once. */
  private readonly open = new Map<string, Entry>();
  private readonly source = randomUUID();
  private sweeper: NodeJS.Timeout | undefined;
  private presence: AsyncIterableIterator<unknown> | undefined;

  constructor(private readonly options: AwarenessHubOptions) {}

  async start(): Promise<this> {
    const presence = await this.options.pubsub.subscribe('presence:changed');
    this.presence = presence;
    void (async () => {
      for await (const event of { [Symbol.asyncIterator]: () => presence }) {
        if (event.status === 'OFFLINE') this.removeUser(event.user.id, null);
      }
    })().catch((err: unknown) => this.options.log.warn({ err }, 'awareness: presence listener failed'));
    const every = Math.max(50, Math.min(1000, Math.floor(this.options.timeoutMs / 4)));
    this.sweeper = setInterval(() => this.expire(), every);
    this.sweeper.unref();
    return this;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.presence?.return?.();
    await Promise.allSettled([...this.entries.values()]);
    for (const entry of [...this.open.values()]) this.dispose(entry);
  }

  async apply(doc: DocRef, update: Uint8Array, user: UserSummary): Promise<DocAwarenessResult> {
    const stamped = stampAwarenessUpdate(update, user);
    if (!stamped) return 'malformed';
    const entry = await this.liveEntry(doc);
    for (const clientID of stamped.clients) {
      const owner = entry.owners.get(clientID) ?? stampedUserId(entry.awareness.states.get(clientID));
      if (owner !== undefined && owner !== user.id) {
        this.disposeIfIdle(entry);
        return 'foreign-client';
      }
    }
    for (const clientID of stamped.clients) entry.owners.set(clientID, user.id);
    applyAwarenessUpdate(entry.awareness, stamped.update, 'local');
    this.disposeIfIdle(entry);
    await this.publish(doc.id, { source: this.source, kind: 'update', update: toBase64(stamped.update) });
    return 'applied';
  }

  async subscribe(doc: DocRef, signal: AbortSignal): Promise<AsyncIterableIterator<Uint8Array>> {
    const entry = await this.liveEntry(doc);
    const queue: UpdateQueue = new UpdateQueue(() => {
      entry.subscribers.delete(queue);
      signal.removeEventListener('abort', end);
      this.disposeIfIdle(entry);
    });
    const end = () => void queue.return();
    entry.subscribers.add(queue);
    signal.addEventListener('abort', end, { once: true });
    if (signal.aborted) end();
    queue.push(fullState(entry.awareness));
    return queue;
  }

  /** Followed documents on this process (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** The document's entry, opened if needed; never one disposed while the caller waited for it. */
  private async liveEntry(doc: DocRef): Promise<Entry> {
    for (;;) {
      const entry = await this.entry(doc);
      if (!entry.disposed) return entry;
    }
  }

  private entry(doc: DocRef): Promise<Entry> {
    let pending = this.entries.get(doc.id);
    if (!pending) {
      pending = this.openEntry(doc);
      this.entries.set(doc.id, pending);
      pending.catch(() => this.entries.delete(doc.id));
    }
    return pending;
  }

  private async openEntry(doc: DocRef): Promise<Entry> {
    const { pubsub, log } = this.options;
    const updates = await pubsub.subscribe('doc:awareness', doc.id);
    let members: AsyncIterableIterator<{ userId: string; change: string }>;
    try {
      members = await pubsub.subscribe('member:changed', doc.roomId);
    } catch (error) {
      await updates.return?.();
      throw error;
    }
    const { awareness, destroy } = passiveAwareness();
    const entry: Entry = {
      doc,
      awareness,
      destroyAwareness: destroy,
      owners: new Map(),
      subscribers: new Set(),
      disposed: false,
      unsubscribe: () => {
        void updates.return?.();
        void members.return?.();
      },
    };
    awareness.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }) => {
      for (const clientID of [...added, ...updated]) {
        const userId = stampedUserId(awareness.states.get(clientID));
        if (userId && !entry.owners.has(clientID)) entry.owners.set(clientID, userId);
      }
      const changed = encodeAwarenessUpdate(awareness, [...added, ...updated, ...removed]);
      for (const subscriber of entry.subscribers) {
        // A subscriber far behind gets one full state instead of the backlog.
        if (subscriber.size >= (this.options.maxQueued ?? 100)) subscriber.replaceWith(fullState(awareness));
        else subscriber.push(changed);
      }
    });
    void (async () => {
      for await (const event of { [Symbol.asyncIterator]: () => updates }) this.onEvent(entry, event);
    })().catch((err: unknown) => log.warn({ err, docId: doc.id }, 'awareness: update listener failed'));
    void (async () => {
      for await (const event of { [Symbol.asyncIterator]: () => members }) {
        if (event.change === 'left') this.removeUser(event.userId, doc.id);
      }
    })().catch((err: unknown) => log.warn({ err, docId: doc.id }, 'awareness: membership listener failed'));
    // States held by other processes reach a newcomer at once rather than at their next renewal.
    await this.publish(doc.id, { source: this.source, kind: 'query', update: '' });
    this.open.set(doc.id, entry);
    return entry;
  }

  private onEvent(entry: Entry, event: DocAwarenessEvent): void {
    if (event.source === this.source) return;
    if (event.kind === 'query') {
      if (entry.awareness.states.size > 0) {
        void this.publish(entry.doc.id, { source: this.source, kind: 'update', update: toBase64(fullState(entry.awareness)) });
      }
      return;
    }
    try {
      applyAwarenessUpdate(entry.awareness, fromBase64(event.update), 'remote');
    } catch (err) {
      this.options.log.warn({ err, docId: entry.doc.id }, 'awareness: ignoring a malformed update from another process');
    }
    this.disposeIfIdle(entry);
  }

  private async publish(docId: string, event: DocAwarenessEvent): Promise<void> {
    try {
      await this.options.pubsub.publish('doc:awareness', docId, event);
    } catch (err) {
      // Other processes catch up with the next renewal (every 15 s).
      this.options.log.warn({ err, docId }, 'publishing doc:awareness failed');
    }
  }

  /** Removes the states of `userId`'s clients, in one document or (docId null) in all. */
  private removeUser(userId: string, docId: string | null): void {
    for (const [id, entry] of [...this.open]) {
      if (docId !== null && id !== docId) continue;
      const clients = [...entry.awareness.states.keys()].filter((clientID) => entry.owners.get(clientID) === userId);
      if (clients.length > 0) removeAwarenessStates(entry.awareness, clients, 'gone');
      this.disposeIfIdle(entry);
    }
  }

  private expire(): void {
    const now = Date.now();
    for (const entry of [...this.open.values()]) {
      const stale: number[] = [];
      for (const [clientID, meta] of entry.awareness.meta) {
        if (entry.awareness.states.has(clientID) && now - meta.lastUpdated >= this.options.timeoutMs) stale.push(clientID);
      }
      if (stale.length > 0) removeAwarenessStates(entry.awareness, stale, 'timeout');
      this.disposeIfIdle(entry);
    }
  }

  private disposeIfIdle(entry: Entry): void {
    if (entry.subscribers.size === 0 && entry.awareness.states.size === 0) this.dispose(entry);
  }

  private dispose(entry: Entry): void {
    if (entry.disposed) return;
    entry.disposed = true;
    if (this.open.get(entry.doc.id) === entry) {
      this.open.delete(entry.doc.id);
      this.entries.delete(entry.doc.id);
    }
    for (const subscriber of entry.subscribers) void subscriber.return();
    entry.unsubscribe();
    entry.destroyAwareness();
  }
}

/** Every current state as one awareness update (of no one when the document is empty). */
function fullState(awareness: Awareness): Uint8Array {
  return encodeAwarenessUpdate(awareness, [...awareness.getStates().keys()]);
}

/**
 * A subscriber's pending awareness updates. graphql-ws sends the next one
 * only when the previous frame left, so a slow client lets them pile up;
 * awareness updates merge, so a backlog is replaced by one full state.
 */
class UpdateQueue implements AsyncIterableIterator<Uint8Array> {
  private values: Uint8Array[] = [];
  private readonly waiting: ((result: IteratorResult<Uint8Array>) => void)[] = [];
  private done = false;

  constructor(private readonly release: () => void) {}

  get size(): number {
    return this.values.length;
  }

  push(value: Uint8Array): void {
    if (this.done) return;
    const waiter = this.waiting.shift();
    if (waiter) waiter({ value, done: false });
    else this.values.push(value);
  }

  replaceWith(value: Uint8Array): void {
    this.values = [];
    this.push(value);
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const value = this.values.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.done) {
      this.done = true;
      this.values = [];
      for (const waiter of this.waiting.splice(0)) waiter({ value: undefined, done: true });
      this.release();
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
