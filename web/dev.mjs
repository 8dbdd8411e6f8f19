// `npm run dev`: the API (development mode, port 4000 unless PORT says otherwise)
// and Vite's dev server with hot reload, which proxies /graphql (HTTP and
// WebSocket) and /uploads to it. One command, two processes; Ctrl-C stops both.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const repo = fileURLToPath(new URL('..', import.meta.url));
const apiPort = process.env.PORT ?? '4000';
process.env.API_URL ??= `http://127.0.0.1:${apiPort}`;

const api = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
  cwd: repo,
  stdio: 'inherit',
  env: { NODE_ENV: 'development', ...process.env, PORT: apiPort },
});
api.on('exit', (code) => {
  console.error(`API exited (${code}); stopping`);
  process.exit(code ?? 1);
});

const vite = await createServer({ configFile: fileURLToPath(new URL('vite.config.ts', import.meta.url)) });
await vite.listen();
vite.printUrls();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    api.kill('SIGTERM');
    await vite.close();
  });
}
