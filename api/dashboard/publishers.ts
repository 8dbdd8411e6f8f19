import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { Viewer } from '../../schema/context.ts';

/** The role that allows publishMetrics. */
export const PUBLISHER_ROLE = 'publisher';

/** How long a role lookup is reused; a revoked role stops working within this time. */
const CACHE_MS = 5000;
const MAX_CACHED = 10_000;

/**
 * Decides who may publish metrics: users whose `roles` contain 'publisher'
 * (granted with `npm run grant-role`) and users whose email is listed in
 * METRICS_PUBLISHER_EMAILS. Role lookups are cached briefly because a
 * publisher may call publishMetrics many times a second.
 */
export function createPublisherCheck(db: PrismaClient, configuredEmails: readonly string[]) {
  const emails = new Set(configuredEmails.map((e) => e.toLowerCase()));
  const cache = new Map<string, { allowed: boolean; until: number }>();
  return async (viewer: Viewer): Promise<boolean> => {
    if (emails.has(viewer.email.toLowerCase())) return true;
    const now = Date.now();
    const cached = cache.get(viewer.id);
    if (cached && cached.until > now) return cached.allowed;
    const user = await db.user.findUnique({ where: { id: viewer.id }, select: { roles: true } });
    const allowed = user?.roles.includes(PUBLISHER_ROLE) ?? false;
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(viewer.id, { allowed, until: now + CACHE_MS });
    return allowed;
  };
}
