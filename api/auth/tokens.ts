import { errors, jwtVerify, SignJWT } from 'jose';
import type { TokenService, Viewer } from '../../schema/context.ts';

const ISSUER = 'realtime-graphql-api';

export interface VerifiedToken {
  userId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

export interface Tokens extends TokenService {
  /** Returns null for a token that is malformed, forged or expired. */
  verify(token: string): Promise<VerifiedToken | null>;
}

/** HS256 JWT access tokens (jose). */
export function createTokens(secret: string, ttlSeconds: number): Tokens {
  const key = new TextEncoder().encode(secret);
  return {
    async issue(user: Viewer) {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user.id)
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(key);
    },
    async verify(token: string) {
      try {
        const { payload } = await jwtVerify(token, key, { issuer: ISSUER, algorithms: ['HS256'] });
        if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') return null;
        return { userId: payload.sub, expiresAt: payload.exp };
      } catch (error) {
        if (error instanceof errors.JOSEError) return null;
        throw error;
      }
    },
  };
}

/** The token in an `Authorization: Bearer <token>` value; undefined when absent, null when malformed. */
export function bearerToken(header: unknown): string | null | undefined {
  if (header === undefined || header === null || header === '') return undefined;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match ? (match[1] ?? null) : null;
}
