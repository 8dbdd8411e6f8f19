import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../../prisma/generated/client.ts';
import type { Logger } from '../logger.ts';
import { redactUrl } from '../redact-url.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { applyMigrations, pgConnection, pgliteConnection } from './migrate.ts';

export type { PrismaClient };

export interface Database {
  prisma: PrismaClient;
  kind: 'pglite' | 'postgres';
  /** Where the data lives, without credentials. */
  location: string;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent, PGlite in `dataDir`. */
  url?: string | undefined;
  dataDir: string;
  log: Logger;
}

/**
 * Opens the database and brings its schema up to date. PostgreSQL when a URL
 * is given; otherwise the embedded PGlite under the data folder, locked so a
 * second process cannot open it.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres(options.url, options.log) : openPglite(options.dataDir, options.log);
}

async function openPostgres(url: string, log: Logger): Promise<Database> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { applied } = await applyMigrations(pgConnection(client), { log: (msg) => log.info(msg) });
    if (applied.length) log.info({ applied }, 'database migrated');
  } finally {
    await client.end();
  }
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', (err) => log.error({ err }, 'idle PostgreSQL connection failed'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const location = redactUrl(url, 'postgres');
  return {
    prisma,
    kind: 'postgres',
    location,
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => {});
    },
  };
}

async function openPglite(dataDir: string, log: Logger): Promise<Database> {
  const dir = resolve(dataDir);
  const unlock = await lockDataDir(dir);
  try {
    // PostgreSQL's default 128 MB of shared buffers is sized for a dedicated
    // server; in-process, 32 MB keeps an idle API around 100 MB smaller.
    const db = await PGlite.create(join(dir, 'pglite'), { postgresqlconf: 'shared_buffers=32MB' });
    const { applied } = await applyMigrations(pgliteConnection(db), { log: (msg) => log.info(msg) });
    if (applied.length) log.info({ applied }, 'database migrated');
    const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
    return {
      prisma,
      kind: 'pglite',
      location: join(dir, 'pglite'),
      async close() {
        await prisma.$disconnect();
        await db.close();
        await unlock();
      },
    };
  } catch (error) {
    await unlock();
    throw error;
  }
}
