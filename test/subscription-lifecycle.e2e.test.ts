import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryPubSub } from '../api/pubsub/index.ts';
import type { PubSub } from '../schema/events.ts';
import { collect, gql, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** The in-process pub/sub, counting subscriptions that are open at the broker. */
function countingPubSub(): { pubsub: PubSub; open(): number } {
  const inner = createMemoryPubSub();
  let open = 0;
  const pubsub: PubSub = {
    publish: inner.publish.bind(inner),
    onReconnect: (listener) => inner.onReconnect(listener),
    close: () => inner.close(),
    subscribe: (async (...args: unknown[]) => {
      const iterator = await (inner.subscribe as (...a: unknown[]) => Promise<AsyncIterableIterator<unknown>>)(...args);
      open++;
      const release = iterator.return!.bind(iterator);
      let released = false;
      iterator.return = (value?: unknown) => {
        if (!released) {
          released = true;
          open--;
        }
        return release(value);
      };
      return iterator;
    }) as PubSub['subscribe'],
  };
  return { pubsub, open: () => open };
}

describe('subscription lifecycle', () => {
  const counting = countingPubSub();
  let t: TestServer;
  let ana: TestUser;
  let roomId: string;

  beforeAll(async () => {
    t = await startTestServer('pglite', { deps: { pubsub: counting.pubsub } });
    ana = await signUp(t.url, 'Ana');
    roomId = (await gql(t.url, `mutation { createRoom(input: { name: "Quiet" }) { id } }`, {}, ana.token)).createRoom.id;
  });
  afterAll(async () => t?.dispose());

  it('unsubscribing from a quiet room releases its pub/sub subscriptions at once, without waiting for an event', async () => {
    const ws = wsClient(t.wsUrl, ana.token);
    await new Promise((r) => ws.on('connected', r));
    await sleep(100);
    const baseline = counting.open();
    const subs = [
      collect(ws, `subscription ($r: ID!) { messageAdded(roomId: $r) { seq } }`, { r: roomId }),
      collect(ws, `subscription ($r: ID!) { messageAdded(roomId: $r, afterSeq: 0) { seq } }`, { r: roomId }),
      collect(ws, `subscription ($r: ID!) { typing(roomId: $r) { users { id } } }`, { r: roomId }),
      collect(ws, `subscription ($r: ID!) { readReceipts(roomId: $r) { lastReadSeq } }`, { r: roomId }),
      collect(ws, `subscription { presenceChanged { status } }`),
    ];
    // messageAdded streams of one room share a feed (its events and member
    // changes): 2 for both; typing and receipts listen for the member leaving
    // too: 2 each; presence 1.
    await until(() => counting.open() === baseline + 7, 5000, () => `open: ${counting.open() - baseline}`);
    for (const sub of subs) sub.dispose();
    await until(() => counting.open() === baseline, 1000, () => `still open after unsubscribing: ${counting.open() - baseline}`);
    await ws.dispose();
  });

  it('leaving the room ends the member’s room subscriptions and releases them', async () => {
    const ben = await signUp(t.url, 'Ben');
    await gql(t.url, `mutation ($r: ID!) { joinRoom(roomId: $r) { id } }`, { r: roomId }, ben.token);
    const ws = wsClient(t.wsUrl, ben.token);
    await new Promise((r) => ws.on('connected', r));
    await sleep(100);
    const baseline = counting.open();
    const messages = collect(ws, `subscription ($r: ID!) { messageAdded(roomId: $r) { seq } }`, { r: roomId });
    const typing = collect(ws, `subscription ($r: ID!) { typing(roomId: $r) { users { id } } }`, { r: roomId });
    await until(() => counting.open() === baseline + 4, 5000);
    await gql(t.url, `mutation ($r: ID!) { leaveRoom(roomId: $r) }`, { r: roomId }, ben.token);
    await messages.ended(2000);
    await typing.ended(2000);
    expect(messages.completed && typing.completed).toBe(true);
    await until(() => counting.open() === baseline, 1000, () => `still open after leaving: ${counting.open() - baseline}`);
    await ws.dispose();
  });
});
