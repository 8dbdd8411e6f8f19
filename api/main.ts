import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { createServer } from './server.ts';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL);
const server = await createServer({ config, log });
const { url, wsUrl } = await server.start();
log.info({ url, wsUrl, database: server.database.kind, pubsub: config.REDIS_URL ? 'redis' : 'in-process' }, 'API listening');
process.stdout.write(`\nAPI ready: ${url}  (WebSocket ${wsUrl}, database ${server.database.location})\nWeb app: ${new URL('/', url).href}\n\n`);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    // A second signal (an impatient Ctrl-C, an orchestrator's kill) ends the drain at once.
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without finishing the drain');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    // stop() bounds its waits by the grace period; this catches a close that hangs anyway.
    setTimeout(() => {
      log.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.SHUTDOWN_DELAY_MS + config.SHUTDOWN_GRACE_MS + 10_000).unref();
    server.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
