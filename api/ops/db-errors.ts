import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError } from 'graphql-yoga';
import { unavailable } from '../../schema/errors.ts';

type MaskError = typeof yogaMaskError;

/**
 * Yoga's error masking, reporting each database error it masks. Every error
 * that reaches a GraphQL response passes here, whether thrown by a resolver
 * or while building the context (authentication reads the database), over
 * HTTP and WebSocket alike. Database errors the schema expects and
 * translates (a taken email, a reused clientId) are GraphQL errors by then
 * and are neither masked nor reported.
 *
 * A database that cannot be reached (down, restarting, refusing connections,
 * a connection cut mid-query) is not a bug: the client gets `UNAVAILABLE` with
 * `retryable: true` instead of a masked "Unexpected error.", so it can keep
 * the mutation and send it again (a `sendMessage` retry with the same
 * `clientId` is stored once). The original error is still logged by yoga.
 */
export function maskErrorReportingDb(onDbError: () => void, mask: MaskError = yogaMaskError): MaskError {
  return (error, message, isDev) => {
    if (isDbUnavailable(error)) {
      onDbError();
      return dbUnavailableError(error);
    }
    const masked = mask(error, message, isDev);
    if (masked !== error && isDbError(error)) onDbError();
    return masked;
  };
}

/**
 * The client-facing error for a database that cannot be reached: `UNAVAILABLE`,
 * `retryable: true`, at the failed field's path and location when `error` has them.
 */
export function dbUnavailableError(error: unknown): GraphQLError {
  const located = error instanceof GraphQLError ? error : undefined;
  const plain = unavailable('The database');
  return new GraphQLError(plain.message, {
    nodes: located?.nodes ?? null,
    source: located?.source ?? null,
    positions: located?.positions ?? null,
    path: located?.path ?? null,
    extensions: plain.extensions,
  });
}

/** `error` and what caused it (GraphQL `originalError`, `cause`), outermost first. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let e = error;
  for (let depth = 0; e instanceof Error && depth < 6; depth++) {
    chain.push(e);
    e = (e as { originalError?: unknown }).originalError ?? e.cause;
  }
  return chain;
}

/** Whether `error`, or what caused it, comes from Prisma's query engine or its driver adapter. */
export function isDbError(error: unknown): boolean {
  // By name: the driver adapters throw their own DriverAdapterError class, and
  // PrismaClientValidationError is left out: it is a bug in a query, not the database failing.
  return causes(error).some((e) =>
    /^PrismaClient(KnownRequest|UnknownRequest|RustPanic|Initialization)Error$|^DriverAdapterError$/.test((e as Error).name),
  );
}

// Prisma codes for "the server is not there": can't reach (P1001), timed out
// reaching it (P1002), socket timeout (P1008), server closed the connection
// (P1017), no pool connection in time (P2024), too many connections (P2037).
const UNREACHABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
// What @prisma/adapter-pg reports in `meta.driverAdapterError.cause.kind` (or a DriverAdapterError's `cause`).
const UNREACHABLE_ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
// Node socket errors seen by `pg` itself.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);
// SQLSTATE: class 08 (connection exception), admin/crash shutdown and "cannot connect now"
// (57P01..57P03: the server is stopping, crashed, or still starting up), too many connections.
const UNREACHABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/;
// pg's own wording when the socket ends under a query or a client.
const UNREACHABLE_MESSAGE =
  /Connection terminated|Client has encountered a connection error|Connection is not queryable|timeout exceeded when trying to connect|Can't reach database server|Server has closed the connection|terminating connection due to (administrator command|immediate shutdown)|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * Whether `error` means the database cannot be reached right now (as opposed to
 * a failing query): PostgreSQL stopped or restarting, the connection refused or
 * cut, the pool exhausted. Such a request can simply be retried later.
 */
export function isDbUnavailable(error: unknown): boolean {
  const chain = causes(error);
  // A GraphQL error the schema made on purpose (e.g. UNAVAILABLE from Redis) is left alone.
  if (error instanceof GraphQLError && chain.length === 1) return false;
  if (!chain.some((e) => isDbError(e) || isDriverish(e))) return false;
  return chain.some((e) => {
    const err = e as Error & {
      code?: unknown;
      meta?: { driverAdapterError?: { cause?: DriverCause } };
      cause?: unknown;
    };
    if (typeof err.code === 'string' && (UNREACHABLE_PRISMA_CODES.has(err.code) || SOCKET_CODES.has(err.code) || UNREACHABLE_SQLSTATE.test(err.code))) return true;
    const adapterCause = err.meta?.driverAdapterError?.cause ?? (err.name === 'DriverAdapterError' ? (err.cause as DriverCause | undefined) : undefined);
    if (adapterCause && isUnreachableCause(adapterCause)) return true;
    return UNREACHABLE_MESSAGE.test(err.message);
  });
}

interface DriverCause {
  kind?: unknown;
  code?: unknown;
  originalCode?: unknown;
}

function isUnreachableCause(cause: DriverCause): boolean {
  if (typeof cause.kind === 'string' && UNREACHABLE_ADAPTER_KINDS.has(cause.kind)) return true;
  return [cause.code, cause.originalCode].some((c) => typeof c === 'string' && UNREACHABLE_SQLSTATE.test(c));
}

/** Errors `pg` throws itself, which reach us unwrapped when the adapter does not recognise them. */
function isDriverish(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err.code === 'string' && (SOCKET_CODES.has(err.code) || UNREACHABLE_SQLSTATE.test(err.code))) return true;
  return typeof err.message === 'string' && /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/.test(err.message);
}
