import { createHash } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { applyMigrations, DEFAULT_MIGRATIONS_DIR, pgConnection, pgliteConnection, type SqlConnection } from '../api/db/migrate.ts';
import type { SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg';
import {
  createMigration,
  DEFAULT_SCHEMA_PATH,
  diffMigrationsToSchema,
  main as dbDiffMain,
  openSchemaEngine,
  prismaMigrationsList,
} from '../scripts/db-diff.ts';

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  applied_steps_count: number;
  logs: string | null;
}

const migrationNames = (await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true }))
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

// Computed independently of the migrator: the checksum Prisma would record.
const expectedChecksums = new Map(
  await Promise.all(
    migrationNames.map(async (name) => {
      const bytes = await readFile(path.join(DEFAULT_MIGRATIONS_DIR, name, 'migration.sql'));
      return [name, createHash('sha256').update(bytes).digest('hex')] as const;
    }),
  ),
);

// Every model in schema.prisma is a table the migrations must create.
const expectedTables = [...(await readFile(DEFAULT_SCHEMA_PATH, 'utf8')).matchAll(/^model\s+(\w+)\s*\{([\s\S]*?)^\}/gm)]
  .map(([, model, body]) => /@@map\("([^"]+)"\)/.exec(body ?? '')?.[1] ?? model!)
  .sort();

async function publicTables(conn: SqlConnection): Promise<string[]> {
  const { rows } = await conn.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  return rows.map((r) => r.table_name);
}

async function migrationRows(conn: SqlConnection): Promise<MigrationRow[]> {
  const { rows } = await conn.query<MigrationRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM "_prisma_migrations" ORDER BY started_at, migration_name',
  );
  return rows;
}

