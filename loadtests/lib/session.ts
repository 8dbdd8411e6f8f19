/**
 * A graphql-transport-ws client as a state machine with no I/O: the caller
 * feeds it what happened on the socket (opened, a frame arrived, closed) and
 * gets back the frames to send and the events to act on. k6 drives it from
 * `k6/websockets` callbacks, the vitest suite from the `ws` package, so the
 * protocol handling the load tests rely on is the one proven against the
 * real server.
 *
 * Pure: no `k6/*`, no `node:*`, no timers.
 */
import {
  CloseCodes,
  ProtocolError,
  decodeServerMessage,
  encodeClientMessage,
  type ExecutionResult,
  type GraphQLFormattedError,
  type SubscribePayload,
} from './protocol.ts';

/** Where a session is in its life. */
export type SessionState = 'idle' | 'awaiting_ack' | 'ready' | 'closed';

/** Something the driver (k6 script or test) should know about. */
export type SessionEvent =
  | { type: 'ack'; payload?: Record<string, unknown> }
  | { type: 'next'; id: string; result: ExecutionResult }
  | { type: 'error'; id: string; errors: GraphQLFormattedError[] }
  | { type: 'complete'; id: string }
  | { type: 'ping'; payload?: Record<string, unknown> }
  | { type: 'pong'; payload?: Record<string, unknown> }
  | { type: 'protocol_error'; reason: string }
  | { type: 'closed'; code: number; reason: string; expected: boolean };

/** What to do after an input: frames to send (in order), events, and whether to close. */
export interface Step {
  send: string[];
  events: SessionEvent[];
  /** Set when the session decided the socket must be closed (protocol violation). */
  close?: { code: number; reason: string };
}

/** How the session authenticates. */
export interface SessionOptions {
  /** The bearer token, sent as `connectionParams.authorization = "Bearer <token>"`. */
  token?: string;
  /** Extra connection_init payload fields (merged under the authorization). */
  connectionParams?: Record<string, unknown>;
}

const empty = (): Step => ({ send: [], events: [] });

/**
 * One graphql-transport-ws session. Subscriptions asked for before the
 * server's `connection_ack` are held and sent right after it, because the
 * server closes a socket that subscribes before it is acknowledged (4401).
 */
export class GraphqlWsSession {
  private current: SessionState = 'idle';
  private readonly options: SessionOptions;
  private readonly pending: { id: string; payload: SubscribePayload }[] = [];
  private readonly active = new Set<string>();
  private nextId = 1;
  private closingOnPurpose = false;

  constructor(options: SessionOptions = {}) {
    this.options = options;
  }

  /** The current state. */
  get state(): SessionState {
    return this.current;
  }

  /** Ids of operations sent and not yet completed or failed. */
  get activeIds(): string[] {
    return [...this.active];
  }

  /** The socket opened: returns the connection_init frame. */
  opened(): Step {
    if (this.current !== 'idle') return this.violation(`opened twice (state ${this.current})`);
    this.current = 'awaiting_ack';
    const payload: Record<string, unknown> = { ...this.options.connectionParams };
    if (this.options.token !== undefined) payload.authorization = `Bearer ${this.options.token}`;
    return { send: [encodeClientMessage({ type: 'connection_init', payload })], events: [] };
  }

  /**
   * Starts an operation (a subscription, or a query/mutation answered by one
   * `next` then `complete`). Returns its id and the frames to send now, which
   * are none while the session still waits for its ack.
   */
  subscribe(payload: SubscribePayload, id: string = String(this.nextId++)): { id: string; step: Step } {
    if (this.current === 'closed') return { id, step: empty() };
    if (this.active.has(id) || this.pending.some((p) => p.id === id)) {
      // The server would close the whole socket with 4409; refuse here instead.
      return { id, step: { send: [], events: [{ type: 'protocol_error', reason: `operation id ${id} is already in use` }] } };
    }
    if (this.current !== 'ready') {
      this.pending.push({ id, payload });
      return { id, step: empty() };
    }
    this.active.add(id);
    return { id, step: { send: [encodeClientMessage({ type: 'subscribe', id, payload })], events: [] } };
  }

