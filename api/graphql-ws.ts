import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Context, Viewer } from '../schema/context.ts';
import type { OrderedFeed } from '../schema/lib/feed.ts';
import type { Authenticated } from './auth/authenticate.ts';
import { bearerToken } from './auth/tokens.ts';
import type { Logger } from './logger.ts';
import { FeedHubs, orderedFeedOf } from './fanout/feed-hub.ts';
import { planSharedResults, SharedResults, subscribeShared, type SharedPlan } from './fanout/shared-results.ts';
import { isDbUnavailable } from './ops/db-errors.ts';
import { subscriptionRootField, type RootField } from './ops/root-field.ts';

/** 1013 Try Again Later: graphql-ws clients retry it. */
export const TRY_AGAIN_LATER_CLOSE_CODE = 1013;
/** Close code for a client that reads too slowly. */
export const SLOW_CONSUMER_CLOSE_CODE = TRY_AGAIN_LATER_CLOSE_CODE;

/** Close code when a user already holds the most connections allowed (not retried by graphql-ws clients). */
export const TOO_MANY_CONNECTIONS_CLOSE_CODE = CloseCode.TooManyInitialisationRequests;

/** What a connection carries once authenticated in onConnect. */
export interface ConnectionExtra extends Record<PropertyKey, unknown> {
  viewer?: Viewer;
  /** Identifies the connection in presence state. */
  connectionId?: string;
  /** Closes the socket when the token expires. */
  expiryTimer?: NodeJS.Timeout;
}

/** Per-connection and per-user limits on the WebSocket. */
export interface WsLimits {
  /** Subscriptions one connection may run at once; more are refused with TOO_MANY_SUBSCRIPTIONS. */
  maxSubscriptionsPerConnection: number;
  /** Connections one user may hold on this process; more are closed with 4429. */
  maxConnectionsPerUser: number;
}

export interface GraphqlWsOptions {
  wss: WebSocketServer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  yoga: YogaServerInstance<any, any>;
  authenticate(token: string): Promise<Authenticated | null>;
  limits?: WsLimits;
  /** A connection was authenticated (presence). */
  onConnected?(viewer: Viewer, connectionId: string): Promise<void> | void;
  /** An authenticated connection closed. */
  onDisconnected?(viewer: Viewer, connectionId: string): Promise<void> | void;
  /** Sees each result sent for a subscription (metrics). */
  observer?: SubscriptionObserver;
  /** Wraps each query or mutation run over the socket, so a stopping server can wait for it. */
  trackExecution?<T>(work: Promise<T>): Promise<T>;
  /** Execute each event once for all subscribers with the same operation (default), or once per subscriber. */
  shareResults?: boolean;
  /** The context a shared event is executed with, from a subscriber's (fresh loaders). */
  eventContext?(subscriberContext: Context): Context;
  /** Unsent bytes a socket may hold for feed subscriptions before it is closed as a slow consumer (1013). */
  maxBufferedBytes?: number;
  log: Logger;
}

/** Called synchronously for graphql-ws subscriptions; must not throw. */
export interface SubscriptionObserver {
  /** A `next` frame is about to be sent; `value` is the result's data under the root field. */
  resultSent(field: string, value: unknown): void;
  /** The same `next` frame was sent to `count` subscribers. */
  resultsSent?(field: string, value: unknown, count: number): void;
}

interface RootValue {
  execute(args: ExecutionArgs): unknown;
  subscribe(args: ExecutionArgs): unknown;
  /** Set when this subscription's per-event results can be shared. */
  shared?: SharedPlan | null;
  /** Set when the shared results come from an ordered feed: one hub per key writes the frames. */
  feed?: { source: OrderedFeed<{ seq: number }>; socket: WebSocket; id: string } | null;
}

/**
 * graphql-ws (`graphql-transport-ws`) on the WebSocket server. A connection
 * authenticates once, in connection_init: no token closes it with 4401, a
 * bad or expired one with 4403. Each subscribe then runs through yoga's
 * envelop, so HTTP and WebSocket share plugins and the context factory.
 */
