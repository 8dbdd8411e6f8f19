import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, gql, http, signUp, sleep, wsClient, type TestUser } from './helpers/client.ts';
import { redisServerInstalled, startOwnRedis, type OwnRedis } from './helpers/redis.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { seq } }`;
const SUBSCRIBE = `subscription ($roomId: ID!, $afterSeq: Int) { messageAdded(roomId: $roomId, afterSeq: $afterSeq) { seq body } }`;

// In CI redis-server must be there (the helper throws); elsewhere the case is skipped with a message.
const canRun = redisServerInstalled();

// With sharing on, messageAdded runs on the room's feed; off, one stream per subscriber (the path of viewer-dependent selections).
describe.skipIf(!canRun).each(['on', 'off'])('a Redis restart under a running API (FANOUT_SHARING=%s)', (sharing) => {
  let redis: OwnRedis;
  let t: TestServer;
  let ana: TestUser;
  let roomId: string;
  const clients: { dispose(): unknown }[] = [];

  beforeAll(async () => {
    redis = await startOwnRedis();
    t = await startTestServer('pglite', { env: { REDIS_URL: redis.url, FANOUT_SHARING: sharing } });
    ana = await signUp(t.url, 'Ana');
    roomId = (await gql(t.url, `mutation { createRoom(input: { name: "Outage" }) { id } }`, {}, ana.token)).createRoom.id;
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await t?.dispose();
    await redis?.dispose();
  });

  it('keeps accepting messages while Redis is down, and a live subscriber gets every one, in order, as soon as Redis is back', async () => {
    const ws = wsClient(t.wsUrl, ana.token);
    clients.push(ws);
    const seen = collect(ws, SUBSCRIBE, { roomId, afterSeq: 0 });
    await gql(t.url, SEND, { input: { roomId, body: 'before', clientId: 'before' } }, ana.token);
    await seen.waitFor(1);

    const quietRoomId = (await gql(t.url, `mutation { createRoom(input: { name: "Quiet" }) { id } }`, {}, ana.token)).createRoom.id;
    const ben = await signUp(t.url, 'Ben');
    await gql(t.url, `mutation ($r: ID!) { joinRoom(roomId: $r) { id } }`, { r: roomId }, ben.token);
    const benWs = wsClient(t.wsUrl, ben.token);
    clients.push(benWs);
    const benSees = collect(benWs, SUBSCRIBE, { roomId, afterSeq: 0 });
    await benSees.waitFor(1); // live before the outage
    await redis.kill();
    // Membership changes are stored and answered during the outage (their events are lost)...
    const created = await http(t.url, `mutation { createRoom(input: { name: "During" }) { id } }`, {}, ana.token);
    expect(created.body.errors).toBeUndefined();
    const left = await http(t.url, `mutation ($r: ID!) { leaveRoom(roomId: $r) }`, { r: roomId }, ben.token);
    expect(left.body).toMatchObject({ data: { leaveRoom: true } });
    // Stored and acknowledged even though the event cannot be published now.
    for (const body of ['during-1', 'during-2']) {
      const res = await http(t.url, SEND, { input: { roomId, body, clientId: body } }, ana.token);
      expect(res.body.errors).toBeUndefined();
    }
    const ready = await fetch(t.url.replace('/graphql', '/readyz'));
    expect(ready.status).toBe(503);
    // What cannot work without Redis says so with a retryable code, not a masked error.
    const typing = await http(t.url, `mutation ($r: ID!) { setTyping(roomId: $r, isTyping: true) }`, { r: roomId }, ana.token);
    expect(typing.body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    // A subscription that needs a new broker subscription (a room nobody on
    // this process follows yet) is refused with a retryable code...
    const lateWs = wsClient(t.wsUrl, ana.token);
    clients.push(lateWs);
    const refused = collect(lateWs, SUBSCRIBE, { roomId: quietRoomId });
    await refused.ended(15_000);
    expect(JSON.stringify(refused.errors)).toContain('UNAVAILABLE');
    // ...while one joining the room's running feed is accepted, and catches up once Redis is back
    // (a stream of its own needs the broker, and is refused the same way).
    const joined = collect(lateWs, SUBSCRIBE, { roomId, afterSeq: 1 });
    if (sharing === 'off') {
      await joined.ended(15_000);
      expect(JSON.stringify(joined.errors)).toContain('UNAVAILABLE');
    }

    await redis.restart();
    // Wait until the API reports Redis reachable again (both connections back).
    await untilReady(t.url);
    // The messages stored during the outage arrive without waiting for another message.
    await seen.waitFor(3, 5000);
    await gql(t.url, SEND, { input: { roomId, body: 'after', clientId: 'after' } }, ana.token);
    const values = await seen.waitFor(4, 15_000);
    expect(values.map((v) => [v.messageAdded.seq, v.messageAdded.body])).toEqual([
      [1, 'before'],
      [2, 'during-1'],
      [3, 'during-2'],
      [4, 'after'],
    ]);
    expect(seen.errors).toEqual([]);
    if (sharing === 'on') expect((await joined.waitFor(3, 5000)).map((v) => v.messageAdded.seq)).toEqual([2, 3, 4]);
    // ...and membership is re-checked once Redis is back: Ben, who left, gets nothing more.
    await benSees.ended(5000);
    expect(benSees.completed).toBe(true);
    expect(benSees.errors).toEqual([]);
    expect(benSees.values.map((v) => v.messageAdded.seq)).toEqual([1]);
    if (sharing === 'on') expect(joined.errors).toEqual([]);
  });
});

async function untilReady(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await fetch(url.replace('/graphql', '/readyz'))).status === 200) return;
    await sleep(100);
  }
  throw new Error('the API did not report ready after Redis came back');
}
