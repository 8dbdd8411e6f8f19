import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GraphQLError } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { buildSchema } from '../schema/index.ts';
import { defaultLimits, type Clock, type Context, type Services, type Viewer } from '../schema/context.ts';
import type { PubSub } from '../schema/events.ts';
import { authenticate } from './auth/authenticate.ts';
import { createPasswordHasher } from './auth/passwords.ts';
import { resolveJwtSecret } from './auth/secret.ts';
import { bearerToken, createTokens } from './auth/tokens.ts';
import { durationMs, type Config } from './config.ts';
import { openDatabase, type Database } from './db/index.ts';
import { attachGraphqlWs } from './graphql-ws.ts';
import { originAllowed } from './http/origin.ts';
import { createLogger, type Logger } from './logger.ts';
import { createLoaders } from '../schema/loaders.ts';
import { Dashboard } from './dashboard/dashboard.ts';
import { DocAwarenessHub } from './documents/awareness-hub.ts';
import { createNotifications } from './notifications/index.ts';
import { createMemoryPubSub } from './pubsub/index.ts';
import { createRedisPubSub } from './pubsub/redis.ts';
import { createLiveState } from './state/index.ts';
import { maskErrorReportingDb } from './ops/db-errors.ts';
import { createOpsRoutes } from './ops/http.ts';
import { InFlight } from './ops/in-flight.ts';
import { createServerMetrics } from './ops/metrics.ts';
import { createReadiness } from './ops/readiness.ts';
import { createUploadRoutes } from './uploads/http.ts';
import { BodyTooLargeError, readBody } from './http/body-limit.ts';
import { clientAddress } from './http/client-address.ts';
import { corsPolicy } from './http/cors.ts';
import { queryGuardPlugins, useRateLimitStatus, withErrorId } from './http/graphql-guards.ts';
import { errorId, REQUEST_ID_HEADER, requestIdOf, withRequestId } from './http/request-context.ts';
import { setSecurityHeaders } from './http/security-headers.ts';
import { createRateLimiter, rateLimitSettings } from './ratelimit/index.ts';
import { createUrlSigner } from './uploads/signed-urls.ts';
import { createLocalFileStore } from './uploads/storage.ts';
import { createWebApp } from './web-app.ts';

/** WebSocket close code sent when the server stops: clients reconnect (1012 Service Restart). */
export const DRAIN_CLOSE_CODE = 1012;
export const GRAPHQL_PATH = '/graphql';
/** Each readiness check (database, Redis) must answer within this. */
export const READINESS_TIMEOUT_MS = 1000;

export interface ServerDeps {
  config: Config;
  log?: Logger;
  clock?: Clock;
  /** Overrides the pub/sub chosen from config (tests share one between servers). */
  pubsub?: PubSub;
}

export interface ApiServer {
  /** http://host:port/graphql once started. */
  readonly url: string;
  /** ws://host:port/graphql once started. */
  readonly wsUrl: string;
  readonly services: Services;
  readonly database: Database;
  /** Subscription events executed, and results reused by other subscribers (shared fan-out). */
  /** Shared executions and reuses of subscription results, and subscriptions served by room feeds now. */
  fanoutStats(): { executions: number; reuses: number; feedSubscribers: number };
  start(port?: number): Promise<{ url: string; wsUrl: string }>;
  /**
   * Drains, then closes: /readyz turns 503 first; after SHUTDOWN_DELAY_MS the
   * listener closes and WebSocket upgrades are refused; in-flight requests
   * finish; WebSocket clients are closed with 1012; then pub/sub and the
   * database close. SHUTDOWN_GRACE_MS bounds the waiting.
   */
  stop(): Promise<void>;
}

// `req` is the Node request: yoga's server context over HTTP, graphql-ws' upgrade request over WebSocket.
type InitialContext = { request: Request; req?: IncomingMessage; wsViewer?: Viewer | null };

