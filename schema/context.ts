import type { PrismaClient } from '../prisma/generated/client.ts';
import type { PubSub, UserSummary } from './events.ts';
import type { Loaders } from './loaders.ts';

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

/**
 * Who is online. A user is online while they hold at least one authenticated
 * WebSocket; the runtime publishes `presence:changed` on each transition.
 */
export interface PresenceService {
  /** The ids among `userIds` that are online now. */
  online(userIds: readonly string[]): Promise<Set<string>>;
}

/**
 * Who is typing where. The runtime expires a typist after a few seconds
 * without renewal and publishes `typing:changed` when a room's set changes.
 */
export interface TypingService {
  set(roomId: string, user: UserSummary, isTyping: boolean): Promise<void>;
  /** Everyone typing in the room now. */
  current(roomId: string): Promise<UserSummary[]>;
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
  presence: PresenceService;
  typing: TypingService;
}

/** What every resolver receives, over HTTP and over WebSocket alike. */
export interface Context extends Services {
  viewer: Viewer | null;
  /** Batching loaders, fresh for each operation. */
  loaders: Loaders;
}
