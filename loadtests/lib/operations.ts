/**
 * The GraphQL documents the load tests send, written against
 * `schema/schema.graphql` (the public contract; never server code), and the
 * shapes of their results. Pure (no `k6/*`, no `node:*`).
 */

/** `signUp`: a new account and its token. */
export const SIGN_UP = `mutation LoadSignUp($input: SignUpInput!) { signUp(input: $input) { token user { id } } }`;

/** `signIn`: the token of an existing account (reruns with the same RUN_ID). */
export const SIGN_IN = `mutation LoadSignIn($input: SignInInput!) { signIn(input: $input) { token user { id } } }`;

/** `createRoom`: a public room with the creator as first member. */
export const CREATE_ROOM = `mutation LoadCreateRoom($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;

/** `joinRoom`: idempotent, so a rerun of setup is harmless. */
export const JOIN_ROOM = `mutation LoadJoinRoom($roomId: ID!) { joinRoom(roomId: $roomId) { id } }`;

/** `sendMessage`: only the fields a sender needs back, to keep responses small. */
export const SEND_MESSAGE = `mutation LoadSendMessage($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;

/**
 * `messageAdded`: `createdAt` is selected because the server measures its
 * delivery-latency histogram only for subscriptions that select it.
 */
export const MESSAGE_ADDED = `subscription LoadMessageAdded($roomId: ID!) { messageAdded(roomId: $roomId) { id roomId seq body createdAt } }`;

/** `presenceChanged`: the presence fan-out the churn scenario provokes. */
export const PRESENCE_CHANGED = `subscription LoadPresence { presenceChanged { status user { id } } }`;

/** `dashboard(keys)`: batches of metric changes. */
export const DASHBOARD = `subscription LoadDashboard($keys: [String!]!) { dashboard(keys: $keys) { at updates { key value at } } }`;

/** `publishMetrics`: publisher-only. */
export const PUBLISH_METRICS = `mutation LoadPublish($input: [MetricUpdateInput!]!) { publishMetrics(input: $input) }`;

/** `me`: a cheap authenticated round trip. */
export const ME = `query LoadMe { me { id } }`;

/** A `messageAdded` result. */
export interface MessageAddedData {
  messageAdded: { id: string; roomId: string; seq: number; body: string; createdAt: string };
}

/** A `dashboard` result. */
export interface DashboardData {
  dashboard: { at: string; updates: { key: string; value: number; at: string }[] };
}

/** A `presenceChanged` result. */
export interface PresenceData {
  presenceChanged: { status: 'ONLINE' | 'OFFLINE'; user: { id: string } };
}

/** `signUp`/`signIn` result under either field name. */
export interface AuthData {
  signUp?: { token: string; user: { id: string } };
  signIn?: { token: string; user: { id: string } };
}

/** A GraphQL HTTP response body. */
export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[];
}

/** The `extensions.code` of the first error, if any. */
export function errorCode(response: GraphQLResponse<unknown>): string | undefined {
  return response.errors?.[0]?.extensions?.code;
}

/** Narrows a `next` payload's data to a `messageAdded` message, or undefined for anything else. */
export function messageFrom(data: unknown): MessageAddedData['messageAdded'] | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const message = (data as Partial<MessageAddedData>).messageAdded;
  if (!message || typeof message.seq !== 'number' || typeof message.body !== 'string' || typeof message.roomId !== 'string') return undefined;
  return message;
}

/** Narrows a `next` payload's data to a dashboard batch, or undefined. */
export function batchFrom(data: unknown): DashboardData['dashboard'] | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const batch = (data as Partial<DashboardData>).dashboard;
  if (!batch || typeof batch.at !== 'string' || !Array.isArray(batch.updates)) return undefined;
  return batch;
}
