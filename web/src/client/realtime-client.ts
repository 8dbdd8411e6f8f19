import { Client, fetchExchange, subscriptionExchange, type CombinedError, type Exchange, type OperationResult } from '@urql/core';
import { offlineExchange, type Cache, type CacheExchangeOpts } from '@urql/exchange-graphcache';
import { createClient as createWsClient, type Client as WsClient, type SubscribePayload } from 'graphql-ws';
import { pipe, subscribe } from 'wonka';
import {
  MarkReadDocument,
  MessageAddedDocument,
  RoomLastSeqDocument,
  SendMessageDocument,
  ViewerDocument,
  type ChatMessageFragment,
  type MarkReadMutation,
  type SendMessageInput,
} from '../gql/graphql.ts';
import { reconnectDelayMs, type BackoffOptions } from './backoff.ts';
import { createConnectionStore, type ConnectionStore } from './connection-state.ts';
import { isOfflineError, retryLaterMs } from './offline-error.ts';
import { createOutbox } from './outbox.ts';
import type { OfflineStorage } from './storage.ts';

export interface RealtimeClientOptions {
  /** GraphQL over HTTP, e.g. `https://chat.example.com/graphql`. */
  url: string;
  /** GraphQL over WebSocket (graphql-transport-ws), e.g. `wss://chat.example.com/graphql`. */
  wsUrl: string;
  /** The bearer token, read on every request and every (re)connect, so a refreshed token is picked up. */
  getToken(): string | null | undefined | Promise<string | null | undefined>;
  /**
   * Where the cache and the offline mutation queue live: {@link browserStorage}
   * (IndexedDB) in browsers, `createMemoryStorage()` or `createFileStorage(path)` in Node.
   */
  storage: OfflineStorage;
  /** WebSocket constructor; required on Node 20 (`import WebSocket from 'ws'`). */
  webSocketImpl?: unknown;
  /** fetch implementation; default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Reconnect schedule and jitter; the default is the product's 0, 2, 5, 10, 30 s. */
  reconnect?: BackoffOptions;
  /** How often to ping the server; a missing pong means a dead link. Default 15 000 ms (0 turns it off). */
  keepAliveMs?: number;
  /** How long to wait for a pong before dropping the connection and reconnecting. Default 5 000 ms. */
  pongTimeoutMs?: number;
  /** An HTTP request not answered in this time counts as offline (the mutation is queued). Default 15 000 ms. */
  requestTimeoutMs?: number;
}

/** A message handed to `subscribeMessages` callbacks. */
export type ChatMessage = ChatMessageFragment;

/** Returned by `sendMessage`. */
export interface PendingMessage {
  /** The idempotency key sent with the message; the server stores it once. */
  clientId: string;
  /**
   * Resolves with the stored message when the API answers, which may be after
   * a reconnect (the mutation waits in the offline queue meanwhile). Rejects on
   * an API error (e.g. FORBIDDEN), or with `ClientDisposedError` when the
   * client is disposed first (the message then stays queued in storage and is
   * sent by the next client created over it).
   */
  sent: Promise<ChatMessage>;
}

/** Reported when a resume would replay more than the server allows. */
export interface BacklogTooLarge {
  roomId: string;
  /** The seq the subscription had reached. */
  afterSeq: number | null;
  /** The room's newest seq when the server refused; the subscription resumes from here. */
  lastSeq: number;
}

export interface SubscribeMessagesOptions {
  /**
   * The last seq the caller already has (from history). Omitted: the client
   * asks the room's current `lastSeq` first, so a reconnect still resumes
   * without a gap.
   */
  afterSeq?: number;
  /**
   * More than the server's replay limit (1000) was missed. Reload history here
   * (e.g. `room.messages(last: 50)`); when the returned promise settles the
   * subscription continues after `lastSeq`, or after the seq it resolves to
   * (return the newest seq of the history just loaded, so that a message sent
   * meanwhile is neither missed nor delivered twice).
   */
  onBacklogTooLarge?(info: BacklogTooLarge): void | number | Promise<void | number>;
  /** Any other error; the subscription has ended (e.g. FORBIDDEN after leaving the room). */
  onError?(error: CombinedError): void;
}

