import type { PrismaClient } from '../prisma/generated/client.ts';
import type { PubSub } from './events.ts';

/** The signed-in user making the request, as established by a verified token. */
export interface Viewer {
  id: string;
  email: string;
  name: string;
}

/** Issues and checks access tokens; implemented by the server runtime. */
export interface TokenService {
  issue(user: Viewer): Promise<string>;
}

/** Password hashing; implemented by the server runtime. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, stored: string): Promise<boolean>;
}

export interface Clock {
  now(): Date;
}

/** Limits the operator can tune; fixed product limits live in limits.ts. */
export interface SchemaLimits {
  /** Largest history page (`first`/`last`). */
  maxHistoryPage: number;
  /** Most messages messageAdded replays after `afterSeq` before asking the client to refetch. */
  maxReplay: number;
}

export const defaultLimits: SchemaLimits = { maxHistoryPage: 100, maxReplay: 1000 };

/** Structured logger (pino's call signature). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Links to uploaded files; implemented by the server runtime, which owns url signing. */
export interface FileLinks {
  /**
   * A relative download url for an upload that works without a bearer token
   * (so it can go in `<img src>`) until it expires.
   */
  signedUrl(uploadId: string): string;
}

/** Services shared by every request, built once by the server runtime. */
export interface Services {
  db: PrismaClient;
  pubsub: PubSub;
  clock: Clock;
  tokens: TokenService;
  passwords: PasswordHasher;
  limits: SchemaLimits;
  log: Logger;
  files: FileLinks;
}

/** What every resolver receives, over HTTP and over WebSocket alike. */
export interface Context extends Services {
  viewer: Viewer | null;
}
