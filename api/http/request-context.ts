import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header that carries a request's id in and out (a proxy's id is kept). */
export const REQUEST_ID_HEADER = 'x-request-id';

// Ids from outside end up in logs: only short, plain ones are kept.
const ACCEPTABLE_ID = /^[\w.:-]{1,128}$/;

interface RequestScope {
  requestId: string;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** The caller's `x-request-id` when it is a plain token, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && ACCEPTABLE_ID.test(given) ? given : randomUUID();
}

/** Runs `work` (and everything it awaits) as part of the request `requestId`. */
export function withRequestId<T>(requestId: string, work: () => T): T {
  return scope.run({ requestId }, work);
}

/** The id of the HTTP request being served, if any (WebSocket messages have none). */
export function currentRequestId(): string | undefined {
  return scope.getStore()?.requestId;
}

// The original error of each masked one, to its id: the masking and the log
// line that follows it happen apart, and must name the same id.
const idsOfErrors = new WeakMap<object, string>();

/**
 * The id an operator finds a masked error by: the HTTP request's id, or a
 * new one for an error outside any request (a WebSocket operation).
 */
export function assignErrorId(error: unknown): string {
  const id = currentRequestId() ?? randomUUID();
  if (typeof error === 'object' && error !== null) idsOfErrors.set(error, id);
  return id;
}

/** The id given to `error` by {@link assignErrorId}, or the current request's. */
export function errorId(error: unknown): string | undefined {
  return (typeof error === 'object' && error !== null ? idsOfErrors.get(error) : undefined) ?? currentRequestId();
}
