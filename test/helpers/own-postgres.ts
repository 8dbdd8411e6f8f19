import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './processes.ts';

/** A PostgreSQL cluster owned by one test, which it may stop hard and start again on the same port. */
export interface OwnPostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> (trust auth). */
  readonly url: string;
  readonly running: boolean;
  /** `pg_ctl stop -m immediate`: every backend quits at once, no checkpoint, like a crash. */
  stopImmediate(): Promise<void>;
  /** `pg_ctl start` on the same port and data (crash recovery runs first); resolves once it accepts connections. */
  start(): Promise<void>;
  /** The server log, for failure messages. */
  log(): Promise<string>;
  /** Stops it (if running) and removes its folder. */
  dispose(): Promise<void>;
}

/** The newest installed `/usr/lib/postgresql/<version>/bin`, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

/**
 * Whether initdb and pg_ctl are installed here. In CI they are required (the
 * restart case must run), elsewhere the case is skipped with a warning.
 */
export function postgresServerInstalled(): boolean {
  if (postgresBinDir()) return true;
  if (process.env.CI) throw new Error('initdb/pg_ctl are required in CI but /usr/lib/postgresql/*/bin has none (apt-get install postgresql)');
  console.warn('PostgreSQL server binaries are not installed: skipping the PostgreSQL restart case.');
  return false;
}

// Clusters still running, stopped when the test process exits without its afterAll.
const running = new Set<() => void>();
process.once('exit', () => {
  for (const stop of running) stop();
});

/**
 * initdb into a temporary folder, start it on a free loopback port with trust
 * auth and fsync off, and create `database`. As root, the cluster runs as the
 * `postgres` user (PostgreSQL refuses to run as root).
 */
export async function startOwnPostgres(database = 'chat'): Promise<OwnPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no /usr/lib/postgresql/*/bin/initdb');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'rt-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  let owner: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    owner = { uid: id('-u'), gid: id('-g') };
    if (!Number.isInteger(owner.uid) || owner.uid <= 0) throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as');
    await chown(dir, owner.uid, owner.gid);
  }
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: dir };
  const run = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) =>
      execFile(join(bin, tool), args, { env, cwd: dir, ...owner, timeout: 60_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${tool} ${args.join(' ')} failed: ${String(error)}\n${stdout}\n${stderr}`)) : resolve(),
      ),
    );
  // fsync off is safe here: a stopped server (not a crashed OS) loses nothing
  // written. synchronous_commit must stay on: with it off, an immediate stop
  // loses commits the API already acknowledged, and their seqs are reused.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=60`;
  const stopSync = () => spawnSync(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], { env, ...owner });
  let up = false;

  const start = async () => {
    await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
    up = true;
    running.add(stopSync);
  };
  const stopImmediate = async () => {
    if (!up) return;
    await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    up = false;
    running.delete(stopSync);
  };

  try {
    await run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    await start();
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);
    await admin.end();
  } catch (error) {
    if (up) stopSync();
    running.delete(stopSync);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    get running() {
      return up;
    },
    stopImmediate,
    start,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    async dispose() {
      await stopImmediate().catch(() => {
        stopSync();
        up = false;
        running.delete(stopSync);
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