  /** Stops an operation the client no longer wants. */
  complete(id: string): Step {
    const queued = this.pending.findIndex((p) => p.id === id);
    if (queued >= 0) {
      this.pending.splice(queued, 1);
      return empty();
    }
    if (!this.active.delete(id) || this.current !== 'ready') return empty();
    return { send: [encodeClientMessage({ type: 'complete', id })], events: [] };
  }

  /** A protocol-level ping (answered by the server's `pong`). */
  ping(payload?: Record<string, unknown>): Step {
    if (this.current !== 'ready' && this.current !== 'awaiting_ack') return empty();
    return { send: [encodeClientMessage(payload === undefined ? { type: 'ping' } : { type: 'ping', payload })], events: [] };
  }

  /** The client is about to close the socket itself, so the close that follows is expected. */
  closing(): void {
    this.closingOnPurpose = true;
  }

  /** A text frame arrived. */
  received(data: string): Step {
    if (this.current === 'closed') return empty();
    let message;
    try {
      message = decodeServerMessage(data);
    } catch (error) {
      return this.violation(error instanceof ProtocolError ? error.message : String(error));
    }
    switch (message.type) {
      case 'ping': {
        // The protocol requires answering a ping with a pong as soon as possible.
        const pong = encodeClientMessage(message.payload === undefined ? { type: 'pong' } : { type: 'pong', payload: message.payload });
        return { send: [pong], events: [message.payload === undefined ? { type: 'ping' } : { type: 'ping', payload: message.payload }] };
      }
      case 'pong':
        return { send: [], events: [message.payload === undefined ? { type: 'pong' } : { type: 'pong', payload: message.payload }] };
      case 'connection_ack': {
        if (this.current !== 'awaiting_ack') return this.violation('connection_ack received twice');
        this.current = 'ready';
        const send: string[] = [];
        for (const { id, payload } of this.pending.splice(0)) {
          this.active.add(id);
          send.push(encodeClientMessage({ type: 'subscribe', id, payload }));
        }
        return { send, events: [message.payload === undefined ? { type: 'ack' } : { type: 'ack', payload: message.payload }] };
      }
      case 'next':
        if (this.current !== 'ready') return this.violation('"next" before connection_ack');
        // A result for an operation the client just completed can cross the complete on the wire; it is stale, not an error.
        if (!this.active.has(message.id)) return empty();
        return { send: [], events: [{ type: 'next', id: message.id, result: message.payload }] };
      case 'error':
        if (this.current !== 'ready') return this.violation('"error" before connection_ack');
        if (!this.active.delete(message.id)) return empty();
        return { send: [], events: [{ type: 'error', id: message.id, errors: message.payload }] };
      case 'complete':
        if (this.current !== 'ready') return this.violation('"complete" before connection_ack');
        if (!this.active.delete(message.id)) return empty();
        return { send: [], events: [{ type: 'complete', id: message.id }] };
    }
  }

  /**
   * The socket closed. `expected` is true when the client asked for it, or
   * the server is draining (1012), which clients must treat as "reconnect",
   * not as a failure.
   */
  closed(code: number, reason = ''): Step {
    if (this.current === 'closed') return empty();
    this.current = 'closed';
    this.pending.length = 0;
    this.active.clear();
    const expected = this.closingOnPurpose || code === CloseCodes.ServiceRestart;
    return { send: [], events: [{ type: 'closed', code, reason, expected }] };
  }

  private violation(reason: string): Step {
    // 4400 is what graphql-ws itself uses for a peer that breaks the protocol.
    this.closingOnPurpose = true;
    return { send: [], events: [{ type: 'protocol_error', reason }], close: { code: CloseCodes.BadRequest, reason: reason.slice(0, 120) } };
  }
}
