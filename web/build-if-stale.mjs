// Builds web/dist with Vite when it is missing or older than its sources, so
// `npm start` (prestart) and the browser tests always serve the current app.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('.', import.meta.url));
const marker = join(web, 'dist', 'index.html');

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

const sources = ['src', 'public', 'index.html', 'vite.config.ts'].map((p) => join(web, p)).filter(existsSync);
const stale = !existsSync(marker) || sources.some((p) => newestMtime(p) > statSync(marker).mtimeMs);
if (stale || process.argv.includes('--force')) {
  const { build } = await import('vite');
  await build({ configFile: join(web, 'vite.config.ts'), logLevel: 'warn' });
  console.log('web app built into web/dist');
}
