import type { PrismaClient } from '../prisma/generated/client.ts';
import type { MessageEvent, MetricUpdate, PubSub, UserSummary } from './events.ts';
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
  /** How long sendMessage's transaction may take (waiting for the room's row lock included). */
  sendTimeoutMs: number;
  /** Largest Yjs update applyDocUpdate accepts (decoded bytes). */
  docUpdateMaxBytes: number;
  /** Largest awareness update applyDocAwareness accepts (decoded bytes). */
  docAwarenessMaxBytes: number;
  /** Largest document (snapshot plus the updates after it); further updates are refused. */
  docMaxBytes: number;
  /** Updates stored after the snapshot before they are compacted into it. */
  docCompactEvery: number;
}

export const defaultLimits: SchemaLimits = {
  maxHistoryPage: 100,
  maxReplay: 1000,
  sendTimeoutMs: 15_000,
  docUpdateMaxBytes: 256 * 1024,
  docAwarenessMaxBytes: 8 * 1024,
  docMaxBytes: 5 * 1024 * 1024,
  docCompactEvery: 200,
};

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

/** A metric's current value as this process knows it. */
export interface MetricValue {
  key: string;
  value: number;
  /** When the value was observed. */
  at: Date;
  labels: Readonly<Record<string, string>>;
}

/** One point of a metric's recent history (the last value in its second). */
export interface MetricPoint {
  at: Date;
  value: number;
}

/** A key's state in a dashboard batch: the value now, and for counters what was added since the last batch. */
export interface DashboardUpdate extends MetricValue {
  /** Sum of the increments merged into this batch (counters); null for gauges. */
  delta: number | null;
}

/** What a dashboard subscriber receives: everything that changed for its keys since the last batch. */
export interface DashboardBatch {
  at: Date;
  updates: readonly DashboardUpdate[];
}

/**
 * Live metrics: publishers' application data and the server's own figures.
 * Raw updates travel through the pub/sub; each process merges them into
 * batches for the subscribers connected to it.
 */
export interface DashboardService {
  /** Whether `viewer` holds the publisher role (granted in the database or by config). */
  canPublish(viewer: Viewer): Promise<boolean>;
  /** Sends validated updates to every process (including this one). */
  publish(updates: MetricUpdate[]): Promise<void>;
  /** Current values, in the order of `keys`; null for a key nothing was published to. */
  current(keys: readonly string[]): (MetricValue | null)[];
  /** Recent points of a key, oldest first, no older than `sinceMs` ago (bounded by the history window). */
  history(key: string, sinceMs: number): MetricPoint[];
  /** Batches for exactly these keys; subscribers with the same key set share each batch. */
  subscribe(keys: readonly string[]): AsyncIterableIterator<DashboardBatch>;
  /** A live chat message reached a subscriber's stream this long after it was stored (delivery latency). */
  observeDelivery(latencyMs: number): void;
  /** A message was stored by this process (messages per second, active rooms). */
  messageSent(roomId: string): void;
}

/**
 * Creates notifications from chat activity and routes them (in-app, Web Push,
 * email digest). The hooks return at once: the work runs after the response,
 * and failures are logged, never thrown at the caller.
 */
export interface NotificationService {
  /** A message was stored: notifies mentioned members and the other member of a direct room. */
  onMessage(message: MessageEvent): void;
  /** `userIds` were added to a room by `by`. */
  onMembersAdded(room: { id: string; name: string }, userIds: readonly string[], by: UserSummary): void;
  /** `userId` read the room up to `seq`: their notifications for those messages become read. */
  onRoomRead(roomId: string, userId: string, seq: number): void;
  /** The VAPID public key browsers subscribe with (applicationServerKey); null when push is off. */
  readonly pushPublicKey: string | null;
  /** Why an endpoint cannot be used for Web Push, or null when it can. */
  checkPushEndpoint(endpoint: string): string | null;
  /** How long an important notification may stay unread before the email digest, unless a user chose otherwise. */
  readonly defaultDigestDelayMs: number;
  /** Whether the server can send email digests (an SMTP server is configured). */
  readonly emailEnabled: boolean;
}

/**
 * Operational counters the schema reports to the runtime, which exposes them
 * (Prometheus, /metrics); the schema never sees the metrics library.
 */
export interface OperationalMetrics {
  /** sendMessage stored a new message and published it (not an idempotent retry). */
  messagePublished(): void;
}

/** What is counted against a rate limit: per address for sign-in and sign-up, per user otherwise. */
export type RateLimitedAction =
  | 'signInIp'
  | 'signInEmail'
  | 'signUpIp'
  | 'sendMessage'
  | 'setTyping'
  | 'publishMetrics'
  | 'upload'
  | 'docUpdate'
  | 'docAwareness';

/** A refusal: the caller may try again after this many seconds. */
export interface RateLimitExceeded {
  retryAfterSeconds: number;
}

/**
 * Counts uses of an action per key (a user id, an address, an email) in fixed
 * windows; implemented by the runtime (in memory, or Redis shared by every
 * process). Configured limits live there; the schema only names the action.
 */
export interface RateLimiter {
  /** Counts one use; null when allowed, otherwise how long to wait. */
  consume(action: RateLimitedAction, key: string): Promise<RateLimitExceeded | null>;
  /** Whether `key` is over the limit now, without counting a use. */
  peek(action: RateLimitedAction, key: string): Promise<RateLimitExceeded | null>;
  /** Forgets the uses counted for `key`. */
  reset(action: RateLimitedAction, key: string): Promise<void>;
}

/** The document an awareness update or subscription is about. */
export interface DocRef {
  id: string;
  roomId: string;
}

/** What became of an awareness update: applied and shared, not an awareness update, or naming a Yjs client of another user. */
export type DocAwarenessResult = 'applied' | 'malformed' | 'foreign-client';

/**
 * Who is in a document and where their cursor is (y-protocols awareness).
 * Each process keeps a copy per followed document in memory; updates travel
 * over the pub/sub. States expire without renewal and are removed when
 * their user goes offline or leaves the room.
 */
export interface DocAwarenessService {
  /** Checks an update from `user`, stamps each state with the user, applies it and shares it with every process. */
  apply(doc: DocRef, update: Uint8Array, user: UserSummary): Promise<DocAwarenessResult>;
  /** Awareness updates: first every current state (always, possibly none), then each change. Ends on `signal`. */
  subscribe(doc: DocRef, signal: AbortSignal): Promise<AsyncIterableIterator<Uint8Array>>;
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
  dashboard: DashboardService;
  notifications: NotificationService;
  metrics: OperationalMetrics;
  rateLimiter: RateLimiter;
  docAwareness: DocAwarenessService;
}

/** What every resolver receives, over HTTP and over WebSocket alike. */
export interface Context extends Services {
  viewer: Viewer | null;
  /** The client's address (after trusted proxies), for per-address rate limits; null when unknown. */
  clientIp: string | null;
  /** Batching loaders, fresh for each operation. */
  loaders: Loaders;
}
