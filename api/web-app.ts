import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built web app (`vite build` writes it; `npm start` builds it first). */
export const WEB_DIST_DIR = fileURLToPath(new URL('../web/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * The app's pages may run only the app's own scripts (no inline script, no
 * eval), talk only to this origin (HTTP and WebSocket), and show images only
 * from it (uploads) or from blob: previews. Styles set through the CSSOM (React
 * style props, uPlot) need no 'unsafe-inline'.
 */
export const APP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "worker-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export interface WebApp {
  /** Answers GET/HEAD for the app's files and, for page navigations, index.html; false when it is not the app's request. */
  handle(path: string, req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

/**
 * Serves `web/dist`: files with their content types (hashed `/assets/*`
 * cached for a year, everything else revalidated), and index.html for any
 * other path a browser navigates to (the app routes on the client). Requests
 * that are not page loads (API clients, fetches of unknown files) are left to
 * the API's JSON 404.
 */
export function createWebApp(dir: string = WEB_DIST_DIR): WebApp {
  const root = resolve(dir);

  async function file(path: string): Promise<{ full: string; size: number } | null> {
    const full = normalize(join(root, path));
    if (full !== root && !full.startsWith(root + sep)) return null;
    try {
      const st = await stat(full);
      return st.isFile() ? { full, size: st.size } : null;
    } catch {
      return null;
    }
  }

  function send(req: IncomingMessage, res: ServerResponse, found: { full: string; size: number }, path: string) {
    const type = CONTENT_TYPES[extname(found.full).toLowerCase()] ?? 'application/octet-stream';
    const immutable = path.startsWith('/assets/');
    res.writeHead(200, {
      'content-type': type,
      'content-length': found.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': APP_CSP,
      // The worker at /sw.js controls the whole origin.
      ...(path === '/sw.js' ? { 'service-worker-allowed': '/' } : {}),
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(found.full).pipe(res);
  }

  return {
    async handle(path, req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      let decoded: string;
      try {
        decoded = decodeURIComponent(path);
      } catch {
        return false;
      }
      if (decoded !== '/' && !decoded.endsWith('/')) {
        const found = await file(decoded);
        if (found) {
          send(req, res, found, decoded);
          return true;
        }
      }
      // A page load of a client-side route (/rooms/…, /dashboard): the app's shell.
      const wantsPage = String(req.headers.accept ?? '').includes('text/html') || decoded === '/';
      if (!wantsPage || extname(decoded) !== '') return false;
      const index = await file('/index.html');
      if (!index) return false;
      send(req, res, index, '/index.html');
      return true;
    },
  };
}
