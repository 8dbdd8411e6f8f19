import { GraphQLError } from 'graphql';

/**
 * The `extensions.code` values clients can rely on. Anything else reaching a
 * client is masked by the server as an unexpected error.
 */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  CONFLICT: 'CONFLICT',
  /** Too many requests; `extensions.retryAfter` says after how many seconds to retry. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The operation is deeper, costlier or longer than the server accepts (limits in the README). */
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  /** A shared service (e.g. Redis) is briefly unreachable; retrying later works. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The client read its subscription too slowly; the server dropped it (reconnect and resume). */
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  /** An input (or what it would add to a document) exceeds a size limit; `extensions.limit` is the limit in bytes. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An expected failure with a safe message and a stable code. */
export function userError(
  code: ErrorCode,
  message: string,
  extensions: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

export const unauthenticated = () =>
  userError(ErrorCode.UNAUTHENTICATED, 'Sign in to do this.', { http: { status: 401 } });
export const forbidden = (message = 'You are not allowed to do this.') =>
  userError(ErrorCode.FORBIDDEN, message);
export const notFound = (what: string) => userError(ErrorCode.NOT_FOUND, `${what} not found.`);
export const badInput = (message: string, field?: string) =>
  userError(ErrorCode.BAD_USER_INPUT, message, field ? { field } : {});

export const unavailable = (what: string) =>
  userError(ErrorCode.UNAVAILABLE, `${what} is temporarily unavailable; try again shortly.`, { retryable: true });

/** A use over a rate limit; `retryAfter` is in whole seconds (at least 1). */
export const rateLimited = (retryAfterSeconds: number) => {
  const retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
  return userError(ErrorCode.RATE_LIMITED, `Too many requests; try again in ${retryAfter} s.`, { retryAfter });
};

/** An input or the document it would grow is over `limit` bytes; nothing was stored. */
export const payloadTooLarge = (message: string, limit: number, field?: string) =>
  userError(ErrorCode.PAYLOAD_TOO_LARGE, message, { limit, ...(field ? { field } : {}) });

export const slowConsumer = (maxQueued: number) =>
  userError(
    ErrorCode.SLOW_CONSUMER,
    `More than ${maxQueued} events were waiting for this subscription; reconnect and resume (messageAdded: afterSeq).`,
    { retryable: true },
  );
