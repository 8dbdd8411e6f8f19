/**
 * The benchmark's load client, run as its own process so that its CPU is not
 * counted in the server's. Driven by the harness over IPC (one command at a
 * time, see ClientCommand): opens N graphql-transport-ws subscribers, proves
 * them live, sends stamped messages at a set rate and measures each delivery
 * (receive time − the send time written in the body).
 */
import WebSocket from 'ws';
import { deliveryLatencyMs, readStamp, stampBody } from '../../loadtests/lib/delivery.ts';
import { SEND_MESSAGE } from '../../loadtests/lib/operations.ts';
import { closeCodeName, decodeServerMessage, encodeClientMessage, GRAPHQL_TRANSPORT_WS, type ServerMessage } from '../../loadtests/lib/protocol.ts';
import {
  BENCH_SUBSCRIPTION,
  MEASURED,
  PROBE,
  round,
  sleep,
  summarize,
  type ClientCommand,
  type ClientReply,
  type ClientStatus,
  type ConnectResult,
  type ProbeResult,
  type RunResult,
  type SendTarget,
} from './lib.ts';

/** One connection, holding `perConnection` subscriptions (ids `<index>` or `<index>.<k>`). */
interface Subscriber {
  index: number;
  socket: WebSocket;
  ready: boolean;
  closed: boolean;
  /** Which of its subscriptions received the current probe. */
  probed: Uint8Array;
  probedCount: number;
}

/** Subscriptions each connection holds (the same room's messageAdded, like tabs of one app). */
let perConnection = 1;

/** A send answered later than this counts as failed (its message may still be delivered, and counted). */
const SEND_TIMEOUT_MS = 180_000;

const subscribers: Subscriber[] = [];
const errors = new Map<string, number>();
const closeCodes: Record<string, number> = {};
let unexpectedCloses = 0;
let protocolErrors = 0;
let graphqlErrors = 0;
let closing = false;

/** The measured run in progress: which (subscriber, message) pairs arrived and how late. */
let run:
  | { messages: number; seen: Uint8Array; perMessage: Uint32Array; latencies: Float64Array; delivered: number; duplicates: number; lastDeliveryAt: number }
  | undefined;

function noteError(message: string) {
  errors.set(message, (errors.get(message) ?? 0) + 1);
}

function errorList(): string[] {
  return [...errors].slice(0, 10).map(([message, count]) => (count > 1 ? `${message} (×${count})` : message));
}

function onFrame(sub: Subscriber, frame: ServerMessage, receivedAt: number) {
  if (frame.type !== 'next') {
    if (frame.type === 'ping') sub.socket.send(encodeClientMessage({ type: 'pong' }));
    else if (frame.type === 'error') {
      graphqlErrors++;
      noteError(`subscription error: ${frame.payload[0]?.message}`);
    } else if (frame.type === 'complete') noteError('subscription completed by the server');
    return;
  }
  const [connection, nth = '0'] = frame.id.split('.');
  const k = Number(nth);
  if (connection !== String(sub.index) || !(k >= 0 && k < perConnection)) {
    protocolErrors++;
    noteError('next frame for an unknown subscription id');
    return;
  }
  if (frame.payload.errors?.length) {
    graphqlErrors++;
    noteError(`result error: ${frame.payload.errors[0]?.message}`);
  }
  const body = (frame.payload.data?.messageAdded as { body?: unknown } | undefined)?.body;
  const stamp = typeof body === 'string' ? readStamp(body) : undefined;
  if (!stamp || typeof body !== 'string') {
    protocolErrors++;
    noteError('next frame without a stamped messageAdded.body');
    return;
  }
  if (stamp.from === PROBE) {
    if (!sub.probed[k]) sub.probedCount++;
    sub.probed[k] = 1;
    return;
  }
  if (stamp.from !== MEASURED || !run || stamp.n >= run.messages) return;
  const slot = (sub.index * perConnection + k) * run.messages + stamp.n;
  if (run.seen[slot]) {
    run.duplicates++;
    return;
  }
  run.seen[slot] = 1;
  run.perMessage[stamp.n] = (run.perMessage[stamp.n] ?? 0) + 1;
  if (run.delivered < run.latencies.length) run.latencies[run.delivered++] = deliveryLatencyMs(body, receivedAt) ?? 0;
  run.lastDeliveryAt = receivedAt;
}

