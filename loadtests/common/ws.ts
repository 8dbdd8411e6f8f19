/**
 * A graphql-transport-ws connection in k6: `k6/websockets` carries the
 * frames, {@link GraphqlWsSession} (the pure state machine vitest also runs
 * against the real server) decides what they mean. Records the metrics all
 * scenarios share.
 */
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { clearInterval, setInterval, setTimeout, clearTimeout } from 'k6/timers';
import { WebSocket } from 'k6/websockets';
import { closeCodeName, GRAPHQL_TRANSPORT_WS, type ExecutionResult, type GraphQLFormattedError, type SubscribePayload } from '../lib/protocol.ts';
import { GraphqlWsSession, type SessionEvent, type Step } from '../lib/session.ts';

/** new WebSocket → connection_ack: TCP, upgrade, token check and presence registration together. */
export const ackTime = new Trend('gql_ws_ack_ms', true);
/** Protocol ping → pong on an established session. */
export const pongTime = new Trend('gql_ws_pong_ms', true);
/**
 * Everything that went wrong on a socket, tagged by `kind`:
 * unexpected_close (with `code`), no_ack, protocol_error, operation_error
 * (with the GraphQL error `code`), no_pong.
 */
export const wsErrors = new Counter('gql_ws_errors');

/** What a script wants to hear about. */
export interface ConnectionHandlers {
  /** connection_ack arrived: subscribe here (or before: the session holds them). */
  onReady?(connection: Connection): void;
  /** A `next` result of one of the connection's operations. */
  onNext?(id: string, result: ExecutionResult, connection: Connection): void;
  /** A `complete` from the server (operations end when a user leaves a room, or a query finished). */
  onComplete?(id: string, connection: Connection): void;
  /** The socket is closed, for whatever reason. */
  onClosed?(code: number, expected: boolean): void;
}

/** Connection settings. */
export interface ConnectOptions {
  url: string;
  token: string;
  /** Tags for k6's built-in ws_* metrics and this module's metrics. */
  tags?: Record<string, string>;
  /** Protocol ping interval; 0 disables. Default 15 s. */
  pingIntervalMs?: number;
  /** How long to wait for connection_ack before counting a failure and closing. Default 10 s. */
  ackTimeoutMs?: number;
}

/** One open graphql-transport-ws session. */
export interface Connection {
  subscribe(payload: SubscribePayload): string;
  complete(id: string): void;
  /** Closes with 1000 and stops the timers, so the VU's iteration can end. */
  close(): void;
  readonly ready: boolean;
}

