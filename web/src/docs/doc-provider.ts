import { fromBase64, toBase64 } from 'lib0/buffer';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as Y from 'yjs';
import { reconnectDelayMs, type BackoffOptions } from '../client/backoff.ts';
import type { ConnectionState } from '../client/connection-state.ts';
import type { DocPersistence } from './doc-persistence.ts';
import { PendingUpdates } from './pending-updates.ts';
import type { DocTransport, SendOutcome, SubscriptionError } from './transport.ts';
import { userColor } from './user-color.ts';

/** The name of the shared text in every document's Y.Doc. */
export const DOC_TEXT = 'content';

/**
 * - `connecting`: not connected yet;
 * - `syncing`: connected, catching up with the server or saving local edits;
 * - `synced`: the server has everything typed here and this client has everything it had at the last catch-up, plus what came live since;
 * - `offline`: no connection; edits are kept and sent on reconnect (`pendingUpdates`);
 * - `error`: the API refused the document or an edit (see `error`); nothing more is sent;
 * - `closed`: {@link DocProvider.destroy} was called.
 */
export type DocSyncStatus = 'connecting' | 'syncing' | 'synced' | 'offline' | 'error' | 'closed';

export interface DocSyncState {
  readonly status: DocSyncStatus;
  /** Local updates the API has not confirmed yet. */
  readonly pendingUpdates: number;
  /** The catch-up of the current subscription arrived. */
  readonly caughtUp: boolean;
  readonly error?: string;
  readonly errorCode?: string;
}

/** What this client shows others in the document (the API replaces `user` with the sender's own `{ id, name }`). */
export interface AwarenessUser {
  id: string;
  name: string;
  color: string;
  colorLight: string;
}

export interface DocProviderOptions {
  docId: string;
  transport: DocTransport;
  /** The Y.Doc to keep in sync; a new one by default (then destroyed with the provider). */
  doc?: Y.Doc;
  /** Shown to collaborators (and given its colour); no awareness state is published without it. */
  user?: { id: string; name: string };
  /** Local awareness changes (cursor moves) go out at most once per this many ms. Default 150 (the API allows 10/s). */
  awarenessThrottleMs?: number;
  /** Largest batch of merged local updates per `applyDocUpdate`, in bytes of input. Default 64 KiB (the API takes 256 KiB). */
  maxBatchBytes?: number;
  /**
   * Least time between two `applyDocUpdate` calls; keystrokes typed meanwhile
   * go out merged. Default 60 ms (the API allows 20/s).
   */
  minSendIntervalMs?: number;
  /** Retry schedule after a send that did not reach the API. Default: the client's reconnect schedule. */
  retry?: BackoffOptions;
  /**
   * Keeps the document and its unconfirmed edits across reloads (e.g.
   * {@link indexedDbPersistence}): reopened offline, it shows the last known
   * text, and edits typed offline before a reload are still sent.
   */
  persistence?: DocPersistence;
  /** How long after a change the document is saved to `persistence`. Default 500 ms. */
  saveDelayMs?: number;
}

/** See {@link createDocProvider}. */
export interface DocProvider {
  readonly docId: string;
  readonly doc: Y.Doc;
  readonly text: Y.Text;
  readonly awareness: awarenessProtocol.Awareness;
  /** The sync state as an external store (fits `useSyncExternalStore`). */
  getSnapshot(): DocSyncState;
  subscribe(listener: (state: DocSyncState) => void): () => void;
  /** Resolves the next time the state is `synced`. */
  whenSynced(): Promise<void>;
  /** Publishes `null` as this client's awareness state, stops syncing and releases what the provider created. */
  destroy(): void;
}

/** Origin of updates applied from the API, so they are not sent back. */
const REMOTE = Symbol('doc-provider-remote');

