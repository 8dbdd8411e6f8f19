/**
 * Scenario "dashboard": VUS subscribers on `dashboard(keys)` (KEYS_PER_SUB
 * of KEYS keys, in KEY_SETS distinct sets that the server batches once and
 * shares) while a publisher pushes UPDATES_PER_SECOND updates (default 100)
 * with `publishMetrics`. Checks that batches arrive about every INTERVAL_MS
 * (the server's DASHBOARD_INTERVAL_MS, 250 by default): never much faster,
 * never stalled.
 *
 * The publisher is PUBLISHER_EMAIL; the server must list it in
 * METRICS_PUBLISHER_EMAILS (or the user must have the `publisher` role).
 *
 *   k6 run -e BASE_URL=http://localhost:4000 -e VUS=500 loadtests/dashboard.ts
 *
 * Needs k6 >= 0.57 (runs TypeScript itself). See README "Load testing".
 */
import { check, fail } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { clearTimeout, setTimeout } from 'k6/timers';
import { classifyInterval, IntervalMeter } from './lib/batches.ts';
import { durationEnv, durationMs, endpoints, intEnv, stringEnv } from './lib/config.ts';
import { batchFrom, DASHBOARD, PUBLISH_METRICS, SIGN_IN, SIGN_UP, errorCode, type AuthData } from './lib/operations.ts';
import { dashboardKeys, LOADTEST_PASSWORD, metricKey } from './lib/plan.ts';
import { ensureUsers, graphql, tokenOf } from './common/api.ts';
import { connect } from './common/ws.ts';
import { idle, remainingMs, stickyUser } from './common/vu.ts';

const { httpUrl, wsUrl } = endpoints(__ENV);
const VUS = intEnv(__ENV, 'VUS', 500, { min: 1 });
const KEYS = intEnv(__ENV, 'KEYS', 20, { min: 1 });
const KEYS_PER_SUB = intEnv(__ENV, 'KEYS_PER_SUB', 5, { min: 1, max: 50 });
const KEY_SETS = intEnv(__ENV, 'KEY_SETS', 4, { min: 1 });
const UPDATES_PER_SECOND = intEnv(__ENV, 'UPDATES_PER_SECOND', 100, { min: 1 });
const UPDATES_PER_REQUEST = intEnv(__ENV, 'UPDATES_PER_REQUEST', 1, { min: 1, max: 1000 });
const INTERVAL_MS = intEnv(__ENV, 'INTERVAL_MS', 250, { min: 1 });
const RAMP = durationEnv(__ENV, 'RAMP', '1m');
const DURATION = durationEnv(__ENV, 'DURATION', '5m');
const RUN_ID = stringEnv(__ENV, 'RUN_ID', 'default');
const SETUP_BATCH = intEnv(__ENV, 'SETUP_BATCH', 50, { min: 1, max: 500 });
const PUBLISHER_EMAIL = stringEnv(__ENV, 'PUBLISHER_EMAIL', 'loadtest-publisher@loadtest.example');
const REQUESTS_PER_SECOND = Math.max(1, Math.round(UPDATES_PER_SECOND / UPDATES_PER_REQUEST));
const PUBLISHER_VUS = Math.max(2, Math.ceil(REQUESTS_PER_SECOND / 10));
const HOLD_END_MS = durationMs(RAMP) + durationMs(DURATION);
// Publishing starts after the ramp; batches before that are sparse (built-in server.* keys are not asked for).
const MEASURE_FROM_MS = durationMs(RAMP) + 2 * INTERVAL_MS;

/** Gap between consecutive batches of one subscription, as the client received them. */
const batchInterval = new Trend('dashboard_batch_interval_ms', true);
/** Gap between consecutive batches by the server's `DashboardBatch.at`: the server's own pacing, free of network jitter. */
const serverBatchInterval = new Trend('dashboard_server_interval_ms', true);
/** Share of gaps within 0.8×..2× the interval. */
const onTime = new Rate('dashboard_batch_on_time');
/** Batches received, over all subscribers. */
const batchesReceived = new Counter('dashboard_batches_received');
/** Publish time (the update's `at`) → batch received: how stale a dashboard is. */
const updateLatency = new Trend('dashboard_update_latency_ms', true);

