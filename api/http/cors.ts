import type { IncomingMessage, ServerResponse } from 'node:http';

const ALLOWED_METHODS = 'GET, POST, OPTIONS';
// Bearer tokens travel in a header, never in cookies: no credentials mode is needed.
const ALLOWED_HEADERS = 'authorization, content-type, accept, x-request-id';
const EXPOSED_HEADERS = 'x-request-id, retry-after';

/** Which browser origins may call the API from another origin. */
export interface CorsPolicy {
  /** `*` for any origin, else the exact origins allowed; empty: same-origin only. */
  readonly origins: readonly string[];
  /**
   * Adds the CORS headers `req`'s origin is entitled to. Answers a preflight
   * itself (204 when allowed, 403 otherwise) and then returns true.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * The CORS policy from `CORS_ORIGINS`. Unset: in production only same-origin
 * pages may call the API (no CORS headers at all); elsewhere any origin, so a
 * development web client on another port works out of the box.
 */
export function corsPolicy(configured: readonly string[] | undefined, nodeEnv: string): CorsPolicy {
  const origins = configured ?? (nodeEnv === 'production' ? [] : ['*']);
  const any = origins.includes('*');
  const allowed = (origin: string) => any || origins.includes(origin);
  return {
    origins,
    handle(req, res) {
      const origin = req.headers.origin;
      const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
      if (!any) res.setHeader('Vary', 'Origin');
      if (origin && allowed(origin)) {
        res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
        res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
      }
      if (!preflight) return false;
      if (!origin || !allowed(origin)) {
        res.writeHead(403, { 'Content-Type': 'application/json; charset=utf-8' }).end('{"error":{"code":"FORBIDDEN","message":"This origin may not call the API."}}');
        return true;
      }
      res
        .writeHead(204, {
          'Access-Control-Allow-Methods': ALLOWED_METHODS,
          'Access-Control-Allow-Headers': ALLOWED_HEADERS,
          'Access-Control-Max-Age': '600',
          'Content-Length': '0',
        })
        .end();
      return true;
    },
  };
}