/** Opens one subscriber: resolves once connection_ack came and the subscribe went out. */
function openSubscriber(index: number, wsUrl: string, token: string, roomId: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const socket = new WebSocket(wsUrl, GRAPHQL_TRANSPORT_WS, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const sub: Subscriber = { index, socket, ready: false, closed: false, probed: new Uint8Array(perConnection), probedCount: 0 };
    subscribers.push(sub);
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.terminate();
      reject(new Error(reason));
    };
    const timer = setTimeout(() => fail(`no connection_ack within ${timeoutMs} ms`), timeoutMs);
    socket.on('open', () => socket.send(encodeClientMessage({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    socket.on('unexpected-response', (_req, res) => fail(`upgrade refused: HTTP ${res.statusCode}`));
    socket.on('error', (error) => fail(`socket error: ${error.message}`));
    socket.on('message', (data) => {
      const receivedAt = Date.now();
      let frame: ServerMessage;
      try {
        frame = decodeServerMessage(String(data));
      } catch (error) {
        protocolErrors++;
        noteError(`bad frame: ${(error as Error).message}`);
        return;
      }
      if (frame.type === 'connection_ack') {
        if (sub.ready) return;
        for (let k = 0; k < perConnection; k++) {
          const id = perConnection === 1 ? String(index) : `${index}.${k}`;
          socket.send(encodeClientMessage({ type: 'subscribe', id, payload: { query: BENCH_SUBSCRIPTION, variables: { roomId } } }));
        }
        sub.ready = true;
        settled = true;
        clearTimeout(timer);
        resolve(performance.now() - startedAt);
        return;
      }
      onFrame(sub, frame, receivedAt);
    });
    socket.on('close', (code, reason) => {
      sub.closed = true;
      if (!settled) fail(`closed before connection_ack: ${code} ${closeCodeName(code)} ${String(reason)}`.trim());
      if (closing) return;
      if (sub.ready) {
        unexpectedCloses++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
        noteError(`closed by the server: ${code} ${closeCodeName(code)}`);
      }
    });
  });
}

async function connect(command: Extract<ClientCommand, { cmd: 'connect' }>): Promise<ConnectResult> {
  const startedAt = performance.now();
  perConnection = command.perConnection ?? 1;
  const ackMs = new Float64Array(command.count);
  let next = 0;
  let ready = 0;
  let failed = 0;
  const worker = async () => {
    while (next < command.count) {
      const index = next++;
      const token = command.tokens[index % command.tokens.length] as string;
      try {
        const ms = await openSubscriber(index, command.wsUrl, token, command.roomId, command.handshakeTimeoutMs);
        ackMs[ready++] = ms;
      } catch (error) {
        failed++;
        noteError((error as Error).message);
      }
      if ((ready + failed) % 1000 === 0) progress(`${ready + failed}/${command.count} connections (${failed} failed)`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.count) }, worker));
  return {
    requested: command.count,
    ready,
    failed,
    durationMs: Math.round(performance.now() - startedAt),
    ackMs: roundSummary(summarize(ackMs.subarray(0, ready))),
    errors: errorList(),
  };
}

/** Sends one message; resolves with its HTTP round trip in ms, or throws. */
async function send(target: SendTarget, body: string, clientId: string): Promise<number> {
  const startedAt = performance.now();
  const response =
    target.kind === 'api'
      ? await fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
          body: JSON.stringify({ query: SEND_MESSAGE, variables: { input: { roomId: target.roomId, body, clientId } } }),
          signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
        })
      : await fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ roomId: target.roomId, body }),
          signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
        });
  const text = await response.text();
  if (!response.ok) throw new Error(`send: HTTP ${response.status} ${text.slice(0, 200)}`);
  if (target.kind === 'api') {
    const result = JSON.parse(text) as { errors?: { message: string; extensions?: { code?: string } }[] };
    if (result.errors?.length) throw new Error(`sendMessage: ${result.errors[0]?.extensions?.code ?? ''} ${result.errors[0]?.message}`);
  }
  return performance.now() - startedAt;
}

/** Sends probes until every ready subscriber has received one: their subscriptions are running. */
async function probe(command: Extract<ClientCommand, { cmd: 'probe' }>): Promise<ProbeResult> {
  const startedAt = performance.now();
  const deadline = Date.now() + command.timeoutMs;
  let probesSent = 0;
  // Counted in subscriptions: each ready connection holds perConnection of them.
  const readyOnes = () => subscribers.filter((s) => s.ready && !s.closed);
  const live = () => readyOnes().reduce((n, s) => n + s.probedCount, 0);
  const expected = () => readyOnes().length * perConnection;
  for (const sub of subscribers) {
    sub.probed.fill(0);
    sub.probedCount = 0;
  }
  while (Date.now() < deadline) {
    await send(command.send, stampBody({ sentAt: Date.now(), from: PROBE, n: probesSent }, 'liveness probe'), `probe-${Date.now()}-${probesSent}`);
    probesSent++;
    const waitUntil = Math.min(deadline, Date.now() + 3000);
    while (Date.now() < waitUntil && live() < expected()) await sleep(50);
    if (live() === expected()) break;
    progress(`probe ${probesSent}: ${live()}/${expected()} subscriptions live`);
  }
  return { live: live(), ready: expected(), probesSent, durationMs: Math.round(performance.now() - startedAt) };
}

