import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { createServer } from './server.ts';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL);
const server = await createServer({ config, log });
const { url, wsUrl } = await server.start();
log.info({ url, wsUrl, database: server.database.kind, pubsub: config.REDIS_URL ? 'redis' : 'in-process' }, 'API listening');
process.stdout.write(`\nAPI ready: ${url}  (WebSocket ${wsUrl}, database ${server.database.location})\n\n`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
