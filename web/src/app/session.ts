import { browserStorage, createRealtimeClient, type RealtimeClient } from '../client/index.ts';

/** What is kept of a signed-in user in this browser. */
export interface Session {
  token: string;
  user: { id: string; name: string };
}

const SESSION_KEY = 'rt.session';

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

/** The API is the page's own origin (served by it, or proxied by `vite dev`). */
export function apiUrls(location: Location = window.location): { url: string; wsUrl: string } {
  const ws = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return { url: `${location.origin}/graphql`, wsUrl: `${ws}//${location.host}/graphql` };
}

/**
 * One realtime client per signed-in user; its IndexedDB store is per user too,
 * so a second account in the same browser never replays the first one's queue.
 */
export function createSessionClient(session: Session): RealtimeClient {
  const { url, wsUrl } = apiUrls();
  const client = createRealtimeClient({
    url,
    wsUrl,
    getToken: () => loadSession()?.token ?? session.token,
    storage: browserStorage({ idbName: `realtime-chat:${session.user.id}`, maxAge: 7 }),
  });
  return client;
}

/** Signs up or in without a client (no token yet). */
export async function anonymousRequest<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(apiUrls().url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (json.errors?.length) throw new Error(json.errors.map((e) => e.message).join('; '));
  if (!json.data) throw new Error(`Request failed (${res.status})`);
  return json.data;
}
