// Start-up migrator for SQL migrations kept in Prisma's own layout.
//
// The Prisma CLI cannot run `migrate deploy` on machines without network access
// (it downloads a native schema engine), and the embedded PGlite default has no
// server for it to talk to anyway. This applies the same files and keeps the
// `_prisma_migrations` bookkeeping byte-for-byte compatible, so a database
// migrated here is one that `prisma migrate deploy` / `migrate status` agree with.

import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';

/** One database connection (a PGlite instance or a single pg.Client). */
export interface SqlConnection {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  /** Runs a script of several statements (simple query protocol). */
  exec(sql: string): Promise<void>;
}

/** Options for {@link applyMigrations}. */
export interface ApplyMigrationsOptions {
  /** Directory holding `<timestamp>_<name>/migration.sql`; defaults to the repo's `prisma/migrations`. */
  migrationsDir?: string;
  /** Receives one line per notable step (applied migration, lock wait, warnings). */
  log?: (msg: string) => void;
}

/** A migration directory as found on disk. */
export interface MigrationFile {
  /** Directory name, e.g. `20250101120000_init`; this is what `_prisma_migrations.migration_name` holds. */
  name: string;
  /** Contents of `migration.sql`. */
  script: string;
  /** sha256 hex of the `migration.sql` bytes, as Prisma records it. */
  checksum: string;
}

/** The key Prisma's schema engine takes with `pg_advisory_lock` while migrating PostgreSQL. */
export const PRISMA_MIGRATE_ADVISORY_LOCK = 72707369;

/** The repository's `prisma/migrations`, independent of the working directory. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

// Verbatim from Prisma's PostgreSQL connector so `prisma migrate` sees the table it expects.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | string | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | string | null;
  started_at: Date | string;
}

/** sha256 hex digest, the checksum format of `_prisma_migrations.checksum`. */
export function migrationChecksum(script: string | Uint8Array): string {
  return createHash('sha256').update(script).digest('hex');
}

/**
 * Whether `script` matches a recorded checksum the way Prisma decides it: line
 * endings are ignored (git may rewrite them on checkout), and checksums written
 * by old engines without zero-padding are still accepted.
 */
export function scriptMatchesChecksum(script: string, checksum: string): boolean {
  const variants = [script, script.replaceAll('\r\n', '\n'), script.replaceAll('\n', '\r\n')];
  return variants.some((variant) => {
    const digest = createHash('sha256').update(variant).digest();
    const rendered =
      checksum.length !== 0 && checksum.length !== 64
        ? Array.from(digest, (byte) => byte.toString(16)).join('')
        : digest.toString('hex');
    return rendered === checksum;
  });
}

/**
 * Reads the migrations directory in Prisma's layout, ordered as Prisma applies
 * them (by directory name). Throws when the directory or a `migration.sql` is
 * missing, or when `migration_lock.toml` names a provider other than PostgreSQL.
 */
export async function readMigrations(migrationsDir: string = DEFAULT_MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new Error(`No migrations directory at ${migrationsDir}. Create the first migration with \`npm run db:diff -- --name init\`.`);
    }
    throw err;
  });

  const lockFile = path.join(migrationsDir, 'migration_lock.toml');
  const lock = await readFile(lockFile, 'utf8').catch(() => null);
  if (lock !== null) {
    const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(lock)?.[1];
    if (provider !== undefined && provider !== 'postgresql') {
      throw new Error(
        `${lockFile} says the migrations were written for provider "${provider}", but this database is PostgreSQL. ` +
          'They cannot be applied here; generate a fresh history for PostgreSQL instead.',
      );
    }
  }

  const dirs = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    // Code-unit order, not locale order: that is how Prisma sorts them.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const migrations: MigrationFile[] = [];
  for (const name of dirs) {
    const file = path.join(migrationsDir, name, 'migration.sql');
    const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new Error(`Migration directory ${path.join(migrationsDir, name)} has no migration.sql. Remove the directory or add the script.`);
      }
      throw err;
    });
    migrations.push({ name, script: bytes.toString('utf8'), checksum: migrationChecksum(bytes) });
  }
  return migrations;
}