/** A live `messageAdded` subscription. */
export interface MessageSubscription {
  /** The newest seq delivered so far (or the starting point). */
  readonly lastSeq: number | null;
  unsubscribe(): void;
}

/** The realtime client: see {@link createRealtimeClient}. */
export interface RealtimeClient {
  /** The urql client (graphcache, offline queue, HTTP + WebSocket); use it for any other operation. */
  readonly urql: Client;
  /** Connection state and queued-mutation count, as an external store. */
  readonly connection: ConnectionStore;
  /** Resolves once the stored cache and offline queue are loaded (replay starts then, if online). */
  readonly ready: Promise<void>;
  /**
   * Delivers a room's messages to `onMessage`, each once and in seq order,
   * across reconnects: every reconnect resubscribes with `afterSeq` set to the
   * last seq delivered, and the server replays what was missed.
   */
  subscribeMessages(roomId: string, onMessage: (message: ChatMessage) => void, options?: SubscribeMessagesOptions): MessageSubscription;
  /**
   * Sends a message. Offline, it is queued (in storage) and sent on reconnect,
   * in order, with the same `clientId`; the optimistic message appears in the
   * cache at once.
   */
  sendMessage(input: { roomId: string; body: string; clientId?: string; attachmentIds?: string[] }): PendingMessage;
  /** Moves the viewer's read mark to `messageId`; queued offline like `sendMessage`. */
  markRead(roomId: string, messageId: string): Promise<MarkReadMutation['markRead']>;
  /** Skips the current reconnect wait (e.g. when the app regains focus). */
  retryNow(): void;
  /** Closes the WebSocket and stops timers; queued mutations stay in storage. */
  dispose(): Promise<void>;
}

/** Rejects `sent` promises still pending when the client is disposed. */
export class ClientDisposedError extends Error {
  override readonly name = 'ClientDisposedError';
  constructor() {
    super('The client was disposed; the mutation stays queued in storage');
  }
}

/** Close codes after which retrying with the same credentials is pointless. */
const AUTH_CLOSE_CODES = new Set([4401, 4403]);

interface ResumeSpec {
  field: string;
  variable: string;
}

/**
 * Operation context `liveVariables`: read on every (re)subscription of a
 * subscription, after a reconnect too, and merged over its variables (e.g. a
 * document's current state vector for `docUpdates`).
 */
export type LiveVariables = () => Record<string, unknown>;

/**
 * Creates the web client: urql with graphcache's offline exchange over the
 * given storage, mutations over HTTP, subscriptions over one graphql-ws
 * connection that reconnects on the product schedule and resumes
 * `messageAdded` subscriptions from the last seq they saw.
 *
 * @example
 * ```ts
 * const client = createRealtimeClient({
 *   url: '/graphql', wsUrl: 'wss://chat.example.com/graphql',
 *   getToken: () => localStorage.getItem('token'), storage: browserStorage(),
 * });
 * client.connection.subscribe((s) => render(s.status, s.retryInMs, s.queued));
 * client.subscribeMessages(roomId, append, { afterSeq: history.lastSeq });
 * const { sent } = client.sendMessage({ roomId, body: 'Hello' });
 * ```
 */
