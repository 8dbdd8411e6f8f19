/**
 * The graphql-transport-ws wire format (the protocol of the `graphql-ws`
 * library): message shapes, encoding and strict decoding.
 *
 * Pure on purpose: this file is loaded by k6 (through its esbuild
 * TypeScript loader) and by Node/vitest, so it may import neither `k6/*`
 * nor `node:*`, and uses only what both runtimes share.
 */

/** The WebSocket subprotocol a client must ask for, or the server refuses the session. */
export const GRAPHQL_TRANSPORT_WS = 'graphql-transport-ws';

/** What a GraphQL operation sent over the socket carries. */
export interface SubscribePayload {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** An error as GraphQL serializes it. */
export interface GraphQLFormattedError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

/** One result of an operation (a `next` payload). */
export interface ExecutionResult {
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
  extensions?: Record<string, unknown>;
}

/** Frames a client sends. */
export type ClientMessage =
  | { type: 'connection_init'; payload?: Record<string, unknown> }
  | { type: 'ping'; payload?: Record<string, unknown> }
  | { type: 'pong'; payload?: Record<string, unknown> }
  | { type: 'subscribe'; id: string; payload: SubscribePayload }
  | { type: 'complete'; id: string };

/** Frames a server sends. */
export type ServerMessage =
  | { type: 'connection_ack'; payload?: Record<string, unknown> }
  | { type: 'ping'; payload?: Record<string, unknown> }
  | { type: 'pong'; payload?: Record<string, unknown> }
  | { type: 'next'; id: string; payload: ExecutionResult }
  | { type: 'error'; id: string; payload: GraphQLFormattedError[] }
  | { type: 'complete'; id: string };

/** Thrown by {@link decodeServerMessage} for a frame that breaks the protocol. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Serializes a client frame for `WebSocket.send`. */
export function encodeClientMessage(message: ClientMessage): string {
  return JSON.stringify(message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalPayload(message: Record<string, unknown>): Record<string, unknown> | undefined {
  const payload = message.payload;
  if (payload === undefined || payload === null) return undefined;
  if (!isRecord(payload)) throw new ProtocolError(`"${String(message.type)}" payload must be an object`);
  return payload;
}

function requireId(message: Record<string, unknown>): string {
  const id = message.id;
  if (typeof id !== 'string' || id === '') throw new ProtocolError(`"${String(message.type)}" needs a non-empty string id`);
  return id;
}

/**
 * Parses a server frame, checking the shape the protocol promises. A load
 * test that silently accepted malformed frames would count them as
 * deliveries, so anything unexpected throws {@link ProtocolError}.
 */
export function decodeServerMessage(data: string): ServerMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new ProtocolError('frame is not JSON');
  }
  if (!isRecord(parsed)) throw new ProtocolError('frame is not a JSON object');
  switch (parsed.type) {
    case 'connection_ack':
    case 'ping':
    case 'pong': {
      const payload = optionalPayload(parsed);
      return payload === undefined ? { type: parsed.type } : { type: parsed.type, payload };
    }
    case 'next': {
      const id = requireId(parsed);
      if (!isRecord(parsed.payload)) throw new ProtocolError('"next" payload must be an execution result');
      return { type: 'next', id, payload: parsed.payload as ExecutionResult };
    }
    case 'error': {
      const id = requireId(parsed);
      const payload = parsed.payload;
      if (!Array.isArray(payload) || payload.length === 0 || !payload.every((e) => isRecord(e) && typeof e.message === 'string')) {
        throw new ProtocolError('"error" payload must be a non-empty list of GraphQL errors');
      }
      return { type: 'error', id, payload: payload as GraphQLFormattedError[] };
    }
    case 'complete':
      return { type: 'complete', id: requireId(parsed) };
    default:
      throw new ProtocolError(`unknown frame type ${JSON.stringify(parsed.type)}`);
  }
}

/** Close codes the server and the protocol use, and what a load test makes of them. */
export const CloseCodes = {
  Normal: 1000,
  GoingAway: 1001,
  /** The server is draining (restart or deploy): clients are expected to reconnect. */
  ServiceRestart: 1012,
  BadRequest: 4400,
  /** connection_init carried no token. */
  Unauthorized: 4401,
  /** The token was refused. */
  Forbidden: 4403,
  /** The WebSocket was opened without the graphql-transport-ws subprotocol. */
  SubprotocolNotAcceptable: 4406,
  ConnectionInitialisationTimeout: 4408,
  SubscriberAlreadyExists: 4409,
  TooManyInitialisationRequests: 4429,
} as const;

/** A readable name for a close code, for logs and metric tags. */
export function closeCodeName(code: number): string {
  for (const [name, value] of Object.entries(CloseCodes)) if (value === code) return name;
  return `code_${code}`;
}
