import type { ServerResponse } from 'node:http';

/** For JSON, files and errors: nothing may load, run or frame. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * For GraphiQL (development only): yoga's page runs an inline bootstrap
 * script, loads its bundle, styles and editor workers from unpkg, and talks
 * to this server over HTTP and WebSocket.
 */
const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-inline' https://unpkg.com",
  "style-src 'self' 'unsafe-inline' https://unpkg.com",
  "font-src 'self' data: https://unpkg.com",
  "img-src 'self' data: https:",
  "connect-src 'self' ws: wss: https://unpkg.com",
  "worker-src 'self' blob:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/**
 * Headers every HTTP response carries. Set before the route answers: a route
 * that knows better (a download's own CSP) overrides them in writeHead.
 */
export function setSecurityHeaders(res: ServerResponse, page: 'api' | 'graphiql'): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', page === 'graphiql' ? GRAPHIQL_CSP : API_CSP);
}
