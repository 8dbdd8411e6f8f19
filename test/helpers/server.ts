import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../api/config.ts';
import { createLogger } from '../../api/logger.ts';
import { createServer, type ApiServer, type ServerDeps } from '../../api/server.ts';
import { createScratchDatabase } from './postgres.ts';

export type Backend = 'pglite' | 'postgres';

export interface TestServer {
  server: ApiServer;
  url: string;
  wsUrl: string;
  dataDir: string;
  config: Config;
  /** The PostgreSQL scratch database, to hand to a restarted server. */
  scratch?: Scratch;
  /**
   * Stops the server and removes what it created (data folder, scratch
   * database), unless `keep` is set for a restart on the same data.
   */
  dispose(options?: { keep?: boolean }): Promise<void>;
}

type Scratch = Awaited<ReturnType<typeof createScratchDatabase>>;

/**
 * Starts the real server on port 0 with its own data folder and, for the
 * PostgreSQL backend, its own scratch database.
 */
export async function startTestServer(
  backend: Backend,
  options: { env?: Record<string, string>; dataDir?: string; deps?: Partial<ServerDeps>; keepData?: boolean; scratch?: Scratch } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'rt-api-')));
  const scratch = backend === 'postgres' ? (options.scratch ?? (await createScratchDatabase())) : undefined;
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SHUTDOWN_GRACE_MS: '1000',
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
    ...options.env,
  });
  const server = await createServer({ config, log: createLogger(config.LOG_LEVEL, 'test-api'), ...options.deps });
  const { url, wsUrl } = await server.start(0);
  return {
    server,
    url,
    wsUrl,
    dataDir,
    config,
    scratch,
    async dispose({ keep = false } = {}) {
      await server.stop();
      if (keep) return;
      await scratch?.drop();
      if (!options.keepData && !options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
