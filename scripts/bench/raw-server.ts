/**
 * The reference for the benchmark: a bare `ws` server speaking the same
 * graphql-transport-ws frames as the API, without GraphQL, auth, database or
 * pub/sub. connection_init is acked, each `subscribe` is recorded under the
 * room in its variables, and `POST /publish {"roomId","body"}` sends every
 * subscriber of the room the `next` frame the API would send for
 * `messageAdded { id seq body createdAt sender { id name } }`: the payload is
 * serialized once, only the frame around it is built per subscriber. What this
 * delivers is about what Node itself can push through WebSockets here.
 *
 * Prints "RAW ready: http://127.0.0.1:<port>"; exits when its parent goes away.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { GRAPHQL_TRANSPORT_WS } from '../../loadtests/lib/protocol.ts';

interface Subscription {
  socket: WebSocket;
  id: string;
  /** `{"id":"<id>"`: the per-subscriber start of every frame. */
  prefix: string;
}

const rooms = new Map<string, Set<Subscription>>();
const seqs = new Map<string, number>();
const sender = { id: randomUUID(), name: 'Bench sender' };

const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', subscriptions: countSubscriptions() }));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/publish') {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let input: { roomId?: unknown; body?: unknown };
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof input;
    } catch {
      res.writeHead(400).end('{"error":"not JSON"}');
      return;
    }
    if (typeof input.roomId !== 'string' || typeof input.body !== 'string') {
      res.writeHead(400).end('{"error":"roomId and body are required"}');
      return;
    }
    const seq = (seqs.get(input.roomId) ?? 0) + 1;
    seqs.set(input.roomId, seq);
    const message = { id: randomUUID(), seq, body: input.body, createdAt: new Date().toISOString(), sender };
    const sent = publish(input.roomId, message);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: message.id, seq, sent }));
  });
});

function publish(roomId: string, message: object): number {
  const subscriptions = rooms.get(roomId);
  if (!subscriptions) return 0;
  const rest = `,"type":"next","payload":${JSON.stringify({ data: { messageAdded: message } })}}`;
  let sent = 0;
  for (const sub of subscriptions) {
    if (sub.socket.readyState !== sub.socket.OPEN) continue;
    sub.socket.send(sub.prefix + rest);
    sent++;
  }
  return sent;
}

function countSubscriptions(): number {
  let count = 0;
  for (const subs of rooms.values()) count += subs.size;
  return count;
}

const wss = new WebSocketServer({
  server: http,
  path: '/graphql',
  perMessageDeflate: false,
  maxPayload: 256 * 1024,
  handleProtocols: (protocols) => (protocols.has(GRAPHQL_TRANSPORT_WS) ? GRAPHQL_TRANSPORT_WS : false),
});

wss.on('connection', (socket) => {
  if (socket.protocol !== GRAPHQL_TRANSPORT_WS) {
    socket.close(4406, 'Subprotocol not acceptable');
    return;
  }
  let acknowledged = false;
  const mine = new Map<string, { roomId: string; sub: Subscription }>();
  socket.on('message', (data) => {
    let frame: { type?: unknown; id?: unknown; payload?: { variables?: { roomId?: unknown } } };
    try {
      frame = JSON.parse(String(data)) as typeof frame;
    } catch {
      socket.close(4400, 'Invalid message received');
      return;
    }
    switch (frame.type) {
      case 'connection_init':
        if (acknowledged) {
          socket.close(4429, 'Too many initialisation requests');
          return;
        }
        acknowledged = true;
        socket.send('{"type":"connection_ack"}');
        return;
      case 'ping':
        socket.send('{"type":"pong"}');
        return;
      case 'pong':
        return;
      case 'subscribe': {
        const id = frame.id;
        const roomId = frame.payload?.variables?.roomId;
        if (!acknowledged) {
          socket.close(4401, 'Unauthorized');
          return;
        }
        if (typeof id !== 'string' || typeof roomId !== 'string') {
          socket.close(4400, 'Invalid message received');
          return;
        }
        if (mine.has(id)) {
          socket.close(4409, `Subscriber for ${id} already exists`);
          return;
        }
        const sub: Subscription = { socket, id, prefix: `{"id":${JSON.stringify(id)}` };
        mine.set(id, { roomId, sub });
        let subs = rooms.get(roomId);
        if (!subs) rooms.set(roomId, (subs = new Set()));
        subs.add(sub);
        return;
      }
      case 'complete': {
        const entry = typeof frame.id === 'string' ? mine.get(frame.id) : undefined;
        if (entry) {
          rooms.get(entry.roomId)?.delete(entry.sub);
          mine.delete(entry.sub.id);
        }
        return;
      }
      default:
        socket.close(4400, 'Invalid message received');
    }
  });
  socket.on('close', () => {
    for (const { roomId, sub } of mine.values()) rooms.get(roomId)?.delete(sub);
    mine.clear();
  });
});

// An orphan would hold its port and memory: leave with the harness.
process.on('disconnect', () => process.exit(0));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const { port } = http.address() as AddressInfo;
  process.stdout.write(`RAW ready: http://127.0.0.1:${port}\n`);
});