function closeCodeOf(event: unknown): number {
  // k6 puts code and reason on the close event; @types/k6 does not declare them.
  const code = (event as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : 1006;
}

function closeReasonOf(event: unknown): string {
  const reason = (event as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' ? reason : '';
}

/**
 * Opens a WebSocket with the graphql-transport-ws subprotocol and
 * authenticates in connection_init. Returns at once; events arrive on k6's
 * event loop, and the iteration lasts until the socket is closed.
 */
export function connect(options: ConnectOptions, handlers: ConnectionHandlers = {}): Connection {
  const tags = options.tags ?? {};
  const session = new GraphqlWsSession({ token: options.token });
  const started = Date.now();
  const pingsInFlight: number[] = [];
  let pingTimer: number | undefined;
  let ackTimer: number | undefined;
  let closeWhenOpen = false;
  // One 'connection acknowledged' check per connection: true at the ack, false at the first sign it will not come.
  let ackChecked = false;
  const checkAck = (ok: boolean) => {
    if (ackChecked) return;
    ackChecked = true;
    check(ok, { 'connection acknowledged': (value) => value }, tags);
  };
  // The subprotocol goes in a header: @types/k6 types the constructor's
  // protocols argument as null, and k6 passes this header to the handshake.
  const socket = new WebSocket(options.url, null, {
    headers: { 'Sec-WebSocket-Protocol': GRAPHQL_TRANSPORT_WS },
    tags,
  });

  const stopTimers = () => {
    if (pingTimer !== undefined) clearInterval(pingTimer);
    if (ackTimer !== undefined) clearTimeout(ackTimer);
    pingTimer = undefined;
    ackTimer = undefined;
  };

  const connection: Connection = {
    subscribe(payload) {
      const { id, step } = session.subscribe(payload);
      apply(step);
      return id;
    },
    complete(id) {
      apply(session.complete(id));
    },
    close() {
      session.closing();
      stopTimers();
      // k6 queues the close frame for a writer that only runs once the socket is open: closing earlier would block the VU.
      if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'done');
      else if (socket.readyState === WebSocket.CONNECTING) closeWhenOpen = true;
    },
    get ready() {
      return session.state === 'ready';
    },
  };

  function handle(event: SessionEvent): void {
    switch (event.type) {
      case 'ack':
        if (ackTimer !== undefined) clearTimeout(ackTimer);
        ackTimer = undefined;
        ackTime.add(Date.now() - started, tags);
        checkAck(true);
        if ((options.pingIntervalMs ?? 15_000) > 0) {
          pingTimer = setInterval(() => {
            if (pingsInFlight.length > 0) {
              // A pong a whole interval late is a stalled connection.
              wsErrors.add(1, { ...tags, kind: 'no_pong' });
              pingsInFlight.length = 0;
            }
            pingsInFlight.push(Date.now());
            apply(session.ping());
          }, options.pingIntervalMs ?? 15_000);
        }
        handlers.onReady?.(connection);
        break;
      case 'pong': {
        const sent = pingsInFlight.shift();
        if (sent !== undefined) pongTime.add(Date.now() - sent, tags);
        break;
      }
      case 'next':
        if (event.result.errors?.length) reportOperationErrors(event.result.errors);
        handlers.onNext?.(event.id, event.result, connection);
        break;
      case 'error':
        reportOperationErrors(event.errors);
        break;
      case 'complete':
        handlers.onComplete?.(event.id, connection);
        break;
      case 'protocol_error':
        wsErrors.add(1, { ...tags, kind: 'protocol_error' });
        console.warn(`graphql-transport-ws protocol error: ${event.reason}`);
        break;
      case 'closed':
        stopTimers();
        if (!event.expected) {
          wsErrors.add(1, { ...tags, kind: 'unexpected_close', code: closeCodeName(event.code) });
          checkAck(false);
          console.warn(`socket closed unexpectedly: ${event.code} ${closeCodeName(event.code)} ${event.reason}`);
        }
        handlers.onClosed?.(event.code, event.expected);
        break;
      case 'ping':
        break;
    }
  }

  function reportOperationErrors(errors: GraphQLFormattedError[]): void {
    const code = String(errors[0]?.extensions?.code ?? 'none');
    wsErrors.add(1, { ...tags, kind: 'operation_error', code });
    console.warn(`operation error ${code}: ${errors[0]?.message ?? ''}`);
  }

  function apply(step: Step): void {
    for (const frame of step.send) {
      if (socket.readyState === WebSocket.OPEN) socket.send(frame);
    }
    for (const event of step.events) handle(event);
    if (step.close && socket.readyState === WebSocket.OPEN) socket.close(step.close.code, step.close.reason);
  }

  socket.addEventListener('open', () => {
    if (closeWhenOpen) {
      socket.close(1000, 'done');
      return;
    }
    apply(session.opened());
    ackTimer = setTimeout(() => {
      ackTimer = undefined;
      if (session.state === 'ready') return;
      wsErrors.add(1, { ...tags, kind: 'no_ack' });
      checkAck(false);
      connection.close();
    }, options.ackTimeoutMs ?? 10_000);
  });
  socket.addEventListener('message', (event) => {
    const data = (event as { data?: unknown }).data;
    if (typeof data === 'string') apply(session.received(data));
    else apply({ send: [], events: [{ type: 'protocol_error', reason: 'binary frame' }] });
  });
  socket.addEventListener('error', (event) => {
    // k6 fires error right before close for failed handshakes, broken sockets
    // and any close code but 1000/1001 (a 1012 drain too), so the close event,
    // which knows whether the close was expected, does the counting.
    console.debug(`websocket error: ${String((event as { error?: unknown }).error)}`);
  });
  socket.addEventListener('close', (event) => {
    apply(session.closed(closeCodeOf(event), closeReasonOf(event)));
  });
  return connection;
}
