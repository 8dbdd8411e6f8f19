// Grants or revokes a role on an existing user, against the configured database.
//
//   npm run grant-role -- <email> [role]            adds the role (default: publisher)
//   npm run grant-role -- <email> [role] --revoke   removes it
//
// Uses the same configuration as the server (DATABASE_URL, or the PGlite data
// folder in DATA_DIR). The embedded database belongs to one process at a time:
// stop the server first, or set METRICS_PUBLISHER_EMAILS instead.
import { parseArgs } from 'node:util';
import { loadConfig } from '../api/config.ts';
import { openDatabase } from '../api/db/index.ts';
import { createLogger } from '../api/logger.ts';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { revoke: { type: 'boolean', default: false } } });
const [email, role = 'publisher'] = positionals;
if (!email) {
  console.error('usage: npm run grant-role -- <email> [role] [--revoke]');
  process.exit(2);
}
const config = loadConfig();
const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, log: createLogger('warn', 'grant-role') });
try {
  const user = await database.prisma.user.findUnique({ where: { email: email.trim().toLowerCase() }, select: { id: true, roles: true } });
  if (!user) {
    console.error(`No user with email ${email}.`);
    process.exitCode = 1;
  } else {
    const roles = values.revoke ? user.roles.filter((r) => r !== role) : [...new Set([...user.roles, role])];
    await database.prisma.user.update({ where: { id: user.id }, data: { roles } });
    console.log(`${email}: roles ${roles.length ? roles.join(', ') : '(none)'}`);
  }
} finally {
  await database.close();
}