/**
 * Builds the whole API: database (migrated), pub/sub, GraphQL over HTTP and
 * over WebSocket on one port and path. Used by main.ts and by every test.
 */
export async function createServer(deps: ServerDeps): Promise<ApiServer> {
  const { config } = deps;
  const log = deps.log ?? createLogger(config.LOG_LEVEL);
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, log });
  const db = database.prisma;
  const secret = await resolveJwtSecret(config.JWT_SECRET, config.DATA_DIR);
  const tokens = createTokens(secret, durationMs(config.JWT_TTL) / 1000);
  const metrics = createServerMetrics();
  let pubsub: PubSub;
  try {
    pubsub = deps.pubsub ?? (config.REDIS_URL ? await createRedisPubSub(config.REDIS_URL, log, {
            channelPrefix: config.REDIS_PREFIX,
            maxQueued: config.SUBSCRIPTION_QUEUE_LIMIT,
            onError: (_error, connection) => metrics.redisError(connection),
          })
        : createMemoryPubSub({ maxQueued: config.SUBSCRIPTION_QUEUE_LIMIT }));
  } catch (error) {
    await database.close();
    throw error;
  }
  log.info({ pubsub: deps.pubsub ? 'injected' : config.REDIS_URL ? 'redis' : 'in-process' }, 'pub/sub ready');
  const urlSigner = createUrlSigner(secret, durationMs(config.UPLOAD_URL_TTL) / 1000, () => deps.clock?.now() ?? new Date());
  const clock = deps.clock ?? { now: () => new Date() };
  const live = await createLiveState(config, { db, pubsub, clock, log });
  const { presence, typing } = live;
  const rateLimiter = createRateLimiter(rateLimitSettings(config), {
    redis: live.redis,
    prefix: config.REDIS_PREFIX,
    log,
    onRefused: (action) => metrics.rateLimited(action),
  });
  const dashboard = new Dashboard({
    pubsub,
    db,
    clock,
    log,
    intervalMs: config.DASHBOARD_INTERVAL_MS,
    historyMs: durationMs(config.METRICS_HISTORY),
    publisherEmails: config.METRICS_PUBLISHER_EMAILS,
  });
  await dashboard.start();
  const notifications = await createNotifications({ config, db, pubsub, presence, clock, log });
  notifications.start();
  const docAwareness = await new DocAwarenessHub({ pubsub, log, timeoutMs: config.DOC_AWARENESS_TIMEOUT_MS }).start();
  const services: Services = {
    db,
    pubsub,
    clock,
    presence,
    typing,
    dashboard,
    notifications: notifications.service,
    metrics: metrics.schema,
    tokens,
    passwords: createPasswordHasher(),
    limits: {
      ...defaultLimits,
      docUpdateMaxBytes: config.DOC_UPDATE_MAX_BYTES,
      docAwarenessMaxBytes: config.DOC_AWARENESS_MAX_BYTES,
      docMaxBytes: config.DOC_MAX_BYTES,
      docCompactEvery: config.DOC_COMPACT_EVERY,
    },
    rateLimiter,
    docAwareness,
    log,
    files: { signedUrl: (id) => urlSigner.signedUrl(id) },
  };

  const yoga = createYoga<InitialContext, Context>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: config.NODE_ENV === 'development' ? { subscriptionsProtocol: 'WS' } : false,
    landingPage: false,
    // CORS is answered in route(), for uploads as well as GraphQL.
    cors: false,
    plugins: [...queryGuardPlugins({ introspection: config.INTROSPECTION }), useRateLimitStatus()],
    maskedErrors: { isDev: config.NODE_ENV === 'development', maskError: withErrorId(maskErrorReportingDb(() => metrics.dbError())) },
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      error: (...args) => {
        const err = args.find((a) => a instanceof Error);
        log.error({ err, requestId: errorId(err) }, args.map(String).join(' '));
      },
    },
    context: async ({ request, req, wsViewer }): Promise<Context> => {
      const clientIp = clientAddress(req, config.TRUST_PROXY);
      if (wsViewer !== undefined) return { ...services, viewer: wsViewer, clientIp, loaders: createLoaders(db, presence) };
      const token = bearerToken(request.headers.get('authorization'));
      if (token === undefined) return { ...services, viewer: null, clientIp, loaders: createLoaders(db, presence) };
      const auth = token ? await authenticate(db, tokens, token) : null;
      if (!auth) {
        throw new GraphQLError('The bearer token is invalid or expired.', {
          extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
        });
      }
      return { ...services, viewer: auth.viewer, clientIp, loaders: createLoaders(db, presence) };
    },
  });

  const uploads = createUploadRoutes({
    db,
    store: createLocalFileStore(join(resolve(config.DATA_DIR), 'uploads')),
    signer: urlSigner,
    maxBytes: config.UPLOAD_MAX_BYTES,
    authenticate: async (token) => (await authenticate(db, tokens, token))?.viewer ?? null,
    rateLimiter,
    log,
  });
  const cors = corsPolicy(config.CORS_ORIGINS, config.NODE_ENV);
  const graphiql = config.NODE_ENV === 'development';

  const webApp = createWebApp();
  const readiness = createReadiness({ db, pubsub, timeoutMs: READINESS_TIMEOUT_MS, onDbFailure: () => metrics.dbError() });
  const ops = createOpsRoutes({ readiness, metrics, metricsToken: config.METRICS_TOKEN, log });
  const inFlight = new InFlight();
  // False once stop() closes the listener: requests still arriving on kept-alive connections are refused.
  let accepting = true;

  const http = createHttpServer((req, res) => route(req, res));
  const wss = new WebSocketServer({
    server: http,
    path: GRAPHQL_PATH,
    maxPayload: 256 * 1024,
    verifyClient: (info, done) => {
      if (!accepting) return done(false, 503, 'Server is shutting down');
      // Browsers send Origin on WebSocket upgrades and apply no CORS to them.
      if (!originAllowed(info.origin, info.req.headers.host, cors.origins)) return done(false, 403, 'Origin not allowed');
      done(true);
    },
  });
  const graphqlWs = attachGraphqlWs({
    wss,
    yoga,
    log,
    shareResults: config.FANOUT_SHARING === 'on',
    eventContext: (ctx) => ({ ...ctx, loaders: createLoaders(db, presence) }),
    maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
    observer: metrics,
    trackExecution: (work) => inFlight.track(work),
    authenticate: (token) => authenticate(db, tokens, token),
    limits: { maxSubscriptionsPerConnection: config.WS_MAX_SUBSCRIPTIONS, maxConnectionsPerUser: config.WS_MAX_CONNECTIONS_PER_USER },
    onConnected: (viewer, connectionId) => {
      dashboard.figures.connectionOpened(viewer.id);
      return presence.connected({ id: viewer.id, name: viewer.name }, connectionId);
    },
    onDisconnected: (viewer, connectionId) => {
      dashboard.figures.connectionClosed(viewer.id);
      return presence.disconnected({ id: viewer.id, name: viewer.name }, connectionId);
    },
  });
  metrics.countConnectionsWith(() => wss.clients.size);
  metrics.countInFlightWith(() => inFlight.size);
  metrics.countSubscriptionsWith(() => graphqlWs.activeSubscriptions());

  function route(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const requestId = requestIdOf(req);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const rendersGraphiql = graphiql && path === GRAPHQL_PATH && req.method === 'GET' && String(req.headers.accept).includes('text/html');
    setSecurityHeaders(res, rendersGraphiql ? 'graphiql' : 'api');
    // Everything the request leads to (logs, masked errors) can name its id.
    withRequestId(requestId, () => serve(path, req, res));
  }

  function serve(path: string, req: IncomingMessage, res: ServerResponse) {
    if (ops.matches(path)) {
      void ops.handle(path, req, res);
      return;
    }
    if (!accepting) {
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close', 'retry-after': '1' }).end('{"error":"shutting down"}');
      return;
    }
    if ((path === GRAPHQL_PATH || uploads.matches(path)) && cors.handle(req, res)) return;
    if (path === GRAPHQL_PATH) {
      // A subscription over server-sent events lasts as long as its client
      // wants; stop() must not wait for it like for a mutation.
      if (!String(req.headers.accept).includes('text/event-stream')) inFlight.trackResponse(res);
      void serveGraphql(req, res);
      return;
    }
    if (uploads.matches(path)) {
      inFlight.trackResponse(res);
      void uploads.handle(req, res);
      return;
    }
    // Everything else may be the web app (web/dist): its files, or its page for a client-side route.
    void webApp.handle(path, req, res).then((served) => {
      if (!served) res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
  }

  /** Reads a POST body within GRAPHQL_MAX_BODY_BYTES before yoga sees it (413 above). */
  async function serveGraphql(req: IncomingMessage, res: ServerResponse) {
    if (req.method === 'POST') {
      try {
        // whatwg-node takes an already read body from `req.body`.
        (req as IncomingMessage & { body?: Buffer }).body = await readBody(req, config.GRAPHQL_MAX_BODY_BYTES);
      } catch (error) {
        if (!(error instanceof BodyTooLargeError)) {
          res.destroy(); // the client went away mid-body: nobody to answer
          return;
        }
        const body = JSON.stringify({ errors: [{ message: error.message, extensions: { code: 'PAYLOAD_TOO_LARGE', limit: error.limit } }] });
        // Connection: close, because the rest of the body was never read.
        res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
        return;
      }
    }
    await yoga(req, res);
  }

  let address: { url: string; wsUrl: string } | undefined;
  let stopping: Promise<void> | undefined;

  async function stop() {
    // Before anything closes, so that load balancers polling /readyz stop
    // sending work here while all of it is still served.
    readiness.drain();
    log.info({ inFlight: inFlight.size, websockets: wss.clients.size }, 'draining');
    if (config.SHUTDOWN_DELAY_MS > 0) await sleep(config.SHUTDOWN_DELAY_MS);
    const deadline = Date.now() + config.SHUTDOWN_GRACE_MS;
    accepting = false;
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    // The database must not close under a mutation still running: it may be
    // about to answer its client, who then counts on it being stored.
    if (!(await inFlight.idle(deadline))) log.warn({ inFlight: inFlight.size }, 'shutdown grace period over: cutting in-flight requests');
    for (const socket of wss.clients) socket.close(DRAIN_CLOSE_CODE, 'Server restarting, reconnect');
    // However late, give the close frames a moment to leave before cutting sockets.
    const wsDeadline = Math.max(deadline, Date.now() + 100);
    while (wss.clients.size > 0 && Date.now() < wsDeadline) await sleep(25);
    for (const socket of wss.clients) socket.terminate();
    await graphqlWs.dispose();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    // What is left is idle keep-alive connections, server-sent event streams
    // and requests cut at the deadline.
    http.closeAllConnections();
    await httpClosed;
    await dashboard.close();
    await notifications.close();
    await docAwareness.close();
    await live.close();
    await pubsub.close();
    await database.close();
    log.info('server stopped');
  }

  return {
    get url() {
      if (!address) throw new Error('Server not started');
      return address.url;
    },
    get wsUrl() {
      if (!address) throw new Error('Server not started');
      return address.wsUrl;
    },
    services,
    database,
    fanoutStats: () => graphqlWs.fanoutStats(),
    async start(port = config.PORT) {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, config.HOST, () => {
          http.off('error', reject);
          resolve();
        });
      });
      const { port: bound } = http.address() as AddressInfo;
      const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
      address = { url: `http://${host}:${bound}${GRAPHQL_PATH}`, wsUrl: `ws://${host}:${bound}${GRAPHQL_PATH}` };
      return address;
    },
    stop() {
      stopping ??= stop();
      return stopping;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
