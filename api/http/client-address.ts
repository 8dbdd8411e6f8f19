import type { IncomingMessage } from 'node:http';

/**
 * The client's address for per-address limits. Behind `trustedProxies`
 * proxies, the entry that many places from the right of X-Forwarded-For is
 * the one the nearest trusted proxy saw; entries further left are the
 * client's own claims and are never used.
 */
export function clientAddress(req: IncomingMessage | undefined, trustedProxies: number): string | null {
  if (!req) return null;
  const direct = req.socket?.remoteAddress ?? null;
  if (trustedProxies === 0) return normalize(direct);
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  return normalize(hops[hops.length - trustedProxies] ?? hops[0] ?? direct);
}

/** IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d; count them as a.b.c.d. */
function normalize(address: string | null): string | null {
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}
