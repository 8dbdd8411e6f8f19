import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { closeCodeOf, collect, gql, signUp, sleep, wsClient, type TestUser } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** Opens a raw graphql-transport-ws socket and completes connection_init. */
async function rawConnect(url: string, token: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, 'graphql-transport-ws', { headers });
  const closed = closeCodeOf(ws);
  const opened = await Promise.race([new Promise((r) => ws.once('open', () => r('open'))), new Promise((r) => ws.once('unexpected-response', (_req, res) => r(res.statusCode)))]);
  if (opened !== 'open') return { ws, closed, refusedWith: opened as number };
  const acked = new Promise<boolean>((resolve) => {
    ws.on('message', (data) => JSON.parse(data.toString()).type === 'connection_ack' && resolve(true));
    ws.once('close', () => resolve(false));
  });
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  return { ws, closed, acked: await acked };
}

describe('WebSocket limits', () => {
  let t: TestServer;
  let ana: TestUser;
  let roomId: string;

  beforeAll(async () => {
    t = await startTestServer('pglite', {
      env: { WS_MAX_SUBSCRIPTIONS: '3', WS_MAX_CONNECTIONS_PER_USER: '2', NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), CORS_ORIGINS: 'https://chat.example.com' },
    });
    ana = await signUp(t.url, 'Ana');
    roomId = (await gql(t.url, `mutation { createRoom(input: { name: "Limits" }) { id } }`, {}, ana.token)).createRoom.id;
  });
  afterAll(async () => t?.dispose());

  it('refuses a subscription past the per-connection cap and keeps the connection', async () => {
    const ws = wsClient(t.wsUrl, ana.token);
    const subs = [0, 1, 2, 3].map(() => collect(ws, `subscription ($r: ID!) { typing(roomId: $r) { users { id } } }`, { r: roomId }));
    await subs[3]!.ended();
    expect(JSON.stringify(subs[3]!.errors)).toContain('TOO_MANY_SUBSCRIPTIONS');
    await sleep(200);
    expect(subs.slice(0, 3).every((s) => s.errors.length === 0 && !s.completed)).toBe(true);
    // The connection still works: ending one frees a slot.
    subs[0]!.dispose();
    await sleep(200);
    const again = collect(ws, `subscription ($r: ID!) { typing(roomId: $r) { users { id } } }`, { r: roomId });
    await sleep(300);
    expect(again.errors).toEqual([]);
    await ws.dispose();
  });

  it('closes a user’s connection past the per-user cap with 4429', async () => {
    const first = await rawConnect(t.wsUrl, ana.token);
    const second = await rawConnect(t.wsUrl, ana.token);
    expect([first.acked, second.acked]).toEqual([true, true]);
    const third = await rawConnect(t.wsUrl, ana.token);
    expect(third.acked).toBe(false);
    expect((await third.closed).code).toBe(4429);
    first.ws.close();
    await first.closed;
    await sleep(100);
    const fourth = await rawConnect(t.wsUrl, ana.token);
    expect(fourth.acked).toBe(true);
    second.ws.close();
    fourth.ws.close();
  });

  it('refuses upgrades from pages of other origins, and accepts allowed and origin-less clients', async () => {
    const evil = await rawConnect(t.wsUrl, ana.token, { origin: 'https://evil.example.net' });
    expect(evil.refusedWith).toBe(403);
    const allowed = await rawConnect(t.wsUrl, ana.token, { origin: 'https://chat.example.com' });
    expect(allowed.acked).toBe(true);
    allowed.ws.close();
    const sameHost = await rawConnect(t.wsUrl, ana.token, { origin: new URL(t.url).origin });
    expect(sameHost.acked).toBe(true);
    sameHost.ws.close();
  });
});

describe('token expiry on an open socket', () => {
  let t: TestServer;
  afterAll(async () => t?.dispose());

  it('closes the socket with 4403 when its token expires', async () => {
    t = await startTestServer('pglite', { env: { JWT_TTL: '2s' } });
    const ana = await signUp(t.url, 'Ana');
    const started = Date.now();
    const conn = await rawConnect(t.wsUrl, ana.token);
    expect(conn.acked).toBe(true);
    const { code, reason } = await conn.closed;
    expect(code).toBe(4403);
    expect(reason).toMatch(/expired/i);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
