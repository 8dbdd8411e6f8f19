/**
 * Scenario "chat": VUS users in rooms of ROOM_SIZE, everyone subscribed to
 * their room's `messageAdded`; SENDER_SHARE of each room sends, RATE
 * messages per second in total, over HTTP. Each body carries its send time,
 * so every receiver measures end-to-end delivery.
 *
 *   k6 run -e BASE_URL=http://localhost:4000 -e VUS=1000 -e ROOM_SIZE=50 -e RATE=20 loadtests/chat.ts
 *
 * Needs k6 >= 0.57 (runs TypeScript itself). See README "Load testing".
 */
import { check } from 'k6';
import type { Options } from 'k6/options';
import { durationEnv, durationMs, endpoints, intEnv, numberEnv, stringEnv } from './lib/config.ts';
import { planRooms, senderIndices } from './lib/plan.ts';
import { setupUsersAndRooms, tokenOf, type SetupData } from './common/api.ts';
import { listen, sendStamped } from './common/chat.ts';
import { idle, nextSender, remainingMs, stickyUser } from './common/vu.ts';

const { httpUrl, wsUrl } = endpoints(__ENV);
const VUS = intEnv(__ENV, 'VUS', 1000, { min: 1 });
const ROOM_SIZE = intEnv(__ENV, 'ROOM_SIZE', 50, { min: 1, max: 1000 });
const SENDER_SHARE = numberEnv(__ENV, 'SENDER_SHARE', 0.1, { min: 0.0001, max: 1 });
const RATE = intEnv(__ENV, 'RATE', 20, { min: 1 });
const RAMP = durationEnv(__ENV, 'RAMP', '1m');
const DURATION = durationEnv(__ENV, 'DURATION', '5m');
const RUN_ID = stringEnv(__ENV, 'RUN_ID', 'default');
const SETUP_BATCH = intEnv(__ENV, 'SETUP_BATCH', 50, { min: 1, max: 500 });
const P95_MS = intEnv(__ENV, 'P95_MS', 500, { min: 1 });
// A synchronous k6 request takes one VU per in-flight message; 1 VU per 5 msg/s covers 200 ms responses.
const SENDER_VUS = intEnv(__ENV, 'SENDER_VUS', Math.max(2, Math.ceil(RATE / 5)), { min: 1 });
const HOLD_END_MS = durationMs(RAMP) + durationMs(DURATION);

export const options: Options = {
  setupTimeout: '20m',
  scenarios: {
    listeners: {
      executor: 'ramping-vus',
      exec: 'listener',
      startVUs: 0,
      stages: [
        { duration: RAMP, target: VUS },
        { duration: DURATION, target: VUS },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
    senders: {
      executor: 'constant-arrival-rate',
      exec: 'sender',
      rate: RATE,
      timeUnit: '1s',
      // Start sending once every listener is connected, stop before they leave.
      startTime: RAMP,
      duration: DURATION,
      preAllocatedVUs: SENDER_VUS,
      maxVUs: SENDER_VUS * 4,
    },
  },
  thresholds: {
    chat_delivery_latency_ms: [`p(95)<${P95_MS}`],
    checks: ['rate==1'],
    gql_ws_errors: ['count==0'],
    chat_messages_missed: ['count==0'],
    chat_messages_duplicated: ['count==0'],
    // k6 flags an arrival-rate scenario that could not keep its rate: then the rate was not tested.
    dropped_iterations: ['count==0'],
  },
};

/** Creates the users and rooms through the API. */
export function setup(): SetupData {
  return setupUsersAndRooms(httpUrl, RUN_ID, VUS, ROOM_SIZE, SETUP_BATCH);
}

/** One user holding their room's `messageAdded` for the run. */
export function listener(data: SetupData): void {
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
  listen({ wsUrl, token, roomId: data.roomIds[Math.floor(user / data.roomSize)] as string, holdMs, tags: { scenario_role: 'listener' }, resume: true });
}

let senders: number[] | undefined;

/** One message from one of the sending users, to their room. */
export function sender(data: SetupData): void {
  if (senders === undefined) senders = senderIndices(planRooms(data.userCount, data.roomSize), SENDER_SHARE);
  const user = nextSender(senders, SENDER_VUS);
  const token = tokenOf(httpUrl, RUN_ID, user);
  if (!check(token, { 'signed in': (t) => t !== undefined }) || token === undefined) return;
  sendStamped(httpUrl, token, data.roomIds[Math.floor(user / data.roomSize)] as string, user, RUN_ID);
}
