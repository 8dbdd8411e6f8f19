/**
 * Every pub/sub topic and the shape of what travels on it. Topics are
 * `entity:verb`; the first tuple element scopes the topic (usually a room id),
 * the last is the payload. Payloads are small and self-contained so that a
 * subscriber can resolve its fields without going back to the database.
 */
export interface UserSummary {
  id: string;
  name: string;
}

export interface AttachmentSummary {
  id: string;
  name: string;
  size: number;
  contentType: string;
}

export interface MessageEvent {
  id: string;
  roomId: string;
  seq: number;
  body: string;
  clientId: string;
  /** ISO-8601 */
  createdAt: string;
  sender: UserSummary;
  attachments: AttachmentSummary[];
}

export interface MembershipEvent {
  roomId: string;
  userId: string;
  change: 'joined' | 'left';
}

export interface TypingEvent {
  roomId: string;
  /** Everyone typing in the room now, in the order they started. */
  users: UserSummary[];
}

export interface ReceiptEvent {
  roomId: string;
  user: UserSummary;
  lastReadSeq: number;
  /** ISO-8601 */
  readAt: string;
}

export interface PresenceEvent {
  user: UserSummary;
  status: 'ONLINE' | 'OFFLINE';
  /** ISO-8601; when the user's last connection closed, null while never seen offline. */
  lastSeenAt: string | null;
}

export type NotificationKind = 'MENTION' | 'DIRECT_MESSAGE' | 'ADDED_TO_ROOM';

export interface NotificationEvent {
  id: string;
  userId: string;
  kind: NotificationKind;
  roomId: string;
  roomName: string;
  messageId: string | null;
  messageSeq: number | null;
  actor: UserSummary | null;
  body: string;
  /** ISO-8601 */
  createdAt: string;
}

/** One raw metric update as a publisher (or the server's own sampler) sent it. */
export interface MetricUpdate {
  /** Namespaced key: `app.<name>` (published) or `server.<name>` (built in). */
  key: string;
  value: number;
  /** Milliseconds since the epoch when the value was observed. */
  at: number;
  /** GAUGE: the latest value wins; COUNTER: `value` is an increment and increments sum. */
  kind: 'GAUGE' | 'COUNTER';
  labels?: Record<string, string>;
}

export interface MetricsPublished {
  /** The API process that published, so per-process figures can be combined. */
  source: string;
  updates: MetricUpdate[];
}

/** A Yjs update stored for a document (applyDocUpdate). */
export interface DocUpdateEvent {
  docId: string;
  /** The update's position in the document's history (1, 2, 3, … with no gaps). */
  seq: number;
  /** The Yjs update (v1 encoding), base64. */
  update: string;
  userId: string;
}

/** An awareness update for a document, already checked and stamped with its senders by the process that received it. */
export interface DocAwarenessEvent {
  /** The API process that published it (it applied the update itself already). */
  source: string;
  /** A y-protocols awareness update, base64; empty for a `query`. */
  update: string;
  /** `update`: apply it; `query`: a process just started following the document and asks for the current states. */
  kind: 'update' | 'query';
}

export type Events = {
  'message:added': [roomId: string, message: MessageEvent];
  'member:changed': [roomId: string, event: MembershipEvent];
  'typing:changed': [roomId: string, state: TypingEvent];
  'receipt:updated': [roomId: string, receipt: ReceiptEvent];
  /** Every presence change; subscribers keep those of users they share a room with. */
  'presence:changed': [event: PresenceEvent];
  /** A notification was stored for a user. */
  'notification:added': [userId: string, notification: NotificationEvent];
  /** Raw metric updates, one event per publishMetrics call; every process batches them for its own subscribers. */
  'metric:updated': [published: MetricsPublished];
  /** A document update was stored; subscribers forward it to their clients. */
  'doc:update': [docId: string, event: DocUpdateEvent];
  /** Cursor and presence states of a document's editors; every process applies them to its own copy. */
  'doc:awareness': [docId: string, event: DocAwarenessEvent];
};

export type Topic = keyof Events;
/** The scope of a topic: all tuple elements but the payload. */
export type TopicScope<K extends Topic> = Events[K] extends [...infer S, unknown] ? S : never;
export type TopicPayload<K extends Topic> = Events[K] extends [...unknown[], infer P] ? P : never;

/**
 * Publish/subscribe over typed topics. Implemented in-process and over Redis;
 * both deliver a topic's events to each subscriber in publish order.
 */
export interface PubSub {
  publish<K extends Topic>(topic: K, ...args: Events[K]): Promise<void>;
  /**
   * Resolves once the subscription is active at the broker, so a caller can
   * read a backlog afterwards without missing events published in between.
   * Calling `return()` on the iterator unsubscribes.
   */
  subscribe<K extends Topic>(topic: K, ...scope: TopicScope<K>): Promise<AsyncIterableIterator<TopicPayload<K>>>;
  /**
   * Calls `listener` each time the connection to the broker is back after an
   * outage (with every subscription active again); events published meanwhile
   * are lost, so subscribers with a durable source re-read it. Returns the
   * function that removes the listener. In-process pub/sub never calls it.
   */
  onReconnect(listener: () => void): () => void;
  close(): Promise<void>;
}
