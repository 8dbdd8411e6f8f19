import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { writeTextFrame } from '../api/fanout/feed-hub.ts';

/** The feed's own framing against a real `ws` client, which checks every frame it reads. */
describe('feed frames', () => {
  let wss: WebSocketServer;
  let server: WebSocket;
  let client: WebSocket;
  const received: { text: string; binary: boolean }[] = [];

  beforeAll(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const accepted = once(wss, 'connection');
    client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    client.on('message', (data, binary) => received.push({ text: String(data), binary }));
    [server] = (await accepted) as [WebSocket];
    await once(client, 'open');
  });
  afterAll(async () => {
    client.close();
    wss.close();
  });

  it('arrive as the text messages they encode, whatever their length, between frames ws sends itself', async () => {
    const sizes = [0, 1, 124, 125, 126, 65_535, 65_536, 300_000];
    const expected: string[] = [];
    for (const [i, size] of sizes.entries()) {
      const head = `{"id":"${i}","type":"next","payload":`;
      const tail = `"${'é€x'.repeat(Math.ceil(size / 3)).slice(0, size)}"}`;
      writeTextFrame(server, Buffer.from(head), Buffer.from(tail));
      server.send(`plain ${i}`);
      expected.push(head + tail, `plain ${i}`);
    }
    const deadline = Date.now() + 5000;
    while (received.length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(received.map((m) => m.text)).toEqual(expected);
    expect(received.every((m) => !m.binary)).toBe(true);
    expect(client.readyState).toBe(WebSocket.OPEN);
  });
});
