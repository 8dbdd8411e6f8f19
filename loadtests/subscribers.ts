/**
 * Scenario "subscribers": ramps to VUS users (default 2,000), each holding a
 * `messageAdded` subscription on a shared room (ROOM_SIZE users per room),
 * holds them for DURATION, and measures connect time and errors. A trickle
 * of PROBE_RATE messages/s proves the subscriptions are live.
 *
 *   k6 run -e BASE_URL=http://localhost:4000 -e VUS=2000 loadtests/subscribers.ts
 *
 * Needs k6 >= 0.57 (runs TypeScript itself). See README "Load testing".
 */
import { check } from 'k6';
import type { Options } from 'k6/options';
import { endpoints, durationEnv, durationMs, intEnv, stringEnv } from './lib/config.ts';
import { planRooms, senderIndices } from './lib/plan.ts';
import { setupUsersAndRooms, tokenOf, type SetupData } from './common/api.ts';
import { listen, sendStamped } from './common/chat.ts';
import { idle, nextSender, remainingMs, stickyUser } from './common/vu.ts';

const { httpUrl, wsUrl } = endpoints(__ENV);
const VUS = intEnv(__ENV, 'VUS', 2000, { min: 1 });
const ROOM_SIZE = intEnv(__ENV, 'ROOM_SIZE', 100, { min: 1, max: 1000 });
const RAMP = durationEnv(__ENV, 'RAMP', '2m');
const DURATION = durationEnv(__ENV, 'DURATION', '5m');
const PROBE_RATE = intEnv(__ENV, 'PROBE_RATE', 1, { min: 0 });
const RUN_ID = stringEnv(__ENV, 'RUN_ID', 'default');
const SETUP_BATCH = intEnv(__ENV, 'SETUP_BATCH', 50, { min: 1, max: 500 });
const ACK_P95_MS = intEnv(__ENV, 'ACK_P95_MS', 1000, { min: 1 });
const HOLD_END_MS = durationMs(RAMP) + durationMs(DURATION);
const PROBE_VUS = 5;

export const options: Options = {
  setupTimeout: '20m',
  scenarios: {
    subscribers: {
      executor: 'ramping-vus',
      exec: 'subscriber',
      startVUs: 0,
      stages: [
        { duration: RAMP, target: VUS },
        { duration: DURATION, target: VUS },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
    ...(PROBE_RATE > 0
      ? {
          probe: {
            executor: 'constant-arrival-rate',
            exec: 'probe',
            rate: PROBE_RATE,
            timeUnit: '1s',
            // Only once everyone is connected, so the trickle measures a full room.
            startTime: RAMP,
            duration: DURATION,
            preAllocatedVUs: PROBE_VUS,
            maxVUs: PROBE_VUS * 4,
          },
        }
      : {}),
  },
  thresholds: {
    gql_ws_errors: ['count==0'],
    checks: ['rate==1'],
    gql_ws_ack_ms: [`p(95)<${ACK_P95_MS}`],
    chat_messages_missed: ['count==0'],
  },
};

/** Creates VUS users and their rooms through the API before any VU starts. */
export function setup(): SetupData {
  return setupUsersAndRooms(httpUrl, RUN_ID, VUS, ROOM_SIZE, SETUP_BATCH);
}

const everyone = (data: SetupData) => Array.from({ length: data.userCount }, (_, i) => i);

/** One user: sign in, connect, hold `messageAdded` until the hold phase ends. */
export function subscriber(data: SetupData): void {
  const holdMs = remainingMs(HOLD_END_MS);
  if (holdMs <= 1000) {
    // The hold phase is over: a VU restarted by a failure must not reconnect during ramp-down.
    idle(30);
    return;
  }
  const user = stickyUser(everyone(data));
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) {
    idle(1);
    return;
  }
  listen({ wsUrl, token, roomId: data.roomIds[Math.floor(user / data.roomSize)] as string, holdMs, tags: { scenario_role: 'subscriber' }, resume: true });
}

let probeSenders: number[] | undefined;

/** One probe message to a room, from its first member. */
export function probe(data: SetupData): void {
  if (probeSenders === undefined) probeSenders = senderIndices(planRooms(data.userCount, data.roomSize), 0.01);
  const senders = probeSenders;
  const user = nextSender(senders, PROBE_VUS);
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) return;
  sendStamped(httpUrl, token, data.roomIds[Math.floor(user / data.roomSize)] as string, user, RUN_ID);
}
