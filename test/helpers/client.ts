import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T | null;
  errors?: { message: string; extensions?: Record<string, any> }[];
}

/** POSTs one GraphQL operation; returns the HTTP status and the parsed body. */
export async function http<T = Record<string, any>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<{ status: number; body: GraphQLResponse<T> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as GraphQLResponse<T> };
}

/** Like http() but throws on any GraphQL error; returns data. */
export async function gql<T = Record<string, any>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<T> {
  const { body } = await http<T>(url, query, variables, token);
  if (body.errors?.length) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

/** The code of the first error, for asserting expected failures. */
export function errorCode(body: GraphQLResponse): string | undefined {
  return body.errors?.[0]?.extensions?.code;
}

export interface TestUser {
  id: string;
  name: string;
  email: string;
  token: string;
}

let counter = 0;
export async function signUp(url: string, name: string): Promise<TestUser> {
  const email = `${name.toLowerCase()}-${process.pid}-${Date.now()}-${counter++}@example.test`;
  const data = await gql<{ signUp: { token: string; user: { id: string; name: string } } }>(
    url,
    `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id name } } }`,
    { input: { email, name, password: 'correct horse battery' } },
  );
  return { id: data.signUp.user.id, name, email, token: data.signUp.token };
}

/** A graphql-ws client over a real WebSocket; no retries unless asked. */
export function wsClient(wsUrl: string, token: string | undefined, options: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token === undefined ? {} : { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    ...options,
  });
}

/** A live subscription whose results are collected for assertions. */
export interface Collected<T> {
  values: T[];
  errors: unknown[];
  completed: boolean;
  /** Resolves when at least `n` values arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<T[]>;
  /** Resolves once the server acknowledged nothing else is needed: after the error or completion. */
  ended(timeoutMs?: number): Promise<void>;
  dispose(): void;
}

export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): Collected<T> {
  const result: Collected<T> = {
    values: [],
    errors: [],
    completed: false,
    waitFor: (n, timeoutMs = 10_000) => until(() => result.values.length >= n, timeoutMs, () => `expected ${n} values, got ${result.values.length}: ${JSON.stringify(result.errors)}`).then(() => result.values),
    ended: (timeoutMs = 10_000) => until(() => result.completed || result.errors.length > 0, timeoutMs, () => 'subscription did not end'),
    dispose: () => unsubscribe(),
  };
  const unsubscribe = client.subscribe<any>(
    { query, variables },
    {
      next: (value) => {
        if (value.errors?.length) result.errors.push(...value.errors);
        if (value.data) result.values.push(value.data as T);
      },
      error: (error) => {
        result.errors.push(error);
      },
      complete: () => {
        result.completed = true;
      },
    },
  );
  return result;
}

/** Polls `condition` every 10 ms until true or the timeout passes. */
export async function until(condition: () => boolean, timeoutMs = 10_000, describe: () => string = () => 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out: ${describe()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a raw WebSocket and resolves with its close code and reason. */
export function closeCodeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}