export const options: Options = {
  setupTimeout: '20m',
  scenarios: {
    dashboards: {
      executor: 'ramping-vus',
      exec: 'dashboard',
      startVUs: 0,
      stages: [
        { duration: RAMP, target: VUS },
        { duration: DURATION, target: VUS },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
    publisher: {
      executor: 'constant-arrival-rate',
      exec: 'publish',
      rate: REQUESTS_PER_SECOND,
      timeUnit: '1s',
      startTime: RAMP,
      duration: DURATION,
      preAllocatedVUs: PUBLISHER_VUS,
      maxVUs: PUBLISHER_VUS * 4,
    },
  },
  thresholds: {
    dashboard_batch_on_time: ['rate>0.95'],
    // "About every 250 ms": the median gap within 10 % above the interval, and never below it on the server's clock.
    dashboard_batch_interval_ms: [`med>=${INTERVAL_MS * 0.9}`, `med<=${INTERVAL_MS * 1.1}`],
    dashboard_server_interval_ms: [`min>=${INTERVAL_MS * 0.95}`],
    dashboard_update_latency_ms: [`p(95)<${INTERVAL_MS + 500}`],
    checks: ['rate==1'],
    gql_ws_errors: ['count==0'],
    dropped_iterations: ['count==0'],
  },
};

/** What setup() hands the VUs. */
interface DashboardSetup {
  runId: string;
  userCount: number;
  publisherToken: string;
}

/** Creates the subscribers' accounts and the publisher, and checks the publisher may publish. */
export function setup(): DashboardSetup {
  ensureUsers(httpUrl, RUN_ID, VUS, SETUP_BATCH);
  const input = { email: PUBLISHER_EMAIL, password: LOADTEST_PASSWORD };
  let auth = graphql<AuthData>(httpUrl, SIGN_UP, { input: { ...input, name: 'Load publisher' } }, undefined, 'setup signUp').body;
  if (errorCode(auth) === 'CONFLICT') auth = graphql<AuthData>(httpUrl, SIGN_IN, { input }, undefined, 'setup signIn').body;
  const token = auth.data?.signUp?.token ?? auth.data?.signIn?.token;
  if (token === undefined) fail(`setup: cannot sign up or in ${PUBLISHER_EMAIL}: ${JSON.stringify(auth.errors)}`);
  const probe = graphql<{ publishMetrics: number }>(httpUrl, PUBLISH_METRICS, { input: [{ key: metricKey(0), value: 0 }] }, token, 'setup publishMetrics').body;
  if (errorCode(probe) === 'FORBIDDEN') {
    fail(`setup: ${PUBLISHER_EMAIL} may not publish: start the API with METRICS_PUBLISHER_EMAILS=${PUBLISHER_EMAIL} (or grant it the publisher role)`);
  }
  if (probe.data?.publishMetrics !== 1) fail(`setup: publishMetrics failed: ${JSON.stringify(probe.errors)}`);
  return { runId: RUN_ID, userCount: VUS, publisherToken: token };
}

/** One dashboard: subscribe to a key set, time every batch until the hold phase ends. */
export function dashboard(data: DashboardSetup): void {
  const holdMs = remainingMs(HOLD_END_MS);
  if (holdMs <= 1000) {
    idle(30);
    return;
  }
  const user = stickyUser(Array.from({ length: data.userCount }, (_, i) => i));
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) {
    idle(1);
    return;
  }
  const keys = dashboardKeys(KEYS, KEYS_PER_SUB, user, KEY_SETS);
  const received = new IntervalMeter();
  const built = new IntervalMeter();
  const tags = { scenario_role: 'dashboard' };
  let holdTimer: number | undefined;
  connect(
    { url: wsUrl, token, tags },
    {
      onReady(connection) {
        connection.subscribe({ query: DASHBOARD, variables: { keys } });
        holdTimer = setTimeout(() => connection.close(), holdMs);
      },
      onClosed(code, expected) {
        // Closed early by the server: end the iteration (after a pause) so the VU reconnects.
        if (holdTimer !== undefined) clearTimeout(holdTimer);
        holdTimer = undefined;
        if (!expected || code === 1012) setTimeout(() => undefined, 1000);
      },
      onNext(_id, result) {
        const now = Date.now();
        const batch = batchFrom(result.data);
        if (!batch) return;
        batchesReceived.add(1, tags);
        check(batch, { 'batch holds only asked keys': (b) => b.updates.every((u) => keys.includes(u.key)) }, tags);
        for (const update of batch.updates) updateLatency.add(Math.max(0, now - Date.parse(update.at)), tags);
        const gap = received.record(now);
        const serverGap = built.record(Date.parse(batch.at));
        // Gaps are judged only while the publisher runs: before it, batches come only when something changes.
        if (remainingMs(MEASURE_FROM_MS) > 0 || remainingMs(HOLD_END_MS) < 0) return;
        if (gap !== undefined) {
          batchInterval.add(gap, tags);
          onTime.add(classifyInterval(gap, INTERVAL_MS) === 'on_time', tags);
        }
        if (serverGap !== undefined) serverBatchInterval.add(serverGap, tags);
      },
    },
  );
}

let published = 0;

/** One publishMetrics call with UPDATES_PER_REQUEST updates spread over the keys. */
export function publish(data: DashboardSetup): void {
  const at = new Date().toISOString();
  const input = [];
  for (let i = 0; i < UPDATES_PER_REQUEST; i++) {
    published += 1;
    input.push({ key: metricKey(published % KEYS), value: published, at });
  }
  const res = graphql<{ publishMetrics: number }>(httpUrl, PUBLISH_METRICS, { input }, data.publisherToken, 'publishMetrics');
  check(res, { 'metrics accepted': (r) => r.status === 200 && r.body.data?.publishMetrics === UPDATES_PER_REQUEST });
}
