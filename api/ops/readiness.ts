import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { PubSub } from '../../schema/events.ts';

/** Outcome of one dependency check; `in-process` means there is nothing external to check. */
export type CheckState = 'ok' | 'in-process' | 'failed' | 'timeout';

/** What `GET /readyz` answers: 200 when `status` is `ready`, else 503. */
export interface ReadinessReport {
  status: 'ready' | 'not ready' | 'draining';
  checks: { db?: CheckState; pubsub?: CheckState };
}

export interface Readiness {
  /** Checks the database and the pub/sub now; concurrent callers share one run. */
  check(): Promise<ReadinessReport>;
  /** Reports `draining` from now on, without checking anything: the server is stopping. */
  drain(): void;
  readonly draining: boolean;
}

export interface ReadinessDeps {
  db: Pick<PrismaClient, '$queryRaw'>;
  pubsub: PubSub;
  /** Per check; a dependency slower than this counts as down. */
  timeoutMs: number;
  /** A database check failed or timed out. */
  onDbFailure?(): void;
}

/**
 * Readiness of this process to take traffic: the database answers `SELECT 1`
 * and, when the pub/sub is Redis, Redis answers PING, each within
 * `timeoutMs`. Liveness (`/healthz`) is separate and checks nothing, so a
 * database outage takes processes out of the load balancer without getting
 * them restarted.
 */
export function createReadiness({ db, pubsub, timeoutMs, onDbFailure }: ReadinessDeps): Readiness {
  let draining = false;
  // Probes from several load balancers at once share one query: under a hung
  // database each probe would otherwise leave another query waiting on a pool
  // connection.
  let running: Promise<ReadinessReport> | undefined;

  const checkDb = async (): Promise<CheckState> => {
    const state = await settle(db.$queryRaw`SELECT 1`, timeoutMs);
    if (state !== 'ok') onDbFailure?.();
    return state;
  };
  const checkPubSub = async (): Promise<CheckState> => {
    if (!isPingable(pubsub)) return 'in-process';
    return settle(
      pubsub.ping().then((up) => {
        if (!up) throw new Error('PING failed');
      }),
      timeoutMs,
    );
  };

  return {
    check() {
      if (draining) return Promise.resolve({ status: 'draining', checks: {} });
      running ??= Promise.all([checkDb(), checkPubSub()])
        .then(([dbState, pubsubState]): ReadinessReport => {
          const ok = (s: CheckState) => s === 'ok' || s === 'in-process';
          return { status: ok(dbState) && ok(pubsubState) ? 'ready' : 'not ready', checks: { db: dbState, pubsub: pubsubState } };
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
    drain() {
      draining = true;
    },
    get draining() {
      return draining;
    },
  };
}

function isPingable(pubsub: PubSub): pubsub is PubSub & { ping(): Promise<boolean> } {
  return typeof (pubsub as { ping?: unknown }).ping === 'function';
}

async function settle(work: Promise<unknown>, timeoutMs: number): Promise<CheckState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckState>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([work.then((): CheckState => 'ok', (): CheckState => 'failed'), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