/**
 * Keeps a Y.Doc in sync with one document of the API:
 *
 * - subscribes `docUpdates` with the doc's state vector, read again on every
 *   resubscription after a reconnect, so the server's catch-up covers exactly
 *   what was missed while away;
 * - applies incoming updates with a remote origin;
 * - buffers every local update until an `applyDocUpdate` carrying it
 *   succeeded; sends them merged, one request at a time, as soon as the
 *   connection is up (so offline edits go out on reconnect, and nothing is
 *   dropped on a failed or unanswered request: resending is harmless, Yjs
 *   updates are idempotent);
 * - runs a y-protocols Awareness: local changes (cursor, selection) go out
 *   throttled, renewed every 15 s by the Awareness itself, and again after a
 *   reconnect; remote ones come from `docAwareness`; on destroy (and page
 *   hide) the local state is published as `null`.
 *
 * With `persistence`, the document and the pending buffer are also saved
 * (debounced, and on page hide), and restored when the document is opened
 * again: the saved edits go back into the buffer and are sent.
 */
export function createDocProvider(options: DocProviderOptions): DocProvider {
  const { docId, transport } = options;
  const ownsDoc = !options.doc;
  const doc = options.doc ?? new Y.Doc();
  const text = doc.getText(DOC_TEXT);
  const awareness = new awarenessProtocol.Awareness(doc);
  const pending = new PendingUpdates();
  const maxBatchBytes = options.maxBatchBytes ?? 64 * 1024;
  const throttleMs = options.awarenessThrottleMs ?? 150;
  const minSendIntervalMs = options.minSendIntervalMs ?? 60;
  const listeners = new Set<(state: DocSyncState) => void>();

  let connected = transport.connection.getSnapshot().status === 'connected';
  let everConnected = connected;
  let caughtUp = false;
  let destroyed = false;
  let error: { message: string; code?: string } | undefined;
  let failures = 0;
  // Set while a send waits: a retry after a failure, or the spacing after a success.
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  // After a refusal of a merged batch, smaller batches find the update at fault.
  let batchLimit = Infinity;
  let state: DocSyncState = computeState();

  function computeState(): DocSyncState {
    const status: DocSyncStatus = destroyed
      ? 'closed'
      : error
        ? 'error'
        : !connected
          ? everConnected
            ? 'offline'
            : 'connecting'
          : caughtUp && pending.size === 0
            ? 'synced'
            : 'syncing';
    return {
      status,
      pendingUpdates: pending.size,
      caughtUp,
      ...(error ? { error: error.message, ...(error.code ? { errorCode: error.code } : {}) } : {}),
    };
  }

  function changed() {
    const next = computeState();
    if (next.status === state.status && next.pendingUpdates === state.pendingUpdates && next.caughtUp === state.caughtUp && next.error === state.error) return;
    state = next;
    for (const listener of [...listeners]) listener(state);
  }

  function fail(e: { message: string; code?: string }) {
    if (error) return;
    error = e;
    clearTimeout(retryTimer);
    changed();
  }

  // ---- Persistence: restore first (a save before that would overwrite the saved edits), then save after changes.
  const { persistence } = options;
  const saveDelayMs = options.saveDelayMs ?? 500;
  let restored = !persistence;
  let saveTimer: ReturnType<typeof setTimeout> | undefined;

  function scheduleSave() {
    if (!persistence || destroyed || saveTimer !== undefined) return;
    saveTimer = setTimeout(saveNow, saveDelayMs);
  }

  function saveNow() {
    clearTimeout(saveTimer);
    saveTimer = undefined;
    if (!persistence || !restored) return;
    persistence.save(docId, { state: Y.encodeStateAsUpdate(doc), pending: pending.merged() }).catch(() => {
      // Storage full or unavailable: the document still syncs while the page is open.
    });
  }

  if (persistence) {
    persistence.load(docId).then(
      (saved) => {
        if (destroyed) return;
        // The edits first: the saved state holds them too, so applying it would not report them again.
        if (saved?.pending) pending.add(saved.pending);
        if (saved?.state) Y.applyUpdate(doc, saved.state, REMOTE);
        restored = true;
        changed();
        scheduleSave();
        pump();
      },
      () => {
        restored = true;
      },
    );
  }

  // ---- Document updates: local ones out, remote ones in.
  // Content the doc held before the provider attached is sent too.
  if (doc.store.clients.size > 0) pending.add(Y.encodeStateAsUpdate(doc));

  const onUpdate = (update: Uint8Array, origin: unknown) => {
    if (destroyed) return;
    scheduleSave();
    if (origin === REMOTE) return;
    pending.add(update);
    changed();
    // Coalesce the updates of one burst (a paste, an undo) into one request.
    queueMicrotask(pump);
  };
  doc.on('update', onUpdate);

  function pump() {
    if (destroyed || error || !connected || retryTimer !== undefined) return;
    const batch = pending.take(maxBatchBytes, batchLimit);
    if (!batch) return;
    transport.applyUpdate(docId, toBase64(batch.update)).then(
      (outcome) => settle(outcome, batch.count),
      () => settle({ ok: false, retry: true }, batch.count),
    );
  }

  function settle(outcome: SendOutcome, count: number) {
    if (destroyed) return;
    if (outcome.ok) {
      pending.ack();
      scheduleSave();
      failures = 0;
      batchLimit = Infinity;
      changed();
      wait(minSendIntervalMs);
      return;
    }
    pending.release();
    if (outcome.retry) {
      wait(Math.max(reconnectDelayMs(failures++, options.retry), outcome.afterMs ?? 0));
      return;
    }
    if (count > 1) {
      // One of the merged updates is at fault (or the merge is too large): halve until it is alone.
      batchLimit = Math.max(1, Math.floor(count / 2));
      pump();
      return;
    }
    fail({ message: outcome.message, ...(outcome.code ? { code: outcome.code } : {}) });
  }

  function wait(ms: number) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      pump();
    }, ms);
  }

  /**
   * Keeps a subscription running: one the API ended with a retryable error
   * (UNAVAILABLE: its database or Redis is briefly unreachable) is made again
   * on the retry schedule; any other error goes to `onFatal`.
   */
  function resilient(
    start: (onError: (e: SubscriptionError) => void, healthy: () => void) => () => void,
    onFatal: (e: SubscriptionError) => void,
    onRetry: () => void,
  ) {
    let stop = () => {};
    let attempts = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = () => {
      stop = start(
        (e) => {
          if (destroyed) return;
          if (!e.retryable) return onFatal(e);
          onRetry();
          timer = setTimeout(run, reconnectDelayMs(attempts++, options.retry));
        },
        // A result arrived: the next failure starts the schedule over.
        () => (attempts = 0),
      );
    };
    run();
    return {
      stop: () => {
        clearTimeout(timer);
        stop();
      },
    };
  }

  const updatesSubscription = resilient(
    (onError, healthy) =>
      transport.subscribeUpdates(docId, () => toBase64(Y.encodeStateVector(doc)), {
        next(message) {
          if (destroyed) return;
          healthy();
          Y.applyUpdate(doc, fromBase64(message.update), REMOTE);
          if (message.sync && !caughtUp) {
            caughtUp = true;
            changed();
          }
        },
        error: onError,
      }),
    fail,
    () => {
      // The new subscription starts with its own catch-up.
      caughtUp = false;
      changed();
    },
  );

  // ---- Awareness.
  const localClient = doc.clientID;
  if (options.user) awareness.setLocalStateField('user', { ...options.user, ...userColor(options.user.id) } satisfies AwarenessUser);
  let lastAwarenessSent = 0;
  let awarenessTimer: ReturnType<typeof setTimeout> | undefined;

  function sendAwareness() {
    clearTimeout(awarenessTimer);
    awarenessTimer = undefined;
    if (!connected || error) return;
    lastAwarenessSent = Date.now();
    const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [localClient]);
    // Best effort: a lost cursor update is replaced by the next move, the 15 s renewal or the reconnect.
    void transport.applyAwareness(docId, toBase64(update)).catch(() => {});
  }

  function scheduleAwareness() {
    if (!connected || awarenessTimer !== undefined || destroyed) return;
    const wait = lastAwarenessSent + throttleMs - Date.now();
    if (wait <= 0) sendAwareness();
    else awarenessTimer = setTimeout(sendAwareness, wait);
  }

  const onAwarenessUpdate = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    if (origin === REMOTE) return;
    if ([...added, ...updated, ...removed].includes(localClient) && awareness.getLocalState() !== null) scheduleAwareness();
  };
  awareness.on('update', onAwarenessUpdate);

  const awarenessSubscription = resilient(
    (onError, healthy) =>
      transport.subscribeAwareness(docId, {
        next(update) {
          if (destroyed) return;
          healthy();
          awarenessProtocol.applyAwarenessUpdate(awareness, withColors(fromBase64(update)), REMOTE);
        },
        error: onError,
      }),
    // Awareness is a nicety: the document keeps syncing without it.
    () => {},
    // The new subscription sends every current state again.
    () => forgetRemoteStates(),
  );

  /** Collaborators get their colour here, from their id: the API passes only `{ id, name }` as `user`. */
  function withColors(update: Uint8Array): Uint8Array {
    return awarenessProtocol.modifyAwarenessUpdate(update, (s: Record<string, unknown> | null) => {
      const user = s?.user as { id?: unknown } | undefined;
      return user && typeof user.id === 'string' ? { ...s, user: { ...user, ...userColor(user.id) } } : s;
    });
  }

  function forgetRemoteStates() {
    const remote = [...awareness.getStates().keys()].filter((id) => id !== localClient);
    awarenessProtocol.removeAwarenessStates(awareness, remote, REMOTE);
    // Without their clocks, the full states sent after a reconnect apply again.
    for (const id of remote) awareness.meta.delete(id);
  }

  // ---- Connection: send what waited when it comes back, show who is gone when it drops.
  const stopConnection = transport.connection.subscribe((c: ConnectionState) => {
    const now = c.status === 'connected';
    if (now === connected) return;
    connected = now;
    if (now) {
      everConnected = true;
      // A fresh subscription is being made: wait for its catch-up.
      caughtUp = false;
      failures = 0;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      changed();
      pump();
      // The server dropped this client's state with the old connection.
      if (awareness.getLocalState() !== null) scheduleAwareness();
    } else {
      caughtUp = false;
      clearTimeout(awarenessTimer);
      awarenessTimer = undefined;
      forgetRemoteStates();
      changed();
    }
  });

  const onPageHide = () => {
    saveNow();
    publishGone();
  };
  const win = typeof window !== 'undefined' ? window : undefined;
  win?.addEventListener('pagehide', onPageHide);

  function publishGone() {
    if (awareness.getLocalState() === null) return;
    awareness.setLocalState(null);
    sendAwareness();
  }

  const provider: DocProvider = {
    docId,
    doc,
    text,
    awareness,
    getSnapshot: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    whenSynced() {
      return new Promise((resolve, reject) => {
        if (state.status === 'synced') return resolve();
        const stop = provider.subscribe((s) => {
          if (s.status === 'synced') {
            stop();
            resolve();
          } else if (s.status === 'error' || s.status === 'closed') {
            stop();
            reject(new Error(s.error ?? 'The document provider was closed'));
          }
        });
      });
    },
    destroy() {
      if (destroyed) return;
      saveNow();
      publishGone();
      destroyed = true;
      win?.removeEventListener('pagehide', onPageHide);
      clearTimeout(retryTimer);
      clearTimeout(awarenessTimer);
      stopConnection();
      updatesSubscription.stop();
      awarenessSubscription.stop();
      doc.off('update', onUpdate);
      awareness.off('update', onAwarenessUpdate);
      awareness.destroy();
      if (ownsDoc) doc.destroy();
      changed();
      listeners.clear();
    },
  };
  return provider;
}