/** The checks shared by PGlite and PostgreSQL: tables, idempotence, bookkeeping. */
async function expectFreshApplyIsCorrect(conn: SqlConnection): Promise<void> {
  expect(migrationNames.length).toBeGreaterThan(0);

  const first = await applyMigrations(conn);
  expect(first.applied).toEqual(migrationNames);
  expect(await publicTables(conn)).toEqual([...expectedTables, '_prisma_migrations'].sort());

  const second = await applyMigrations(conn);
  expect(second.applied).toEqual([]);

  const rows = await migrationRows(conn);
  expect(rows.map((r) => r.migration_name)).toEqual(migrationNames);
  for (const row of rows) {
    expect(row.checksum).toBe(expectedChecksums.get(row.migration_name));
    expect(row.finished_at).not.toBeNull();
    expect(row.rolled_back_at).toBeNull();
    expect(row.applied_steps_count).toBe(1);
  }
}

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'migrations-test-'));
  tempDirs.push(dir);
  return dir;
}
async function copyOfMigrations(): Promise<string> {
  const dir = path.join(await tempDir(), 'migrations');
  await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('applyMigrations on PGlite', () => {
  it('creates every table, is idempotent and records Prisma-compatible rows', async () => {
    const db = new PGlite();
    try {
      await expectFreshApplyIsCorrect(pgliteConnection(db));
    } finally {
      await db.close();
    }
  });
});

describe('applyMigrations refusals', () => {
  let db: PGlite;
  let conn: SqlConnection;
  let dir: string;

  beforeAll(async () => {
    db = new PGlite();
    conn = pgliteConnection(db);
    dir = await copyOfMigrations();
    await applyMigrations(conn, { migrationsDir: dir });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('refuses when an applied migration file was modified', async () => {
    const target = path.join(dir, migrationNames[0]!, 'migration.sql');
    const original = await readFile(target);
    await appendFile(target, '\n-- edited after it was applied\n');
    try {
      await expect(applyMigrations(conn, { migrationsDir: dir })).rejects.toThrow(/changed after they were applied[\s\S]*checksum/);
    } finally {
      await writeFile(target, original);
    }
    expect((await applyMigrations(conn, { migrationsDir: dir })).applied).toEqual([]);
  });

  it('accepts a file whose only change is CRLF line endings, as Prisma does', async () => {
    const target = path.join(dir, migrationNames[0]!, 'migration.sql');
    const original = await readFile(target);
    await writeFile(target, original.toString('utf8').replaceAll('\n', '\r\n'));
    try {
      expect((await applyMigrations(conn, { migrationsDir: dir })).applied).toEqual([]);
    } finally {
      await writeFile(target, original);
    }
  });

  it('rolls a failing migration back completely and retries it once fixed', async () => {
    const name = '99990101000000_broken';
    await mkdir(path.join(dir, name));
    await writeFile(path.join(dir, name, 'migration.sql'), 'CREATE TABLE "Half" ("id" INTEGER);\nALTER TABLE "NoSuchTable" ADD COLUMN "x" INTEGER;\n');

    await expect(applyMigrations(conn, { migrationsDir: dir })).rejects.toThrow(/99990101000000_broken failed and was rolled back[\s\S]*NoSuchTable/);
    expect(await publicTables(conn)).not.toContain('Half');
    const audit = (await migrationRows(conn)).filter((r) => r.migration_name === name);
    expect(audit).toHaveLength(1);
    expect(audit[0]!.rolled_back_at).not.toBeNull();
    expect(audit[0]!.logs).toMatch(/NoSuchTable/);

    await writeFile(path.join(dir, name, 'migration.sql'), 'CREATE TABLE "Half" ("id" INTEGER);\n');
    expect((await applyMigrations(conn, { migrationsDir: dir })).applied).toEqual([name]);
    expect(await publicTables(conn)).toContain('Half');
  });

  it('runs scripts with their own BEGIN/COMMIT unwrapped, recording failures as failed like Prisma', async () => {
    const ok = '99990103000000_own_transaction';
    await mkdir(path.join(dir, ok));
    await writeFile(
      path.join(dir, ok, 'migration.sql'),
      // The $$ body's BEGIN/END must not count as transaction control.
      'BEGIN;\nCREATE TABLE "Own" ("id" INTEGER);\nCREATE FUNCTION own_noop() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\nEND;\n$$;\nCOMMIT;\n',
    );
    const log: string[] = [];
    expect((await applyMigrations(conn, { migrationsDir: dir, log: (m) => log.push(m) })).applied).toEqual([ok]);
    expect(log.join('\n')).toMatch(/controls its own transactions/);

    const bad = '99990104000000_own_transaction_broken';
    await mkdir(path.join(dir, bad));
    await writeFile(path.join(dir, bad, 'migration.sql'), 'BEGIN;\nALTER TABLE "NoSuchTable" ADD COLUMN "x" INTEGER;\nCOMMIT;\n');
    try {
      await expect(applyMigrations(conn, { migrationsDir: dir })).rejects.toThrow(/may be partly applied/);
      await expect(applyMigrations(conn, { migrationsDir: dir })).rejects.toThrow(/failed migrations[\s\S]*99990104000000_own_transaction_broken[\s\S]*NoSuchTable/);
    } finally {
      await rm(path.join(dir, bad), { recursive: true });
      await conn.query('DELETE FROM "_prisma_migrations" WHERE migration_name = $1', [bad]);
    }
  });

  it('refuses while a migration is recorded as failed', async () => {
    await conn.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs) VALUES ($1, $2, $3, $4)',
      ['00000000-0000-4000-8000-000000000001', '0'.repeat(64), '99990102000000_crashed', 'connection lost'],
    );
    try {
      await expect(applyMigrations(conn, { migrationsDir: dir })).rejects.toThrow(/failed migrations[\s\S]*99990102000000_crashed[\s\S]*connection lost/);
    } finally {
      await conn.query('DELETE FROM "_prisma_migrations" WHERE migration_name = $1', ['99990102000000_crashed']);
    }
  });
});

const adminUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const shownUrl = (() => {
  const u = new URL(adminUrl);
  if (u.password) u.password = '***';
  return u.toString();
})();
const pgProblem = await (async () => {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => {});
  }
})();
if (pgProblem !== null && !process.env.CI) {
  console.warn(`Skipping the PostgreSQL migration tests: cannot reach ${shownUrl} (${pgProblem}). Start PostgreSQL or set DATABASE_URL; with CI set this is a failure.`);
}

