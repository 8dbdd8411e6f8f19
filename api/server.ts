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
import { createLogger, type Logger } from './logger.ts';
import { createLoaders } from '../schema/loaders.ts';
import { Dashboard } from './dashboard/dashboard.ts';
import { createNotifications } from './notifications/index.ts';
import { createMemoryPubSub } from './pubsub/index.ts';
import { createRedisPubSub } from './pubsub/redis.ts';
import { createLiveState } from './state/index.ts';
import { createUploadRoutes } from './uploads/http.ts';
import { createUrlSigner } from './uploads/signed-urls.ts';
import { createLocalFileStore } from './uploads/storage.ts';

/** WebSocket close code sent when the server stops: clients reconnect (1012 Service Restart). */
export const DRAIN_CLOSE_CODE = 1012;
export const GRAPHQL_PATH = '/graphql';

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
  start(port?: number): Promise<{ url: string; wsUrl: string }>;
  /** Drains WebSocket clients (close 1012), then closes HTTP, pub/sub and the database. */
  stop(): Promise<void>;
}

type InitialContext = { request: Request; wsViewer?: Viewer | null };

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
  let pubsub: PubSub;
  try {
    pubsub = deps.pubsub ?? (config.REDIS_URL ? await createRedisPubSub(config.REDIS_URL, log, { channelPrefix: config.REDIS_PREFIX }) : createMemoryPubSub());
  } catch (error) {
    await database.close();
    throw error;
  }
  log.info({ pubsub: deps.pubsub ? 'injected' : config.REDIS_URL ? 'redis' : 'in-process' }, 'pub/sub ready');
  const urlSigner = createUrlSigner(secret, durationMs(config.UPLOAD_URL_TTL) / 1000, () => deps.clock?.now() ?? new Date());
  const clock = deps.clock ?? { now: () => new Date() };
  const live = await createLiveState(config, { db, pubsub, clock, log });
  const { presence, typing } = live;
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
  const services: Services = {
    db,
    pubsub,
    clock,
    presence,
    typing,
    dashboard,
    notifications: notifications.service,
    tokens,
    passwords: createPasswordHasher(),
    limits: defaultLimits,
    log,
    files: { signedUrl: (id) => urlSigner.signedUrl(id) },
  };

  const yoga = createYoga<InitialContext, Context>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: config.NODE_ENV === 'development' ? { subscriptionsProtocol: 'WS' } : false,
    landingPage: false,
    maskedErrors: { isDev: config.NODE_ENV === 'development' },
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      error: (...args) => log.error({ err: args.find((a) => a instanceof Error) }, args.map(String).join(' ')),
    },
    context: async ({ request, wsViewer }): Promise<Context> => {
      if (wsViewer !== undefined) return { ...services, viewer: wsViewer, loaders: createLoaders(db, presence) };
      const token = bearerToken(request.headers.get('authorization'));
      if (token === undefined) return { ...services, viewer: null, loaders: createLoaders(db, presence) };
      const auth = token ? await authenticate(db, tokens, token) : null;
      if (!auth) {
        throw new GraphQLError('The bearer token is invalid or expired.', {
          extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
        });
      }
      return { ...services, viewer: auth.viewer, loaders: createLoaders(db, presence) };
    },
  });

  const uploads = createUploadRoutes({
    db,
    store: createLocalFileStore(join(resolve(config.DATA_DIR), 'uploads')),
    signer: urlSigner,
    maxBytes: config.UPLOAD_MAX_BYTES,
    authenticate: async (token) => (await authenticate(db, tokens, token))?.viewer ?? null,
    log,
  });

  const http = createHttpServer((req, res) => route(req, res));
  const wss = new WebSocketServer({ server: http, path: GRAPHQL_PATH, maxPayload: 256 * 1024 });
  const graphqlWs = attachGraphqlWs({
    wss,
    yoga,
    log,
    authenticate: async (token) => (await authenticate(db, tokens, token))?.viewer ?? null,
    onConnected: (viewer, connectionId) => {
      dashboard.figures.connectionOpened(viewer.id);
      return presence.connected({ id: viewer.id, name: viewer.name }, connectionId);
    },
    onDisconnected: (viewer, connectionId) => {
      dashboard.figures.connectionClosed(viewer.id);
      return presence.disconnected({ id: viewer.id, name: viewer.name }, connectionId);
    },
  });

  function route(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === GRAPHQL_PATH) {
      void yoga(req, res);
      return;
    }
    if (path !== undefined && uploads.matches(path)) {
      void uploads.handle(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  }

  let address: { url: string; wsUrl: string } | undefined;
  let stopping: Promise<void> | undefined;

  async function stop() {
    const grace = config.SHUTDOWN_GRACE_MS;
    // Stop accepting connections (and upgrades) first.
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    for (const socket of wss.clients) socket.close(DRAIN_CLOSE_CODE, 'Server restarting, reconnect');
    const deadline = Date.now() + grace;
    while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    for (const socket of wss.clients) socket.terminate();
    await graphqlWs.dispose();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    http.closeIdleConnections();
    const forced = setTimeout(() => http.closeAllConnections(), grace);
    await httpClosed;
    clearTimeout(forced);
    await dashboard.close();
    await notifications.close();
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