/**
 * Applies every migration in `migrationsDir` that the database has not applied
 * yet, in directory-name order, recording each in `_prisma_migrations` exactly
 * as `prisma migrate deploy` does. Safe to call on every start-up and from
 * several processes at once: the work happens under Prisma's advisory lock.
 *
 * Each migration runs in its own transaction together with its bookkeeping row,
 * so a failing script leaves no trace of itself except an audit row marked as
 * rolled back (which `prisma migrate deploy` also treats as "not applied").
 * Scripts that manage their own transactions (`BEGIN;` / `COMMIT;`, as Prisma
 * generates for some enum changes) run the way Prisma runs them instead:
 * without a wrapper, a failure leaving a "failed" row that needs resolving.
 *
 * Refuses (throws, before applying anything) when an applied migration's file
 * was edited afterwards, or when the table records a failed migration.
 */
export async function applyMigrations(conn: SqlConnection, opts: ApplyMigrationsOptions = {}): Promise<{ applied: string[] }> {
  const migrationsDir = opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  const log = opts.log ?? (() => {});
  // Read before taking the lock so a broken checkout fails without touching the database.
  const migrations = await readMigrations(migrationsDir);

  await acquireLock(conn, log);
  let failed = true;
  try {
    await conn.exec(CREATE_MIGRATIONS_TABLE);
    const { rows } = await conn.query<MigrationRow>(
      'SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at FROM "_prisma_migrations" ORDER BY started_at ASC',
    );

    refuseFailed(rows);
    refuseEdited(rows, migrations, migrationsDir);

    const onDisk = new Set(migrations.map((m) => m.name));
    const unknown = [...new Set(rows.filter((r) => r.rolled_back_at === null && !onDisk.has(r.migration_name)).map((r) => r.migration_name))];
    if (unknown.length > 0) {
      // Usually a newer release already migrated this database; not fatal, but worth seeing.
      log(`database has applied migrations that are not in ${migrationsDir}: ${unknown.join(', ')}`);
    }

    const done = new Set(rows.filter((r) => r.rolled_back_at === null).map((r) => r.migration_name));
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.name)) continue;
      await applyOne(conn, migration, log);
      applied.push(migration.name);
      log(`applied migration ${migration.name}`);
    }
    failed = false;
    return { applied };
  } finally {
    const unlock = conn.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK]);
    // After a failure the connection may be unusable; the original error is the one worth seeing.
    await (failed ? unlock.catch(() => {}) : unlock);
  }
}

async function acquireLock(conn: SqlConnection, log: (msg: string) => void): Promise<void> {
  const { rows } = await conn.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [PRISMA_MIGRATE_ADVISORY_LOCK]);
  if (rows[0]?.locked) return;
  log(`waiting for advisory lock ${PRISMA_MIGRATE_ADVISORY_LOCK}: another process is applying migrations`);
  await conn.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK]);
}

function refuseFailed(rows: MigrationRow[]): void {
  const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed.length === 0) return;
  const details = failed
    .map((r) => {
      const logs = r.logs?.trim() ? ` with the following logs:\n${r.logs.trim()}` : '';
      return `The \`${r.migration_name}\` migration started at ${formatTime(r.started_at)} failed${logs}`;
    })
    .join('\n');
  const names = failed.map((r) => `'${r.migration_name}'`).join(', ');
  throw new Error(
    `Refusing to migrate: the database records failed migrations, so its schema may be half-changed.\n${details}\n` +
      'Inspect the database and finish or undo the failed change by hand, then mark the outcome:\n' +
      `  rolled back: UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name IN (${names}) AND finished_at IS NULL AND rolled_back_at IS NULL;\n` +
      `  completed:   UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE migration_name IN (${names}) AND finished_at IS NULL AND rolled_back_at IS NULL;\n` +
      '(equivalent to `prisma migrate resolve --rolled-back|--applied <name>`).',
  );
}

