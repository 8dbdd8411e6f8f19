/**
 * The chat traffic the room scenarios share: subscribers that hold
 * `messageAdded` and measure delivery, and senders that post stamped
 * messages over HTTP. k6 only.
 */
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { clearTimeout, setTimeout } from 'k6/timers';
import { deliveryLatencyMs, SeqTracker, stampBody } from '../lib/delivery.ts';
import { MESSAGE_ADDED, messageFrom, SEND_MESSAGE, type GraphQLResponse } from '../lib/operations.ts';
import { graphql } from './api.ts';
import { connect, type Connection } from './ws.ts';

/** Sender's clock in the body → receiver's clock at the `next` frame. */
export const deliveryLatency = new Trend('chat_delivery_latency_ms', true);
/** `messageAdded` results received, over all subscribers. */
export const messagesReceived = new Counter('chat_messages_received');
/** Messages the API accepted. */
export const messagesSent = new Counter('chat_messages_sent');
/** Messages a subscriber never got: gaps in a room's `seq`. */
export const messagesMissed = new Counter('chat_messages_missed');
/** Messages a subscriber got twice or out of order. */
export const messagesDuplicated = new Counter('chat_messages_duplicated');

/** One subscriber's session. */
export interface ListenOptions {
  wsUrl: string;
  token: string;
  roomId: string;
  /** Close after this long (ms). */
  holdMs: number;
  tags?: Record<string, string>;
  /** Extra operations to run on the same socket once it is ready. */
  alsoSubscribe?: { query: string; variables?: Record<string, unknown> }[];
  /** Called with each result of the extra operations. */
  onOther?(data: unknown): void;
  pingIntervalMs?: number;
  /**
   * Resume after a reconnect with `afterSeq` = the last seq this VU saw, as
   * real clients do after a server drain (1012), so the hand-over is checked
   * for gaps too. Off for churners, whose replays would be counted as slow
   * deliveries.
   */
  resume?: boolean;
}

// Per VU, across iterations: a VU that reconnects resumes where it stopped.
const vuSeqs = new SeqTracker();

/**
 * Opens a socket, subscribes to the room's `messageAdded` and records
 * every delivery until `holdMs` passes. The VU's iteration lasts as long.
 */
export function listen(options: ListenOptions): Connection {
  const seqs = options.resume ? vuSeqs : new SeqTracker();
  let messageOp: string | undefined;
  let holdTimer: number | undefined;
  return connect(
    { url: options.wsUrl, token: options.token, tags: options.tags ?? {}, pingIntervalMs: options.pingIntervalMs ?? 15_000 },
    {
      onReady(connection) {
        const afterSeq = seqs.lastSeq(options.roomId);
        const variables = afterSeq === undefined ? { roomId: options.roomId } : { roomId: options.roomId, afterSeq };
        messageOp = connection.subscribe({ query: MESSAGE_ADDED, variables });
        for (const op of options.alsoSubscribe ?? []) connection.subscribe(op.variables === undefined ? { query: op.query } : op);
        holdTimer = setTimeout(() => connection.close(), Math.max(0, options.holdMs));
      },
      onClosed(code, expected) {
        // Closed early by the server: end the iteration so the VU reconnects,
        // after a second's pause so a refusing server is not hammered.
        if (holdTimer !== undefined) clearTimeout(holdTimer);
        holdTimer = undefined;
        if (!expected || code === 1012) setTimeout(() => undefined, 1000);
      },
      onNext(id, result) {
        const receivedAt = Date.now();
        if (id !== messageOp) {
          options.onOther?.(result.data);
          return;
        }
        const message = messageFrom(result.data);
        if (!message) return;
        messagesReceived.add(1, options.tags);
        const latency = deliveryLatencyMs(message.body, receivedAt);
        if (latency !== undefined) deliveryLatency.add(latency, options.tags);
        const seen = seqs.observe(message.roomId, message.seq);
        if (seen.missed > 0) messagesMissed.add(seen.missed, options.tags);
        if (seen.duplicate) messagesDuplicated.add(1, options.tags);
      },
    },
  );
}

let sent = 0;

/**
 * Posts one stamped message as the given user; checks the API accepted it.
 * The stamp is taken just before the request, so the latency covers the
 * HTTP round trip, storage and the fan-out.
 */
export function sendStamped(httpUrl: string, token: string, roomId: string, userIndex: number, runId: string): boolean {
  sent += 1;
  const body = stampBody({ sentAt: Date.now(), from: `u${userIndex}`, n: sent });
  // Unique per run, VU and message: a reused clientId would be answered with the old message (or CONFLICT).
  const clientId = `lt-${runId}-${exec.vu.idInTest}-${sent}-${Date.now()}`;
  const res = graphql<{ sendMessage: { id: string; seq: number } }>(httpUrl, SEND_MESSAGE, { input: { roomId, body, clientId } }, token, 'sendMessage');
  const ok = check(res, {
    'message accepted': (r: { status: number; body: GraphQLResponse<{ sendMessage: { id: string; seq: number } }> }) =>
      r.status === 200 && typeof r.body.data?.sendMessage?.seq === 'number',
  });
  if (ok) messagesSent.add(1);
  else console.warn(`sendMessage failed (HTTP ${res.status}): ${JSON.stringify(res.body.errors ?? res.body).slice(0, 300)}`);
  return ok;
}