describe.skipIf(pgProblem !== null && !process.env.CI)('applyMigrations on PostgreSQL', () => {
  const scratch = `migrate_test_${Math.random().toString(36).slice(2, 10)}`;
  const scratchUrl = (() => {
    const u = new URL(adminUrl);
    u.pathname = `/${scratch}`;
    return u.toString();
  })();
  let admin: pg.Client | undefined;
  const clients: pg.Client[] = [];

  async function connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: scratchUrl });
    await client.connect();
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    if (pgProblem !== null) throw new Error(`PostgreSQL is required in CI but ${shownUrl} is unreachable: ${pgProblem}`);
    admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${scratch}"`);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS "${scratch}" WITH (FORCE)`);
      await admin.end();
    }
  });

  it('two processes starting at once apply each migration exactly once', async () => {
    const [a, b] = [pgConnection(await connect()), pgConnection(await connect())];
    const results = await Promise.all([applyMigrations(a), applyMigrations(b)]);
    expect(results.map((r) => r.applied).sort((x, y) => y.length - x.length)).toEqual([migrationNames, []]);
    expect((await migrationRows(a)).map((r) => r.migration_name)).toEqual(migrationNames);
  });

  it('creates every table, is idempotent and records Prisma-compatible rows', async () => {
    const conn = pgConnection(await connect());
    await conn.exec('DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
    await expectFreshApplyIsCorrect(conn);
    const { rows } = await conn.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
    expect(rows[0]!.n).toBe(0);
  });
});

// `prisma migrate deploy` / `migrate status` are this same engine code behind the CLI.
describe("Prisma's schema engine agrees with the migrator's bookkeeping", () => {
  const filters = { externalTables: [], externalEnums: [] };

  it('sees a database migrated by applyMigrations as up to date, and vice versa', async () => {
    const schemaFile = { path: DEFAULT_SCHEMA_PATH, content: await readFile(DEFAULT_SCHEMA_PATH, 'utf8') };
    const migrationsList = await prismaMigrationsList();
    const ours = new PGlite();
    const prismas = new PGlite();
    const engines: SchemaEngine[] = [];
    try {
      await applyMigrations(pgliteConnection(ours));
      const onOurs = await openSchemaEngine(ours, schemaFile);
      engines.push(onOurs);
      expect(await onOurs.diagnoseMigrationHistory({ migrationsList, optInToShadowDatabase: false, filters })).toEqual({
        editedMigrationNames: [],
        failedMigrationNames: [],
        hasMigrationsTable: true,
        history: null,
      });
      expect(await onOurs.applyMigrations({ migrationsList, filters })).toEqual({ appliedMigrationNames: [] });

      const onPrismas = await openSchemaEngine(prismas, schemaFile);
      engines.push(onPrismas);
      expect(await onPrismas.applyMigrations({ migrationsList, filters })).toEqual({ appliedMigrationNames: migrationNames });
      expect(await applyMigrations(pgliteConnection(prismas))).toEqual({ applied: [] });

      const columns = 'SELECT column_name, data_type, character_maximum_length, is_nullable, column_default FROM information_schema.columns WHERE table_name = \'_prisma_migrations\' ORDER BY ordinal_position';
      expect((await ours.query(columns)).rows).toEqual((await prismas.query(columns)).rows);
    } finally {
      for (const engine of engines) engine.free();
      await Promise.all([ours.close(), prismas.close()]);
    }
  });
});

describe('db:diff / db:drift', () => {
  it('finds no drift between the committed schema.prisma and migrations', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const code = await dbDiffMain(['--check']);
      expect(error.mock.calls.flat().join('\n')).toBe('');
      expect(code).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/no drift/);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });

  it('reports drift for a schema with an added field, and a generated migration closes it', async () => {
    const work = await tempDir();
    const schemaPath = path.join(work, 'schema.prisma');
    const schema = await readFile(DEFAULT_SCHEMA_PATH, 'utf8');
    const changed = schema.replace(/^model User \{\n/m, 'model User {\n  nickname String?\n');
    expect(changed).not.toBe(schema);
    await writeFile(schemaPath, changed);

    const drift = await diffMigrationsToSchema({ schemaPath });
    expect(drift.hasChanges).toBe(true);
    expect(drift.sql).toMatch(/ALTER TABLE "User" ADD COLUMN\s+"nickname" TEXT;/);

    const migrationsDir = await copyOfMigrations();
    const created = await createMigration({ schemaPath, migrationsDir, name: 'add user nickname', now: new Date('2999-01-02T03:04:05Z') });
    expect(path.basename(created.dir!)).toBe('29990102030405_add_user_nickname');
    expect(await readFile(path.join(created.dir!, 'migration.sql'), 'utf8')).toBe(drift.sql);
    expect(await diffMigrationsToSchema({ schemaPath, migrationsDir })).toMatchObject({ hasChanges: false });
  });
});