function refuseEdited(rows: MigrationRow[], migrations: MigrationFile[], migrationsDir: string): void {
  const byName = new Map(migrations.map((m) => [m.name, m]));
  const edited: string[] = [];
  for (const row of rows) {
    if (row.finished_at === null || row.rolled_back_at !== null) continue;
    const file = byName.get(row.migration_name);
    if (file && !scriptMatchesChecksum(file.script, row.checksum)) {
      edited.push(`  ${row.migration_name}: applied with checksum ${row.checksum}, file now has ${file.checksum}`);
    }
  }
  if (edited.length === 0) return;
  throw new Error(
    `Refusing to migrate: migration files in ${migrationsDir} were changed after they were applied to this database:\n${edited.join('\n')}\n` +
      'Applied migrations must not be edited. Restore the original migration.sql (e.g. `git checkout -- prisma/migrations`) ' +
      'and put the change in a new migration with `npm run db:diff -- --name <change>`.',
  );
}

// `BEGIN;`-style transaction control on a line of its own. A PL/pgSQL block's
// `BEGIN` has no semicolon and its `END;` is not listed, so function bodies do not match.
const TRANSACTION_CONTROL = /^\s*(BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK)(\s+(TRANSACTION|WORK))?\s*;/im;

async function applyOne(conn: SqlConnection, migration: MigrationFile, log: (msg: string) => void): Promise<void> {
  const id = randomUUID();
  const managesOwnTransaction = TRANSACTION_CONTROL.test(migration.script);

  if (managesOwnTransaction) {
    log(`migration ${migration.name} controls its own transactions; applying it without a wrapping transaction`);
    await conn.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, started_at, migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, 0)',
      [id, migration.checksum, migration.name],
    );
    try {
      await conn.exec(migration.script);
    } catch (err) {
      // The script may have committed part of itself, so keep the row "failed" as Prisma does.
      await conn.exec('ROLLBACK').catch(() => {});
      await conn.query('UPDATE "_prisma_migrations" SET logs = $1 WHERE id = $2', [errorText(err), id]);
      throw new Error(
        `Migration ${migration.name} failed and may be partly applied (it manages its own transactions): ${errorText(err)}\n` +
          'It is recorded as failed; later start-ups refuse to migrate until it is resolved.',
        { cause: err },
      );
    }
    await conn.query('UPDATE "_prisma_migrations" SET applied_steps_count = applied_steps_count + 1, finished_at = clock_timestamp() WHERE id = $1', [id]);
    return;
  }

  const startedAt = new Date();
  await conn.exec('BEGIN');
  try {
    await conn.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, started_at, migration_name, applied_steps_count) VALUES ($1, $2, $3, $4, 0)',
      [id, migration.checksum, startedAt, migration.name],
    );
    await conn.exec(migration.script);
    await conn.query('UPDATE "_prisma_migrations" SET applied_steps_count = applied_steps_count + 1, finished_at = clock_timestamp() WHERE id = $1', [id]);
    await conn.exec('COMMIT');
  } catch (err) {
    await conn.exec('ROLLBACK').catch(() => {});
    // Audit trail only: rolled_back_at set means "not applied" to us and to Prisma,
    // so the next start-up retries once the script is fixed.
    await conn
      .query(
        'INSERT INTO "_prisma_migrations" (id, checksum, started_at, migration_name, logs, rolled_back_at, applied_steps_count) VALUES ($1, $2, $3, $4, $5, now(), 0)',
        [id, migration.checksum, startedAt, migration.name, errorText(err)],
      )
      .catch(() => {});
    throw new Error(`Migration ${migration.name} failed and was rolled back, nothing from it was applied: ${errorText(err)}`, { cause: err });
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const detail = (err as { detail?: unknown }).detail;
    return typeof detail === 'string' && detail ? `${err.message} (${detail})` : err.message;
  }
  return String(err);
}

function formatTime(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
}

/** Adapts a PGlite instance (it is a single connection already). */
export function pgliteConnection(db: PGlite): SqlConnection {
  return {
    async query<T>(sql: string, params?: unknown[]) {
      const result = await db.query<T>(sql, params);
      return { rows: result.rows };
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
  };
}

/**
 * Adapts one connected `pg.Client`. Not a `pg.Pool`: the advisory lock and the
 * per-migration transaction must stay on a single session.
 */
export function pgConnection(client: pg.Client): SqlConnection {
  return {
    async query<T>(sql: string, params?: unknown[]) {
      const result = await client.query(sql, params);
      return { rows: result.rows as T[] };
    },
    async exec(sql: string) {
      // Without parameters pg uses the simple query protocol, which accepts several statements.
      await client.query(sql);
    },
  };
}