async function measure(command: Extract<ClientCommand, { cmd: 'run' }>): Promise<RunResult> {
  // Subscribers that never got their ack are reported by connect, not counted as loss here.
  const count = subscribers.filter((s) => s.ready && !s.closed).length * perConnection;
  const { messages, rate } = command;
  const expected = count * messages;
  run = { messages, seen: new Uint8Array(subscribers.length * perConnection * messages), perMessage: new Uint32Array(messages), latencies: new Float64Array(expected), delivered: 0, duplicates: 0, lastDeliveryAt: 0 };
  const current = run;
  const sendMs = new Float64Array(messages);
  const accepted = new Uint8Array(messages);
  let sent = 0;
  let sendErrors = 0;
  const cpuBefore = process.cpuUsage();
  const firstSendAt = Date.now();
  let lastSendAt = firstSendAt;
  const sends: Promise<void>[] = [];
  for (let n = 0; n < messages; n++) {
    const due = firstSendAt + (n * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    lastSendAt = Date.now();
    const body = stampBody({ sentAt: lastSendAt, from: MEASURED, n }, 'benchmark message');
    sends.push(
      send(command.send, body, `${command.runId}-${n}`).then(
        (ms) => {
          sendMs[sent++] = ms;
          accepted[n] = 1;
        },
        (error: unknown) => {
          sendErrors++;
          noteError((error as Error).message);
        },
      ),
    );
  }
  await Promise.all(sends);
  progress(`${messages} messages sent in ${lastSendAt - firstSendAt} ms; ${current.delivered}/${expected} delivered so far`);
  let lastProgress = current.delivered;
  let lastProgressAt = Date.now();
  let lastReport = Date.now();
  let drainTimedOut = false;
  // Wait for everything, even the messages of failed sends (a send that timed out may still
  // have been stored and published): only a long silence ends the wait.
  while (current.delivered < expected) {
    await sleep(50);
    if (current.delivered !== lastProgress) {
      lastProgress = current.delivered;
      lastProgressAt = Date.now();
    } else if (Date.now() - lastProgressAt > command.drainTimeoutMs) {
      drainTimedOut = true;
      break;
    }
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      progress(`${current.delivered}/${expected} delivered`);
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  const endAt = Math.max(current.lastDeliveryAt, lastSendAt);
  const durationMs = Math.max(1, (current.lastDeliveryAt || endAt) - firstSendAt);
  run = undefined;
  let lostOfAccepted = 0;
  for (let n = 0; n < messages; n++) if (accepted[n]) lostOfAccepted += count - (current.perMessage[n] ?? 0);
  const clientCpuMs = (cpu.user + cpu.system) / 1000;
  return {
    subscribers: count,
    messages,
    sent,
    sendErrors,
    expected,
    delivered: current.delivered,
    lost: expected - current.delivered,
    lostOfAccepted,
    duplicates: current.duplicates,
    durationMs,
    sendWindowMs: lastSendAt - firstSendAt,
    deliveriesPerSecond: Math.round((current.delivered * 1000) / durationMs),
    latencyMs: summarize(current.latencies.subarray(0, current.delivered)),
    sendMs: roundSummary(summarize(sendMs.subarray(0, sent))),
    drainTimedOut,
    clientCpuMs: Math.round(clientCpuMs),
    clientCpuPercent: round((clientCpuMs / Math.max(1, Date.now() - firstSendAt)) * 100),
  };
}

function status(): ClientStatus {
  return {
    open: subscribers.filter((s) => !s.closed).length,
    ready: subscribers.filter((s) => s.ready && !s.closed).length,
    unexpectedCloses,
    closeCodes,
    protocolErrors,
    graphqlErrors,
    errors: errorList(),
  };
}

function roundSummary(summary: ReturnType<typeof summarize>) {
  return { ...summary, p50: round(summary.p50, 1), p90: round(summary.p90, 1), p99: round(summary.p99, 1), max: round(summary.max, 1) };
}

function reply(message: ClientReply) {
  process.send?.(message);
}

function progress(text: string) {
  reply({ progress: text });
}

async function handle(command: ClientCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'connect':
      return connect(command);
    case 'probe':
      return probe(command);
    case 'run':
      return measure(command);
    case 'status':
      return status();
    case 'reset': {
      // Closes every subscriber and forgets them and their errors (after a warm-up).
      closing = true;
      await Promise.all(
        subscribers.filter((s) => !s.closed).map((s) => new Promise<void>((resolve) => {
          s.socket.once('close', () => resolve());
          s.socket.close(1000);
          setTimeout(() => { s.socket.terminate(); resolve(); }, 2000);
        })),
      );
      subscribers.length = 0;
      errors.clear();
      for (const code of Object.keys(closeCodes)) delete closeCodes[code];
      unexpectedCloses = protocolErrors = graphqlErrors = 0;
      closing = false;
      return null;
    }
    case 'close': {
      closing = true;
      for (const sub of subscribers) if (!sub.closed) sub.socket.terminate();
      setTimeout(() => process.exit(0), 50);
      return null;
    }
  }
}

if (!process.send) {
  console.error('load-client.ts is started by scripts/bench/bench.ts (it needs an IPC channel)');
  process.exit(2);
}
process.on('message', (command: ClientCommand) => {
  handle(command).then(
    (result) => reply({ seq: command.seq, ok: true, result }),
    (error: unknown) => reply({ seq: command.seq, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
// Without the harness nobody reads the results: leave with it.
process.on('disconnect', () => process.exit(0));
