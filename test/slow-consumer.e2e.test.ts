import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MessageEvent } from '../schema/events.ts';
import { collect, gql, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SUBSCRIBE = `subscription ($roomId: ID!) { messageAdded(roomId: $roomId) { seq body } }`;

describe('a client that stops reading', () => {
  let t: TestServer;
  let ana: TestUser;
  let roomId: string;

  beforeAll(async () => {
    t = await startTestServer('pglite', { env: { SUBSCRIPTION_QUEUE_LIMIT: '200' } });
    ana = await signUp(t.url, 'Ana');
    roomId = (await gql(t.url, `mutation { createRoom(input: { name: "Busy" }) { id } }`, {}, ana.token)).createRoom.id;
  });
  afterAll(async () => t?.dispose());

  it('is cut off with a retryable close code once its queue is full, while other subscribers get everything', async () => {
    const healthy = wsClient(t.wsUrl, ana.token);
    const healthySees = collect(healthy, SUBSCRIBE, { roomId });

    const slow = new WebSocket(t.wsUrl, 'graphql-transport-ws');
    let nexts = 0;
    let closed: { code: number; reason: string } | undefined;
    slow.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'connection_ack') {
        slow.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIBE, variables: { roomId } } }));
      }
      if (message.type === 'next') nexts++;
    });
    slow.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
    await new Promise((r) => slow.once('open', r));
    slow.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${ana.token}` } }));
    await sleep(500);
    slow.pause(); // stops reading: the kernel buffers fill, then the server's queue

    // 5,000 events of 4 KB (20 MB) published straight to the room: more than
    // loopback socket buffers hold, so the slow client's queue overflows.
    const total = 5000;
    const body = 'x'.repeat(4000);
    for (let seq = 1; seq <= total; seq++) {
      const event: MessageEvent = {
        id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
        roomId,
        seq,
        body,
        clientId: `bulk-${seq}`,
        createdAt: new Date().toISOString(),
        sender: { id: ana.id, name: 'Ana' },
        attachments: [],
      };
      await t.server.services.pubsub.publish('message:added', roomId, event);
      if (seq % 20 === 0) await sleep(5); // a pace a reading client keeps up with
    }
    await healthySees.waitFor(total, 60_000);
    expect(healthySees.values.at(-1).messageAdded.seq).toBe(total);

    slow.resume();
    await until(() => closed !== undefined, 30_000, () => `slow client not closed; got ${nexts} events`);
    expect(closed!.code).toBe(1013);
    expect(closed!.reason).toMatch(/slow consumer/i);
    expect(nexts).toBeLessThan(total);
    await healthy.dispose();
  }, 120_000);
});