export function createRealtimeClient(options: RealtimeClientOptions): RealtimeClient {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const pongTimeoutMs = options.pongTimeoutMs ?? 5_000;
  const store = createConnectionStore({ status: 'connecting', queued: 0 });
  const pendingSends = new Set<(error: Error) => void>();
  let disposed = false;

  // ---- WebSocket: one connection, reconnecting forever on the product schedule.
  let reachedServer = false;
  let wakeUp: (() => void) | undefined;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let flushQueue: (() => void) | undefined;
  const ws: WsClient = createWsClient({
    url: options.wsUrl,
    ...(options.webSocketImpl ? { webSocketImpl: options.webSocketImpl } : {}),
    lazy: false,
    retryAttempts: Infinity,
    keepAlive: keepAliveMs,
    connectionParams: async () => {
      const token = await options.getToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    // graphql-ws retries only close events by default; a refused or reset
    // socket reports an error event first and would end the client for good.
    shouldRetry: (errOrClose) => !AUTH_CLOSE_CODES.has((errOrClose as { code?: number })?.code ?? 0),
    retryWait: (retries) => {
      const delay = reconnectDelayMs(retries, options.reconnect);
      const browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false;
      store.set({ status: reachedServer && !browserOffline ? 'reconnecting' : 'offline', retryInMs: delay, retryAt: Date.now() + delay });
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done() {
          clearTimeout(timer);
          wakeUp = undefined;
          resolve();
        }
        wakeUp = done;
      });
    },
    onNonLazyError: () => store.set({ status: 'closed' }),
    on: {
      connecting: (isRetry) => {
        reachedServer = false;
        if (isRetry) store.set({ retryInMs: 0, retryAt: Date.now() });
      },
      opened: () => {
        reachedServer = true;
      },
      connected: () => {
        store.set({ status: 'connected' });
        // The server is reachable again: replay what waited offline.
        outbox.release();
        flushQueue?.();
        if (!viewerLoaded) loadViewer();
      },
      ping: (received) => {
        if (received || !(pongTimeoutMs > 0)) return;
        clearTimeout(pongTimer);
        // A stalled link (proxy, NAT, sleeping laptop) never closes by itself.
        pongTimer = setTimeout(() => ws.terminate(), pongTimeoutMs);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: (event) => {
        clearTimeout(pongTimer);
        const code = (event as { code?: number } | undefined)?.code;
        if (disposed) store.set({ status: 'closed', closeCode: code });
        else if (code !== undefined) store.set({ closeCode: code });
      },
    },
  });

  // ---- HTTP: token on every request, and a timeout so a stalled link counts as offline.
  const authedFetch: typeof fetch = async (input, init) => {
    const token = await options.getToken();
    const headers = new Headers(init?.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return fetchImpl(input, { ...init, headers, signal });
  };

  // ---- Offline queue: graphcache queues optimistic mutations; the outbox orders and records them.
  // A rate-limited mutation waits in the queue like an offline one: failing it
  // would lose a message the user already saw sent.
  const shouldQueue = (error: CombinedError | undefined) => isOfflineError(error) || retryLaterMs(error) !== undefined;
  const outbox = createOutbox({
    isOfflineError: shouldQueue,
    persist: (requests) => options.storage.writeMetadata(requests),
    onSizeChange: (queued) => store.set({ queued }),
    // HTTP can fail while the WebSocket stays up (a timeout, a gateway error);
    // no reconnect would then replay the queue, so retry on the same schedule.
    onBlocked: (error) => {
      clearTimeout(httpRetryTimer);
      if (disposed) return;
      const delay = Math.max(reconnectDelayMs(httpRetries++, options.reconnect), retryLaterMs(error) ?? 0);
      httpRetryTimer = setTimeout(() => {
        if (store.getSnapshot().status === 'connected') flushQueue?.();
      }, delay);
    },
    onAnswered: () => {
      httpRetries = 0;
    },
  });
  let httpRetries = 0;
  let httpRetryTimer: ReturnType<typeof setTimeout> | undefined;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const storage: OfflineStorage = {
    readData: () => options.storage.readData(),
    writeData: (delta) => options.storage.writeData(delta),
    readMetadata: async () => {
      const queued = await options.storage.readMetadata();
      // Shown before the replay starts (it waits for hydration and the network).
      if (queued?.length) store.set({ queued: queued.length });
      return queued;
    },
    // The outbox keeps the durable record (see outbox.ts); graphcache's own copy
    // is written empty at the start of a replay and would lose messages on a reload.
    writeMetadata: () => {},
    onOnline: (flush) => {
      flushQueue = () => {
        if (disposed) return;
        outbox.release();
        flush();
      };
      // In browsers the storage also reports the `online` event.
      options.storage.onOnline(() => flushQueue?.());
      // graphcache marks itself hydrated right after registering this callback.
      queueMicrotask(markReady);
    },
    ...(options.storage.onCacheHydrated ? { onCacheHydrated: () => options.storage.onCacheHydrated?.() } : {}),
  };

  // OfflineExchangeOpts is not exported; this is its shape.
  const cacheOptions: CacheExchangeOpts & { storage: OfflineStorage; isOfflineError(error: CombinedError | undefined, result: OperationResult): boolean } = {
    storage,
    isOfflineError: (error) => shouldQueue(error),
    keys: {
      ReadReceipt: () => null,
      RoomMessagesConnection: () => null,
      RoomMessagesConnectionEdge: () => null,
      PageInfo: () => null,
      DocUpdate: () => null,
      DocAwarenessUpdate: () => null,
    },
    optimistic: {
      sendMessage: (args, cache) => {
        const input = args.input as SendMessageInput;
        return {
          __typename: 'Message',
          id: `pending:${input.clientId}`,
          roomId: input.roomId,
          seq: 0,
          body: input.body,
          clientId: input.clientId,
          createdAt: new Date().toISOString(),
          sender: viewerRef(cache),
          attachments: [],
        };
      },
      markRead: (args, cache) => {
        const seq = cache.resolve({ __typename: 'Message', id: args.messageId as string }, 'seq');
        return {
          __typename: 'ReadReceipt',
          roomId: args.roomId as string,
          lastReadSeq: typeof seq === 'number' ? seq : 0,
          readAt: new Date().toISOString(),
          user: viewerRef(cache),
        };
      },
    },
  };

  const wsExchange = subscriptionExchange({
    forwardSubscription(request, operation) {
      const resume = operation.context.resume as ResumeSpec | undefined;
      const live = operation.context.liveVariables as LiveVariables | undefined;
      let cursor: number | null = resume ? ((request.variables as Record<string, unknown> | undefined)?.[resume.variable] as number | null) ?? null : null;
      // graphql-ws re-sends this same payload object on every reconnect, so a
      // getter lets each resubscription carry the newest cursor.
      const payload = {
        query: request.query ?? '',
        ...(request.operationName ? { operationName: request.operationName } : {}),
        get variables() {
          const variables = resume && cursor !== null ? { ...request.variables, [resume.variable]: cursor } : request.variables;
          return live ? { ...variables, ...live() } : variables;
        },
      } as SubscribePayload;
      return {
        subscribe(sink) {
          const unsubscribe = ws.subscribe(payload, {
            next(result) {
              if (resume) {
                const seq = (result.data?.[resume.field] as { seq?: unknown } | undefined)?.seq;
                if (typeof seq === 'number') {
                  if (cursor !== null && seq <= cursor) return;
                  cursor = seq;
                }
              }
              sink.next(result as never);
            },
            error: (error) => sink.error(error),
            complete: () => sink.complete(),
          });
          return { unsubscribe };
        },
      };
    },
  });

  const exchanges: Exchange[] = [offlineExchange(cacheOptions), outbox.exchange, fetchExchange, wsExchange];
  const urql = new Client({ url: options.url, fetch: authedFetch, exchanges, requestPolicy: 'cache-and-network' });

  let viewerLoaded = false;
  function loadViewer() {
    viewerLoaded = true;
    void urql
      .query(ViewerDocument, {}, { requestPolicy: 'network-only' })
      .toPromise()
      .then((r) => {
        if (r.error) viewerLoaded = false;
      });
  }
  function viewerRef(cache: Cache) {
    const me = cache.readQuery({ query: ViewerDocument })?.me;
    return me ? { __typename: 'User', id: me.id, name: me.name } : { __typename: 'User', id: 'pending:viewer', name: '' };
  }

  function subscribeMessages(roomId: string, onMessage: (message: ChatMessage) => void, opts: SubscribeMessagesOptions = {}): MessageSubscription {
    let lastSeq: number | null = opts.afterSeq ?? null;
    let stopped = false;
    let current: { unsubscribe(): void } | undefined;

    const start = () => {
      if (stopped) return;
      const source = urql.subscription(MessageAddedDocument, { roomId, afterSeq: lastSeq }, { resume: { field: 'messageAdded', variable: 'afterSeq' } });
      current = pipe(
        source,
        subscribe((result: OperationResult) => {
          const message = (result.data as { messageAdded?: ChatMessage } | undefined)?.messageAdded;
          if (message && (lastSeq === null || message.seq > lastSeq)) {
            lastSeq = message.seq;
            onMessage(message);
          }
          if (!result.error) return;
          const backlog = result.error.graphQLErrors.find((e) => e.extensions?.code === 'BACKLOG_TOO_LARGE');
          current?.unsubscribe();
          if (!backlog) {
            opts.onError?.(result.error);
            return;
          }
          const info: BacklogTooLarge = { roomId, afterSeq: lastSeq, lastSeq: Number(backlog.extensions.lastSeq) };
          void Promise.resolve()
            .then(() => opts.onBacklogTooLarge?.(info))
            .catch(() => undefined)
            .then((resumeAfter) => {
              lastSeq = typeof resumeAfter === 'number' ? resumeAfter : Math.max(lastSeq ?? 0, info.lastSeq);
              start();
            });
        }),
      );
    };

    if (lastSeq !== null) start();
    else {
      // Live-only would leave nothing to resume from until the first message
      // arrives; start from the room's current end instead.
      void urql
        .query(RoomLastSeqDocument, { id: roomId }, { requestPolicy: 'network-only' })
        .toPromise()
        .then((r) => {
          if (r.data?.room && lastSeq === null) lastSeq = r.data.room.lastSeq;
          start();
        });
    }
    return {
      get lastSeq() {
        return lastSeq;
      },
      unsubscribe() {
        stopped = true;
        current?.unsubscribe();
      },
    };
  }

  function sendMessage(input: { roomId: string; body: string; clientId?: string; attachmentIds?: string[] }): PendingMessage {
    const clientId = input.clientId ?? crypto.randomUUID();
    const variables = { input: { roomId: input.roomId, body: input.body, clientId, ...(input.attachmentIds ? { attachmentIds: input.attachmentIds } : {}) } };
    const sent = new Promise<ChatMessage>((resolve, reject) => {
      pendingSends.add(reject);
      // Waiting for hydration keeps the order: graphcache queues offline
      // mutations only once its stored queue is loaded.
      void ready
        .then(() => (disposed ? Promise.reject(new ClientDisposedError()) : urql.mutation(SendMessageDocument, variables).toPromise()))
        .then((result) => {
          if (result.error) throw result.error;
          resolve(result.data!.sendMessage);
        })
        .catch(reject)
        .finally(() => pendingSends.delete(reject));
    });
    return { clientId, sent };
  }

  async function markRead(roomId: string, messageId: string) {
    await ready;
    if (disposed) throw new ClientDisposedError();
    const result = await new Promise<OperationResult<MarkReadMutation>>((resolve, reject) => {
      pendingSends.add(reject);
      urql
        .mutation(MarkReadDocument, { roomId, messageId })
        .toPromise()
        .then(resolve, reject)
        .finally(() => pendingSends.delete(reject));
    });
    if (result.error) throw result.error;
    return result.data!.markRead;
  }

  return {
    urql,
    connection: store,
    ready,
    subscribeMessages,
    sendMessage,
    markRead,
    retryNow: () => wakeUp?.(),
    async dispose() {
      if (disposed) return;
      disposed = true;
      outbox.close();
      clearTimeout(pongTimer);
      clearTimeout(httpRetryTimer);
      wakeUp?.();
      for (const reject of [...pendingSends]) reject(new ClientDisposedError());
      // Rejects when the socket being opened fails; the client is gone either way.
      await Promise.resolve(ws.dispose()).catch(() => {});
      store.set({ status: 'closed' });
    },
  };
}