export function attachGraphqlWs({
  wss,
  yoga,
  authenticate,
  onConnected,
  onDisconnected,
  observer,
  trackExecution,
  shareResults = true,
  eventContext = (ctx) => ctx,
  maxBufferedBytes = 4 * 1024 * 1024,
  limits = { maxSubscriptionsPerConnection: 100, maxConnectionsPerUser: 20 },
  log,
}: GraphqlWsOptions) {
  const connectionsPerUser = new Map<string, number>();
  // The fan-out hot path: an event for a room with thousands of subscribers
  // is executed once per distinct operation, not once per subscriber.
  const sharedResults = new SharedResults();
  const feeds = new FeedHubs({
    shared: sharedResults,
    log,
    maxBufferedBytes,
    eventContext,
    resultsSent: (field, value, count) => {
      if (observer?.resultsSent) observer.resultsSent(field, value, count);
      else for (let i = 0; i < count; i++) observer?.resultSent(field, value);
    },
  });
  // Root fields of the subscriptions of each connection, for metrics.
  const running = new Map<{ subscriptions: Record<string, unknown> }, Map<string, RootField>>();
  const server = useServer<Record<string, unknown> | undefined, ConnectionExtra>(
    {
      execute: (args) => {
        const result = (args.rootValue as RootValue).execute(args);
        return (trackExecution ? trackExecution(Promise.resolve(result)) : result) as never;
      },
      subscribe: (args) => {
        const root = args.rootValue as RootValue;
        if (root.shared && root.feed) {
          const started = feeds.subscribe(args, root.shared, root.feed.source, root.feed.socket, root.feed.id);
          // graphql-ws keeps each subscription's arguments while it runs; a feed
          // subscription needs neither its context nor its root value any more
          // (the feed executes with its own), so they are released.
          return started.finally(() => Object.assign(args, { contextValue: undefined, rootValue: undefined })) as never;
        }
        return (root.shared ? subscribeShared(args, root.shared, sharedResults, log) : root.subscribe(args)) as never;
      },
      onConnect: async (ctx) => {
        const token = bearerToken(ctx.connectionParams?.authorization);
        if (token === undefined) {
          ctx.extra.socket.close(CloseCode.Unauthorized, 'Unauthorized: connectionParams.authorization is missing');
          return false;
        }
        let auth: Authenticated | null;
        try {
          auth = token ? await authenticate(token) : null;
        } catch (error) {
          // The user could not be read (database down): a retryable close, not 4500.
          if (!isDbUnavailable(error)) throw error;
          log.warn({ err: error }, 'websocket refused: database unavailable');
          ctx.extra.socket.close(TRY_AGAIN_LATER_CLOSE_CODE, 'Database unavailable, try again later');
          return false;
        }
        if (!auth) {
          log.info({ ip: remoteAddress(ctx.extra.request) }, 'websocket refused: invalid token');
          return false; // 4403 Forbidden
        }
        const { viewer } = auth;
        const held = connectionsPerUser.get(viewer.id) ?? 0;
        if (held >= limits.maxConnectionsPerUser) {
          ctx.extra.socket.close(TOO_MANY_CONNECTIONS_CLOSE_CODE, `Too many connections (at most ${limits.maxConnectionsPerUser} per user)`);
          return false;
        }
        connectionsPerUser.set(viewer.id, held + 1);
        ctx.extra.viewer = viewer;
        ctx.extra.connectionId = randomUUID();
        // A long-lived socket must not outlive its token: close with 4403 when
        // it expires; the client reconnects with a fresh one.
        const expiresInMs = Math.min(auth.expiresAt * 1000 - Date.now(), 2 ** 31 - 1);
        ctx.extra.expiryTimer = setTimeout(() => ctx.extra.socket.close(CloseCode.Forbidden, 'Token expired'), Math.max(0, expiresInMs));
        ctx.extra.expiryTimer.unref();
        await onConnected?.(viewer, ctx.extra.connectionId);
        return true;
      },
      onDisconnect: async (ctx) => {
        if (ctx.extra.viewer && ctx.extra.connectionId) await onDisconnected?.(ctx.extra.viewer, ctx.extra.connectionId);
      },
      onSubscribe: async (ctx, id, payload) => {
        // The new subscription already has its (empty) slot in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`Too many subscriptions on this connection (at most ${limits.maxSubscriptionsPerConnection}).`, {
              extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
            }),
          ];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          wsViewer: ctx.extra.viewer ?? null,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError('Could not parse the query.')];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const contextValue = await contextFactory();
        const root = subscriptionRootField(document, payload.operationName);
        if (root) running.set(ctx, (running.get(ctx) ?? new Map<string, RootField>()).set(id, root));
        const shared = shareResults ? planSharedResults(schema, document, payload.operationName, payload.variables) : null;
        const source = shared && root ? orderedFeedOf(schema.getSubscriptionType()?.getFields()[root.field]?.extensions) : undefined;
        return {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue,
          rootValue: {
            execute,
            subscribe,
            shared,
            feed: source ? { source, socket: ctx.extra.socket, id } : null,
          } satisfies RootValue,
        };
      },
      onNext: (ctx, id, _payload, _args, result) => {
        const root = running.get(ctx)?.get(id);
        // A generator completed by its client can still yield once more; that frame reaches nobody.
        if (root && id in ctx.subscriptions) observer?.resultSent(root.field, result.data?.[root.responseKey]);
      },
      onError: (ctx, _id, _payload, errors) => {
        // A client too slow to read its events: close the whole connection with
        // a retryable code; it reconnects and resumes each stream (afterSeq).
        if (errors.some((e) => e.extensions?.code === 'SLOW_CONSUMER')) {
          log.warn({ userId: ctx.extra.viewer?.id }, 'closing a slow WebSocket consumer');
          ctx.extra.socket.close(SLOW_CONSUMER_CLOSE_CODE, 'Slow consumer: reconnect and resume');
        }
      },
      onComplete: (ctx, id) => {
        running.get(ctx)?.delete(id);
      },
      onClose: (ctx) => {
        running.delete(ctx);
        clearTimeout(ctx.extra.expiryTimer);
        const viewer = ctx.extra.viewer;
        if (viewer) {
          const left = (connectionsPerUser.get(viewer.id) ?? 1) - 1;
          if (left > 0) connectionsPerUser.set(viewer.id, left);
          else connectionsPerUser.delete(viewer.id);
        }
      },
    },
    wss,
  );
  return {
    dispose: () => server.dispose(),
    /** How often subscription events were executed, and how often a result was reused. */
    fanoutStats: () => ({ executions: sharedResults.executions, reuses: sharedResults.reuses, feedSubscribers: feeds.subscribers }),
    /**
     * Subscriptions running now, by root field. Counted from graphql-ws' own
     * table, which drops a subscription as soon as its client completes it:
     * the resolver's generator may only end at its next event.
     */
    activeSubscriptions(): Map<string, number> {
      const counts = new Map<string, number>();
      for (const [ctx, roots] of running) {
        for (const [id, root] of roots) {
          if (id in ctx.subscriptions) counts.set(root.field, (counts.get(root.field) ?? 0) + 1);
        }
      }
      return counts;
    },
  };
}

function remoteAddress(request: IncomingMessage): string | undefined {
  return request.socket.remoteAddress;
}
