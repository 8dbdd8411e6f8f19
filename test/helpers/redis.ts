import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, spawnTracked, waitForOutput, type Child } from './processes.ts';

/** The Redis server tests use: REDIS_URL, else this machine's default. */
export const REDIS_TEST_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** A plain client for assertions (PUBSUB NUMSUB, ...): no reconnects, fails fast. */
export function redisClient(url = REDIS_TEST_URL): Redis {
  const client = new Redis(url, { retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 3000, lazyConnect: true });
  client.on('error', () => {}); // surfaced through command rejections instead
  return client;
}

/**
 * Whether Redis answers. In CI a missing server is a failure (the suite must
 * cover Redis); elsewhere the Redis cases are skipped with a warning.
 */
export async function redisAvailable(url = REDIS_TEST_URL): Promise<boolean> {
  const client = redisClient(url);
  let cause: unknown;
  client.on('error', (error) => (cause ??= error)); // the socket error, not ioredis' "Connection is closed"
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    const reason = String(cause ?? error);
    if (process.env.CI) throw new Error(`Redis is required in CI but unreachable at ${url}: ${reason}`);
    console.warn(`Redis unreachable at ${url} (${reason}): skipping the Redis cases. Set REDIS_URL or start redis-server.`);
    return false;
  } finally {
    client.disconnect();
  }
}

/** Whether a `redis-server` binary can be run here; required in CI. */
export function redisServerInstalled(): boolean {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (result.status === 0) return true;
  if (process.env.CI) throw new Error(`redis-server is required in CI but cannot be run: ${String(result.error ?? result.stderr)}`);
  console.warn('redis-server is not installed: skipping the Redis restart case.');
  return false;
}

/** A redis-server owned by one test, which it may kill and restart on the same port. */
export interface OwnRedis {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** SIGKILL: no goodbye to clients, like a crash. */
  kill(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing is answered, like a hung server or a partition. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  /** Kills it and removes its folder. */
  dispose(): Promise<void>;
}

/** Starts `redis-server` on a free port, without persistence, and waits until it accepts connections. */
export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'rt-redis-'));
  let child: Child | undefined;
  const start = async () => {
    child = spawnTracked(`redis-server:${port}`, 'redis-server', [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
    ], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    await waitForOutput(child, /Ready to accept connections/, 10_000);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child?.running ?? false;
    },
    async kill() {
      await child?.kill('SIGKILL');
    },
    pause() {
      child?.process.kill('SIGSTOP');
    },
    resume() {
      child?.process.kill('SIGCONT');
    },
    async restart() {
      await child?.kill('SIGKILL');
      await start();
    },
    async dispose() {
      await child?.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
