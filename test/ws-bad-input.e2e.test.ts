import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { closeCodeOf, collect, gql, signUp, wsClient, type TestUser } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** A raw graphql-transport-ws socket, optionally past connection_ack. */
async function open(url: string, token?: string) {
  const ws = new WebSocket(url, 'graphql-transport-ws');
  const closed = closeCodeOf(ws);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  if (token) {
    const acked = new Promise((resolve) => ws.on('message', (d) => JSON.parse(d.toString()).type === 'connection_ack' && resolve(true)));
    ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    await acked;
  }
  return { ws, closed };
}

describe('bad input over the WebSocket', () => {
  let t: TestServer;
  let ana: TestUser;
  let roomId: string;

  beforeAll(async () => {
    t = await startTestServer('pglite');
    ana = await signUp(t.url, 'Ana');
    roomId = (await gql(t.url, `mutation { createRoom(input: { name: "Fuzz" }) { id } }`, {}, ana.token)).createRoom.id;
    await gql(t.url, `mutation ($i: SendMessageInput!) { sendMessage(input: $i) { seq } }`, { i: { roomId, body: 'kept', clientId: 'kept' } }, ana.token);
  });
  afterAll(async () => t?.dispose());

  /** The server is still up and serves a new client, and what was stored is unchanged. */
  async function stillHealthy() {
    const client = wsClient(t.wsUrl, ana.token);
    const history = collect(client, `subscription ($r: ID!) { messageAdded(roomId: $r, afterSeq: 0) { body } }`, { r: roomId });
    expect((await history.waitFor(1)).map((v) => v.messageAdded.body)).toEqual(['kept']);
    await client.dispose();
    expect(await t.server.services.db.message.count({ where: { roomId } })).toBe(1);
  }

  it('closes with 4400 on a frame that is not JSON, or of an unknown type', async () => {
    for (const frame of ['{not json', JSON.stringify({ type: 'launch_missiles' }), JSON.stringify([1, 2, 3]), '""']) {
      const { ws, closed } = await open(t.wsUrl, ana.token);
      ws.send(frame);
      expect((await closed).code).toBe(4400);
    }
    await stillHealthy();
  });

  it('closes with 1009 on a frame larger than the limit', async () => {
    const { ws, closed } = await open(t.wsUrl, ana.token);
    ws.on('error', () => {});
    ws.send(JSON.stringify({ id: 'big', type: 'subscribe', payload: { query: `{ me { id } }`, variables: { pad: 'x'.repeat(300 * 1024) } } }));
    expect((await closed).code).toBe(1009);
    await stillHealthy();
  });

  it('closes with 4401 on subscribe before connection_init, 4408 without connection_init, 4409 on a reused id', async () => {
    const early = await open(t.wsUrl);
    early.ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }' } }));
    expect((await early.closed).code).toBe(4401);

    const silent = await open(t.wsUrl);
    expect((await silent.closed).code).toBe(4408); // graphql-ws waits 3 s for connection_init

    const dup = await open(t.wsUrl, ana.token);
    const subscribe = JSON.stringify({ id: 'same', type: 'subscribe', payload: { query: 'subscription ($r: ID!) { typing(roomId: $r) { roomId } }', variables: { r: roomId } } });
    dup.ws.send(subscribe);
    dup.ws.send(subscribe);
    expect((await dup.closed).code).toBe(4409);
    await stillHealthy();
  });

  it('survives random frames: every one is answered or closes the socket with a protocol code, never a crash', async () => {
    const frame = fc.oneof(
      fc.string(),
      fc.json(),
      fc.record({
        type: fc.constantFrom('connection_init', 'subscribe', 'complete', 'ping', 'pong', 'next', 'error', 'nonsense'),
        id: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
        payload: fc.oneof(
          fc.jsonValue(),
          fc.record({ query: fc.oneof(fc.string(), fc.constant('subscription { presenceChanged { status } }'), fc.constant('{ me { id } }')), variables: fc.jsonValue() }),
        ),
      }).map((m) => JSON.stringify(m)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 5 }), fc.boolean(), async (frames, authenticated) => {
        const { ws, closed } = await open(t.wsUrl, authenticated ? ana.token : undefined);
        ws.on('error', () => {});
        for (const f of frames) if (ws.readyState === WebSocket.OPEN) ws.send(f);
        await new Promise((r) => setTimeout(r, 30));
        if (ws.readyState === WebSocket.OPEN) ws.close(1000);
        const { code } = await closed;
        // Normal close, or one of graphql-ws' protocol codes; 1006 would mean the server dropped the socket.
        return code === 1000 || code === 1005 || (code >= 4400 && code <= 4499);
      }),
      { numRuns: 120 },
    );
    await stillHealthy();
  }, 120_000);
});
