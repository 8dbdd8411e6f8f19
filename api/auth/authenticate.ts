import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Viewer } from '../../schema/context.ts';
import type { Tokens } from './tokens.ts';

export interface Authenticated {
  viewer: Viewer;
  /** Token expiry, seconds since the epoch. */
  expiresAt: number;
}

/**
 * Resolves a bearer token to its user. Null when the token is invalid or
 * expired, or its user no longer exists.
 */
export async function authenticate(db: PrismaClient, tokens: Tokens, token: string): Promise<Authenticated | null> {
  const verified = await tokens.verify(token);
  if (!verified) return null;
  const viewer = await db.user.findUnique({
    where: { id: verified.userId },
    select: { id: true, email: true, name: true },
  });
  return viewer ? { viewer, expiresAt: verified.expiresAt } : null;
}
