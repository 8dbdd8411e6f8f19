import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** Download path of an upload; the `url` clients receive. */
export function uploadPath(id: string): string {
  return `/uploads/${id}`;
}

/** Signs and checks expiring download urls (`/uploads/<id>?expires=<unix>&sig=<hmac>`). */
export interface UrlSigner {
  /** A relative url valid until about `ttl` from now, usable without a bearer token (e.g. in `<img src>`). */
  signedUrl(id: string): string;
  /** The signed url expiring at `expiresAt` (seconds since the epoch). */
  signedUrlUntil(id: string, expiresAt: number): string;
  /** Seconds of validity left when `expires`/`sig` from a query string grant access to `id` now; null when they do not. */
  verify(id: string, expires: string | null, sig: string | null): number | null;
}

/**
 * Expiry is rounded up to this many seconds so that the same attachment
 * resolves to the same url for a while, letting browsers cache the image
 * instead of refetching it on every render.
 */
const EXPIRY_STEP_S = 300;

/**
 * HMAC-SHA256 url signing with a key derived (HKDF) from the JWT secret, so
 * a leaked signed url reveals nothing usable for forging tokens and one
 * secret still configures the whole server.
 */
export function createUrlSigner(secret: string, ttlSeconds: number, now: () => Date): UrlSigner {
  const key = Buffer.from(hkdfSync('sha256', secret, '', 'realtime-graphql-api/upload-urls/v1', 32));
  const mac = (id: string, expires: number) => createHmac('sha256', key).update(`${id}\n${expires}`).digest();
  const nowS = () => Math.floor(now().getTime() / 1000);

  function signedUrlUntil(id: string, expiresAt: number) {
    return `${uploadPath(id)}?expires=${expiresAt}&sig=${mac(id, expiresAt).toString('base64url')}`;
  }

  return {
    signedUrl(id) {
      const step = Math.min(EXPIRY_STEP_S, Math.max(1, Math.floor(ttlSeconds / 4)));
      return signedUrlUntil(id, Math.ceil((nowS() + ttlSeconds) / step) * step);
    },
    signedUrlUntil,
    verify(id, expires, sig) {
      if (!expires || !sig || !/^[1-9]\d{0,11}$/.test(expires) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return null;
      const left = Number(expires) - nowS();
      if (left <= 0) return null;
      // Compared as text: decoding would accept several spellings of one MAC.
      const expected = Buffer.from(mac(id, Number(expires)).toString('base64url'));
      return timingSafeEqual(expected, Buffer.from(sig)) ? left : null;
    },
  };
}
