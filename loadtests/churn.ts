/**
 * Scenario "churn": in every room of ROOM_SIZE, CHURN_PER_ROOM users keep
 * connecting and disconnecting (CHURN_RATE sessions per second in total,
 * each staying CHURN_HOLD_MIN..CHURN_HOLD_MAX seconds) while the others stay
 * connected and chat at RATE messages/s. Measures what a session costs to
 * set up (connect → ack covers the token check and presence registration;
 * each churner then subscribes to `messageAdded` and `presenceChanged`) and
 * whether chat delivery suffers. Stayers subscribe to `presenceChanged`
 * too, so every churner's ONLINE/OFFLINE fans out.
 *
 *   k6 run -e BASE_URL=http://localhost:4000 -e VUS=1000 -e CHURN_RATE=20 loadtests/churn.ts
 *
 * Needs k6 >= 0.57 (runs TypeScript itself). See README "Load testing".
 */
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';
import { durationEnv, durationMs, endpoints, intEnv, numberEnv, stringEnv } from './lib/config.ts';
import { PRESENCE_CHANGED } from './lib/operations.ts';
import { churnRoles, planRooms, senderIndices } from './lib/plan.ts';
import { setupUsersAndRooms, tokenOf, type SetupData } from './common/api.ts';
import { listen, sendStamped } from './common/chat.ts';
import { idle, nextSender, remainingMs, stickyUser } from './common/vu.ts';

const { httpUrl, wsUrl } = endpoints(__ENV);
const VUS = intEnv(__ENV, 'VUS', 1000, { min: 2 });
const ROOM_SIZE = intEnv(__ENV, 'ROOM_SIZE', 50, { min: 2, max: 1000 });
const CHURN_PER_ROOM = intEnv(__ENV, 'CHURN_PER_ROOM', 10, { min: 1 });
const CHURN_RATE = intEnv(__ENV, 'CHURN_RATE', 20, { min: 1 });
const CHURN_HOLD_MIN = numberEnv(__ENV, 'CHURN_HOLD_MIN', 2, { min: 0.1 });
const CHURN_HOLD_MAX = numberEnv(__ENV, 'CHURN_HOLD_MAX', 10, { min: CHURN_HOLD_MIN });
const SENDER_SHARE = numberEnv(__ENV, 'SENDER_SHARE', 0.1, { min: 0.0001, max: 1 });
const RATE = intEnv(__ENV, 'RATE', 10, { min: 1 });
const RAMP = durationEnv(__ENV, 'RAMP', '1m');
const DURATION = durationEnv(__ENV, 'DURATION', '5m');
const RUN_ID = stringEnv(__ENV, 'RUN_ID', 'default');
const SETUP_BATCH = intEnv(__ENV, 'SETUP_BATCH', 50, { min: 1, max: 500 });
const P95_MS = intEnv(__ENV, 'P95_MS', 500, { min: 1 });
const ACK_P95_MS = intEnv(__ENV, 'ACK_P95_MS', 1000, { min: 1 });
const SENDER_VUS = intEnv(__ENV, 'SENDER_VUS', Math.max(2, Math.ceil(RATE / 5)), { min: 1 });
// Sessions in flight at once: rate × (longest stay + a second to connect), with headroom.
const CHURN_VUS = Math.ceil(CHURN_RATE * (CHURN_HOLD_MAX + 1) * 1.2);
const HOLD_END_MS = durationMs(RAMP) + durationMs(DURATION);

/** presenceChanged events seen by stayers: the fan-out that churn causes. */
const presenceEvents = new Counter('churn_presence_events');
/** Churn sessions started (each connects, subscribes, stays, leaves). */
const churnSessions = new Counter('churn_sessions_started');

// The room plan only needs the env, so the stayer count is known here, before options.
const roles = churnRoles(planRooms(VUS, ROOM_SIZE), CHURN_PER_ROOM);
const stayerPool = roles.stayers.flat();

export const options: Options = {
  setupTimeout: '20m',
  scenarios: {
    stayers: {
      executor: 'ramping-vus',
      exec: 'stayer',
      startVUs: 0,
      stages: [
        { duration: RAMP, target: stayerPool.length },
        { duration: DURATION, target: stayerPool.length },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
    senders: {
      executor: 'constant-arrival-rate',
      exec: 'sender',
      rate: RATE,
      timeUnit: '1s',
      startTime: RAMP,
      duration: DURATION,
      preAllocatedVUs: SENDER_VUS,
      maxVUs: SENDER_VUS * 4,
    },
    churners: {
      executor: 'constant-arrival-rate',
      exec: 'churner',
      rate: CHURN_RATE,
      timeUnit: '1s',
      startTime: RAMP,
      duration: DURATION,
      preAllocatedVUs: CHURN_VUS,
      maxVUs: CHURN_VUS * 2,
    },
  },
  thresholds: {
    chat_delivery_latency_ms: [`p(95)<${P95_MS}`],
    gql_ws_ack_ms: [`p(95)<${ACK_P95_MS}`],
    checks: ['rate==1'],
    gql_ws_errors: ['count==0'],
    chat_messages_missed: ['count==0'],
    dropped_iterations: ['count==0'],
  },
};

/** Creates all users (stayers and churners) and their rooms through the API. */
export function setup(): SetupData {
  if (roles.churners.length === 0) throw new Error('no churners: raise ROOM_SIZE or lower CHURN_PER_ROOM');
  return setupUsersAndRooms(httpUrl, RUN_ID, VUS, ROOM_SIZE, SETUP_BATCH);
}

const roomOf = (data: SetupData, user: number) => data.roomIds[Math.floor(user / data.roomSize)] as string;

/** A user who stays for the whole run, subscribed to messages and presence. */
export function stayer(data: SetupData): void {
  const holdMs = remainingMs(HOLD_END_MS);
  if (holdMs <= 1000) {
    idle(30);
    return;
  }
  const user = stickyUser(stayerPool);
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) {
    idle(1);
    return;
  }
  listen({
    wsUrl,
    token,
    roomId: roomOf(data, user),
    holdMs,
    tags: { scenario_role: 'stayer' },
    resume: true,
    alsoSubscribe: [{ query: PRESENCE_CHANGED }],
    onOther: () => presenceEvents.add(1),
  });
}

let senders: number[] | undefined;

/** One message from a sending stayer. */
export function sender(data: SetupData): void {
  if (senders === undefined) senders = senderIndices(roles.stayers, SENDER_SHARE);
  const user = nextSender(senders, SENDER_VUS);
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) return;
  sendStamped(httpUrl, token, roomOf(data, user), user, RUN_ID);
}

/** One short session: connect, subscribe, stay a few seconds, leave. */
export function churner(data: SetupData): void {
  // The same VU always plays the same churner, so it signs in once and its reconnects flip presence.
  const user = stickyUser(roles.churners);
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) return;
  const holdMs = (CHURN_HOLD_MIN + Math.random() * (CHURN_HOLD_MAX - CHURN_HOLD_MIN)) * 1000;
  listen({
    wsUrl,
    token,
    roomId: roomOf(data, user),
    holdMs,
    tags: { scenario_role: 'churner' },
    alsoSubscribe: [{ query: PRESENCE_CHANGED }],
    // Pinging a session that lives seconds only adds noise.
    pingIntervalMs: 0,
  });
  churnSessions.add(1);
}
