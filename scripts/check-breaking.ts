// Fails when the schema the code prints breaks clients of the committed
// schema/schema.graphql or of the last release tag, unless CHANGELOG.md's
// "Unreleased" section announces the change; and when a deprecation has no
// reason. Run by `npm run schema:check-breaking` (part of `npm test`).
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { printSchema } from 'graphql';
import { publicSchema } from '../schema/index.ts';
import { breakingChanges, deprecationsWithoutReason, type BreakingChange } from './schema-compat.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const printed = `${printSchema(publicSchema())}\n`;
const committed = await readFile(`${root}schema/schema.graphql`, 'utf8');
const changelog = await readFile(`${root}CHANGELOG.md`, 'utf8').catch(() => '');

function git(...args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

const baselines: { name: string; sdl: string }[] = [{ name: 'the committed schema/schema.graphql', sdl: committed }];
const tag = git('describe', '--tags', '--abbrev=0')?.trim();
if (!tag) {
  console.log('No git tag yet: comparing with the committed schema/schema.graphql only.');
} else {
  const tagged = git('show', `${tag}:schema/schema.graphql`);
  if (tagged === null) console.log(`Tag ${tag} has no schema/schema.graphql: comparing with the committed file only.`);
  else baselines.push({ name: `release ${tag}`, sdl: tagged });
}

let failed = false;
for (const { name, sdl } of baselines) {
  const breaking: BreakingChange[] = await breakingChanges(sdl, printed, changelog);
  const unannounced = breaking.filter((c) => !c.announced);
  for (const c of breaking.filter((c) => c.announced)) console.log(`announced breaking change since ${name}: ${c.message}`);
  if (unannounced.length > 0) {
    failed = true;
    console.error(`Breaking changes since ${name} that CHANGELOG.md's "## Unreleased" section does not name:`);
    for (const c of unannounced) console.error(`  - ${c.message}${c.path ? `  (name \`${c.path}\` to announce it)` : ''}`);
  } else {
    console.log(`No unannounced breaking change since ${name}.`);
  }
}

const bare = deprecationsWithoutReason(printed);
if (bare.length > 0) {
  failed = true;
  console.error('Deprecated without a reason (use @deprecated(reason: "Use … instead.")):');
  for (const coordinate of bare) console.error(`  - ${coordinate}`);
}

if (failed) {
  console.error('See CHANGELOG.md for how to announce a breaking change.');
  process.exit(1);
}
