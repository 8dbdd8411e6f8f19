/**
 * Whether a WebSocket upgrade from `origin` may proceed: clients that send no
 * Origin (servers, k6, mobile apps) may; a browser page may when it is served
 * from the API's own host, or its origin is allowed by CORS_ORIGINS. This
 * keeps other sites' pages from opening sockets with a user's credentials.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (!origin) return true;
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
