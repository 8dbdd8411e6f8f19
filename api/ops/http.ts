import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken } from '../auth/tokens.ts';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Readiness } from './readiness.ts';

/** Paths answered by {@link createOpsRoutes}. */
export const OPS_PATHS = ['/healthz', '/readyz', '/metrics'] as const;

export interface OpsRoutesDeps {
  readiness: Readiness;
  metrics: ServerMetrics;
  /** When set, `/metrics` requires `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
  log: Logger;
}

/**
 * The operational endpoints: `GET /healthz` (the process is alive),
 * `GET /readyz` (it can serve: 200, or 503 naming the failed check, or
 * `draining` while stopping) and `GET /metrics` (Prometheus text format).
 */
export function createOpsRoutes({ readiness, metrics, metricsToken, log }: OpsRoutesDeps) {
  const expected = metricsToken ? digest(metricsToken) : undefined;

  return {
    matches(path: string): boolean {
      return (OPS_PATHS as readonly string[]).includes(path);
    },

    async handle(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
      try {
        if (path === '/healthz') return json(res, 200, { status: 'ok' });
        if (path === '/readyz') {
          const report = await readiness.check();
          return json(res, report.status === 'ready' ? 200 : 503, report);
        }
        if (expected) {
          const token = bearerToken(req.headers.authorization);
          if (!token || !timingSafeEqual(digest(token), expected)) {
            res.setHeader('www-authenticate', 'Bearer');
            return json(res, 401, { error: 'unauthorized' });
          }
        }
        const { contentType, body } = await metrics.scrape();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
      } catch (error) {
        log.error({ err: error, path }, 'operational endpoint failed');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      }
    },
  };
}

// Equal-length digests let timingSafeEqual compare tokens of any length.
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}
