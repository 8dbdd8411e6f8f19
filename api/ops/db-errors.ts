import { maskError as yogaMaskError } from 'graphql-yoga';

type MaskError = typeof yogaMaskError;

/**
 * Yoga's error masking, reporting each database error it masks. Every error
 * that reaches a GraphQL response passes here, whether thrown by a resolver
 * or while building the context (authentication reads the database), over
 * HTTP and WebSocket alike. Database errors the schema expects and
 * translates (a taken email, a reused clientId) are GraphQL errors by then
 * and are neither masked nor reported.
 */
export function maskErrorReportingDb(onDbError: () => void, mask: MaskError = yogaMaskError): MaskError {
  return (error, message, isDev) => {
    const masked = mask(error, message, isDev);
    if (masked !== error && isDbError(error)) onDbError();
    return masked;
  };
}

/** Whether `error`, or what caused it, comes from Prisma's query engine or its driver adapter. */
export function isDbError(error: unknown): boolean {
  let e = error;
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    // By name: the driver adapters throw their own DriverAdapterError class, and
    // PrismaClientValidationError is left out: it is a bug in a query, not the database failing.
    if (/^PrismaClient(KnownRequest|UnknownRequest|RustPanic|Initialization)Error$|^DriverAdapterError$/.test(e.name)) return true;
    e = (e as { originalError?: unknown }).originalError ?? e.cause;
  }
  return false;
}
