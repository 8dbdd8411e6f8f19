import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
/** Where `npm run dev` finds the API (started separately with `npm start` or `npm run dev:api`). */
const api = process.env.API_URL ?? 'http://127.0.0.1:4000';

export default defineConfig({
  root,
  plugins: [react()],
  build: {
    outDir: 'dist',
    chunkSizeWarningLimit: 1024,
    emptyOutDir: true,
    // The API's CSP forbids inline scripts; Vite's module preload polyfill is one.
    modulePreload: { polyfill: false },
  },
  server: {
    // Same-origin for the browser: the Origin the API checks on WebSocket
    // upgrades then matches the Host it receives (changeOrigin stays off).
    proxy: {
      '/graphql': { target: api, ws: true },
      '/uploads': { target: api },
    },
  },
});
