/**
 * Reading the load tests' environment variables (k6 passes them as
 * `__ENV`, set with `-e NAME=value` or the process environment). Pure: the
 * caller hands the variables in, so vitest can check the parsing.
 */

/** Environment variables, as k6's `__ENV` or Node's `process.env` hold them. */
export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** An integer variable within bounds; a bad value throws, naming the variable, so a typo cannot run a different test. */
export function intEnv(env: Env, name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
  const text = raw(env, name);
  if (text === undefined) return fallback;
  if (!/^-?\d+$/.test(text)) throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (bounds.min !== undefined && value < bounds.min) throw new Error(`${name} must be at least ${bounds.min}, got ${value}`);
  if (bounds.max !== undefined && value > bounds.max) throw new Error(`${name} must be at most ${bounds.max}, got ${value}`);
  return value;
}

/** A decimal variable within bounds (e.g. a share between 0 and 1). */
export function numberEnv(env: Env, name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
  const text = raw(env, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(text)}`);
  if (bounds.min !== undefined && value < bounds.min) throw new Error(`${name} must be at least ${bounds.min}, got ${value}`);
  if (bounds.max !== undefined && value > bounds.max) throw new Error(`${name} must be at most ${bounds.max}, got ${value}`);
  return value;
}

/** A string variable. */
export function stringEnv(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

const DURATION = /^(\d+(\.\d+)?(ms|s|m|h))+$/;

/** A duration in k6's notation (`30s`, `5m`, `1h30m`, `500ms`), returned as written for k6 options. */
export function durationEnv(env: Env, name: string, fallback: string): string {
  const text = raw(env, name) ?? fallback;
  if (!DURATION.test(text)) throw new Error(`${name} must be a duration such as 30s, 5m or 1h30m, got ${JSON.stringify(text)}`);
  return text;
}

/** Milliseconds in a k6-style duration string. */
export function durationMs(text: string): number {
  if (!DURATION.test(text)) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  const factor: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  // exec in a loop rather than matchAll: older k6 JavaScript engines lack matchAll.
  for (let m = part.exec(text); m !== null; m = part.exec(text)) total += Number(m[1]) * (factor[m[2] as string] as number);
  return total;
}

/** Where the API is. */
export interface Endpoints {
  /** GraphQL over HTTP, e.g. `http://localhost:4000/graphql`. */
  httpUrl: string;
  /** graphql-transport-ws, e.g. `ws://localhost:4000/graphql`. */
  wsUrl: string;
}

/**
 * `BASE_URL` is the API origin (default `http://localhost:4000`); GraphQL
 * lives at `/graphql` on it. `WS_URL` defaults to the same origin with
 * `ws:`/`wss:`, and is only needed when WebSockets go through another host.
 */
export function endpoints(env: Env): Endpoints {
  const base = stringEnv(env, 'BASE_URL', 'http://localhost:4000').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(base)) throw new Error(`BASE_URL must start with http:// or https://, got ${JSON.stringify(base)}`);
  const httpUrl = base.endsWith('/graphql') ? base : `${base}/graphql`;
  const wsUrl = stringEnv(env, 'WS_URL', httpUrl.replace(/^http/, 'ws'));
  if (!/^wss?:\/\//.test(wsUrl)) throw new Error(`WS_URL must start with ws:// or wss://, got ${JSON.stringify(wsUrl)}`);
  return { httpUrl, wsUrl };
}
