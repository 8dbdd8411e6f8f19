import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { collect, gql, signUp, wsClient, type GraphQLResponse, type TestUser } from './helpers/client.ts';
import { redisAvailable, redisClient, REDIS_TEST_URL } from './helpers/redis.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const redisUp = await redisAvailable();

const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
const SIGN_IN = `mutation ($input: SignInInput!) { signIn(input: $input) { token } }`;
const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const PASSWORD = 'correct horse battery';

interface Reply {
  status: number;
  headers: Headers;
  body: GraphQLResponse;
}

/** POSTs a raw body to /graphql; `from` is the client address a trusted proxy reports. */
async function post(url: string, body: string, options: { token?: string; from?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.from ? { 'x-forwarded-for': options.from } : {}),
      ...options.headers,
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as GraphQLResponse) : {} };
}

const op = (url: string, query: string, variables: Record<string, unknown> = {}, options: Parameters<typeof post>[2] = {}) =>
  post(url, JSON.stringify({ query, variables }), options);

const codes = (reply: Reply) => (reply.body.errors ?? []).map((e) => e.extensions?.code);

function captureLogs() {
  const lines: Record<string, any>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { log, lines };
}

describe('abuse of the HTTP API', () => {
  let t: TestServer;
  let ana: TestUser;
  let ben: TestUser;
  let roomId: string;
  const logs = captureLogs();
  const clients: { dispose(): unknown }[] = [];

  /** Rows that an abusive request must never add or remove. */
  async function stored() {
    const db = t.server.services.db;
    const [users, messages, uploads, rooms] = await Promise.all([db.user.count(), db.message.count(), db.upload.count(), db.room.count()]);
    return { users, messages, uploads, rooms };
  }

  /** A new client, right after the abuse, is served as usual. */
  async function serverStillServes() {
    const data = await gql(t.url, `{ me { id } }`, {}, ben.token);
    expect(data.me.id).toBe(ben.id);
  }

  beforeAll(async () => {
    t = await startTestServer('pglite', {
      env: {
        // One trusted proxy: tests pose as different clients with X-Forwarded-For.
        TRUST_PROXY: '1',
        CORS_ORIGINS: 'https://chat.example.com',
        RATE_LIMIT_SEND_MESSAGE: '5/1m',
        RATE_LIMIT_SIGN_IN_IP: '5/1m',
        RATE_LIMIT_SIGN_IN_EMAIL: '3/15m',
        RATE_LIMIT_UPLOAD: '3/1m',
        GRAPHQL_MAX_BODY_BYTES: String(64 * 1024),
      },
      deps: { log: logs.log },
    });
    [ana, ben] = await Promise.all([signUp(t.url, 'Ana'), signUp(t.url, 'Ben')]);
    roomId = (await gql(t.url, CREATE_ROOM, { input: { name: 'Abuse', memberIds: [ben.id] } }, ana.token)).createRoom.id;
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await t?.dispose();
  });

  it('answers a malformed JSON body with 400', async () => {
    const before = await stored();
    for (const body of ['{"query":', 'not json', '[1,2', '{"query": 42}', '']) {
      const reply = await post(t.url, body);
      expect(reply.status, body).toBe(400);
      expect(reply.body.errors?.length, body).toBeGreaterThan(0);
    }
    expect(await stored()).toEqual(before);
    await serverStillServes();
  });

  it('refuses a 200-deep query with QUERY_TOO_COMPLEX', async () => {
    const reply = await op(t.url, `{ ${'rooms { members { '.repeat(100)} id ${'} } '.repeat(100)} }`, {}, { token: ana.token });
    expect(reply.body.data).toBeUndefined();
    expect(codes(reply)).toContain('QUERY_TOO_COMPLEX');
    expect(reply.body.errors?.map((e) => e.message)).toContainEqual(expect.stringMatching(/depth limit of 16 exceeded/));
    await serverStillServes();
  });

  it('refuses 500 aliases, and 20 aliases, with QUERY_TOO_COMPLEX', async () => {
    const before = await stored();
    const many = await op(t.url, `mutation { ${Array.from({ length: 500 }, (_, i) => `m${i}: sendMessage(input: {roomId: "${roomId}", body: "x", clientId: "alias-${i}"}) { id }`).join(' ')} }`, {}, { token: ana.token });
    expect(codes(many)).toEqual(['QUERY_TOO_COMPLEX']);
    const some = await op(t.url, `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: me { id }`).join(' ')} }`, {}, { token: ana.token });
    expect(codes(some)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(some.body.errors?.[0]?.message).toMatch(/Aliases limit of 15 exceeded, found 20/);
    expect(await stored()).toEqual(before);
    await serverStillServes();
  });

  it('stops parsing a document with a huge token count', async () => {
    const reply = await op(t.url, `{ me { ${'id '.repeat(20_000)} } }`, {}, { token: ana.token });
    expect(codes(reply)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(reply.body.errors?.[0]?.message).toBe('Token limit of 2000 exceeded.');
    await serverStillServes();
  });

  it('answers a flood of sendMessage past the limit with RATE_LIMITED and 429, storing nothing more', async () => {
    const before = await stored();
    const replies: Reply[] = [];
    for (let i = 0; i < 8; i++) replies.push(await op(t.url, SEND, { input: { roomId, body: `flood ${i}`, clientId: `flood-${i}` } }, { token: ana.token }));
    expect(replies.slice(0, 5).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (const refused of replies.slice(5)) {
      expect(refused.status).toBe(429);
      expect(codes(refused)).toEqual(['RATE_LIMITED']);
      const retryAfter = refused.body.errors?.[0]?.extensions?.retryAfter;
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.headers.get('retry-after')).toBe(String(retryAfter));
      expect(refused.body.data).toBeNull();
    }
    const after = await stored();
    expect(after).toEqual({ ...before, messages: before.messages + 5 });
    const seqs = await t.server.services.db.message.findMany({ where: { roomId }, select: { body: true }, orderBy: { seq: 'asc' } });
    expect(seqs.map((m) => m.body)).toEqual(['flood 0', 'flood 1', 'flood 2', 'flood 3', 'flood 4']);
    // The limit is Ana's: Ben still sends.
    const bens = await op(t.url, SEND, { input: { roomId, body: 'from Ben', clientId: 'ben-1' } }, { token: ben.token });
    expect(bens.status).toBe(200);
    const scrape = await (await fetch(new URL('/metrics', t.url))).text();
    expect(scrape).toMatch(/^realtime_api_rate_limited_total\{action="sendMessage"\} 3$/m);
    await serverStillServes();
  });

  it('refuses sign-in brute force from one address with RATE_LIMITED, then even the right password', async () => {
    const before = await stored();
    const from = '203.0.113.10';
    const attempts: Reply[] = [];
    // Different emails, so that only the per-address limit (5 a minute) applies.
    for (let i = 0; i < 5; i++) attempts.push(await op(t.url, SIGN_IN, { input: { email: `nobody-${i}@example.test`, password: 'guess' } }, { from }));
    expect(attempts.map(codes)).toEqual(Array(5).fill(['UNAUTHENTICATED']));
    const refused = await op(t.url, SIGN_IN, { input: { email: ana.email, password: PASSWORD } }, { from });
    expect(refused.status).toBe(429);
    expect(codes(refused)).toEqual(['RATE_LIMITED']);
    expect(refused.body.errors?.[0]?.extensions?.retryAfter).toBeGreaterThanOrEqual(1);
    // Another address is not affected.
    const elsewhere = await op(t.url, SIGN_IN, { input: { email: ana.email, password: PASSWORD } }, { from: '203.0.113.11' });
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.body.data?.signIn.token).toEqual(expect.any(String));
    expect(await stored()).toEqual(before);
  });

  it('locks an email after repeated wrong passwords from many addresses', async () => {
    const victim = await signUp(t.url, 'Victim');
    for (let i = 0; i < 3; i++) {
      const wrong = await op(t.url, SIGN_IN, { input: { email: victim.email, password: 'wrong password' } }, { from: `198.51.100.${i}` });
      expect(codes(wrong)).toEqual(['UNAUTHENTICATED']);
    }
    const locked = await op(t.url, SIGN_IN, { input: { email: victim.email, password: PASSWORD } }, { from: '198.51.100.99' });
    expect(codes(locked)).toEqual(['RATE_LIMITED']);
    // Other accounts sign in as usual.
    const other = await op(t.url, SIGN_IN, { input: { email: ben.email, password: PASSWORD } }, { from: '198.51.100.98' });
    expect(other.status).toBe(200);
  });

  it('answers an upload flood with 429 and Retry-After, storing nothing more', async () => {
    const origin = new URL(t.url).origin;
    const upload = () => {
      const form = new FormData();
      form.append('file', new Blob([randomBytes(64)], { type: 'application/octet-stream' }), 'noise.bin');
      return fetch(`${origin}/uploads`, { method: 'POST', body: form, headers: { authorization: `Bearer ${ben.token}` } });
    };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await upload()).status);
    expect(statuses).toEqual([201, 201, 201]);
    const before = await stored();
    const refused = await upload();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(await stored()).toEqual(before);
    await serverStillServes();
  });

  it('answers an oversize body with 413 before reading it', async () => {
    const before = await stored();
    const body = JSON.stringify({ query: SEND, variables: { input: { roomId, body: 'x'.repeat(100 * 1024), clientId: 'huge' } } });
    const reply = await post(t.url, body, { token: ben.token });
    expect(reply.status).toBe(413);
    expect(codes(reply)).toEqual(['PAYLOAD_TOO_LARGE']);
    // Chunked, without a Content-Length: cut as it passes the limit.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(t.url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write('x'.repeat(8 * 1024));
      req.end();
    });
    expect(chunked).toBe(413);
    expect(await stored()).toEqual(before);
    await serverStillServes();
  });

  it('answers a forged token with 401', async () => {
    const [header, payload] = ben.token.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}`;
    const reply = await op(t.url, `{ me { id } }`, {}, { token: forged });
    expect(reply.status).toBe(401);
    expect(codes(reply)).toEqual(['UNAUTHENTICATED']);
    expect(reply.headers.get('www-authenticate')).toBe('Bearer');
    await serverStillServes();
  });

  it('answers CORS preflights per CORS_ORIGINS', async () => {
    const preflight = (origin: string, path = '/graphql') =>
      fetch(new URL(path, t.url), {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
    const allowed = await preflight('https://chat.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://chat.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    expect((await preflight('https://chat.example.com', '/uploads')).status).toBe(204);

    const refused = await preflight('https://evil.example');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();

    const simple = await op(t.url, `{ me { id } }`, {}, { token: ben.token, headers: { origin: 'https://chat.example.com' } });
    expect(simple.headers.get('access-control-allow-origin')).toBe('https://chat.example.com');
    expect(simple.headers.get('vary')).toMatch(/Origin/);
    const foreign = await op(t.url, `{ me { id } }`, {}, { token: ben.token, headers: { origin: 'https://evil.example' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('sends security headers and a request id on every response', async () => {
    for (const res of [await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' }), await fetch(new URL('/nowhere', t.url))]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    const given = await op(t.url, `{ __typename }`, {}, { headers: { 'x-request-id': 'lb-1234.abc' } });
    expect(given.headers.get('x-request-id')).toBe('lb-1234.abc');
    const unsafe = await op(t.url, `{ __typename }`, {}, { headers: { 'x-request-id': 'a b\u00e9<script>' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('masks an unexpected failure and names the request id in the error and in the log', async () => {
    const spy = vi.spyOn(t.server.services.dashboard, 'current').mockImplementation(() => {
      throw new Error('disk on fire at /var/secret');
    });
    try {
      const reply = await op(t.url, `{ metrics(keys: ["app.x"]) { key } }`, {}, { token: ben.token, headers: { 'x-request-id': 'abuse-req-1' } });
      expect(reply.headers.get('x-request-id')).toBe('abuse-req-1');
      const error = reply.body.errors?.[0];
      expect(error?.message).toBe('Unexpected error.');
      expect(error?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: 'abuse-req-1' });
      expect(JSON.stringify(reply.body)).not.toMatch(/disk on fire/);
      const logged = logs.lines.find((l) => l.requestId === 'abuse-req-1');
      expect(logged?.err?.message).toMatch(/disk on fire/);
    } finally {
      spy.mockRestore();
    }
    await serverStillServes();
  });

  it('gives a masked failure over graphql-ws an id the log names too', async () => {
    const spy = vi.spyOn(t.server.services.dashboard, 'subscribe').mockImplementation(() => {
      throw new Error('broker melted');
    });
    const ws = wsClient(t.wsUrl, ben.token);
    clients.push(ws);
    try {
      const sub = collect(ws, `subscription { dashboard(keys: ["app.x"]) { at } }`);
      await sub.ended();
      const [error] = sub.errors.flat() as { message: string; extensions?: Record<string, unknown> }[];
      expect(error?.message).toBe('Unexpected error.');
      expect(error?.extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      const logged = logs.lines.find((l) => l.requestId === error?.extensions?.requestId);
      expect(logged?.err?.message).toMatch(/broker melted/);
    } finally {
      spy.mockRestore();
    }
  });

  it('holds subscriptions over graphql-ws to the same query limits', async () => {
    const ws = wsClient(t.wsUrl, ben.token);
    clients.push(ws);
    const deep = collect(ws, `subscription { messageAdded(roomId: "${roomId}") { ${Array.from({ length: 20 }, (_, i) => `s${i}: sender { id }`).join(' ')} } }`);
    await deep.ended();
    expect(deep.errors.flat()).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }) })]);
    const long = collect(ws, `subscription { typing(roomId: "${roomId}") { users { ${'id '.repeat(3000)} } } }`);
    await long.ended();
    expect(long.errors.flat()).toEqual([expect.objectContaining({ message: 'Token limit of 2000 exceeded.', extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }) })]);
    // The same socket still serves a well-formed subscription.
    const ok = collect(ws, `subscription ($roomId: ID!) { messageAdded(roomId: $roomId, afterSeq: 0) { seq } }`, { roomId });
    await gql(t.url, SEND, { input: { roomId, body: 'after the refusals', clientId: 'ws-ok' } }, ben.token);
    await ok.waitFor(1);
    expect(ok.errors).toEqual([]);
    ok.dispose();
  });

  it('never answers random documents or bodies with a 5xx or a dropped connection', async () => {
    const before = await stored();
    const words = ['{', '}', '(', ')', '[', ']', ':', '!', '=', '...', '$v', '@include(if: true)', 'query', 'mutation', 'subscription', 'fragment', 'on', 'me', 'id', 'name', 'rooms', 'room', 'members', 'messages', '__typename', '__schema', 'a:', '"s"', '1', 'null', 'true', 'signIn', 'sendMessage', 'input:', 'Query', 'User', '#'];
    const document = fc.oneof(
      fc.array(fc.constantFrom(...words), { maxLength: 80 }).map((w) => w.join(' ')),
      fc.string({ maxLength: 200 }),
    );
    const body = fc.oneof(
      fc.record({ query: document, variables: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }))), operationName: fc.option(fc.string({ maxLength: 10 })) }).map((b) => JSON.stringify(b)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 300 }),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (raw, signedIn) => {
        const res = await fetch(t.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(signedIn ? { authorization: `Bearer ${ben.token}` } : {}) },
          body: raw,
        });
        const text = await res.text();
        expect(res.status === 200 || (res.status >= 400 && res.status < 500), `${res.status} for ${raw}: ${text}`).toBe(true);
        if (res.status === 200) expect(JSON.parse(text)).toHaveProperty('errors');
      }),
      { numRuns: 300 },
    );
    // Random documents can sign nobody up nor send anything: no valid input reaches a mutation.
    const after = await stored();
    expect(after.users).toBe(before.users);
    await serverStillServes();
  });
});

describe('protection by environment', () => {
  let dev: TestServer;
  let prod: TestServer;

  beforeAll(async () => {
    [dev, prod] = await Promise.all([
      startTestServer('pglite', { env: { NODE_ENV: 'development', INTROSPECTION: 'false' } }),
      startTestServer('pglite', { env: { NODE_ENV: 'production', JWT_SECRET: randomBytes(32).toString('hex') } }),
    ]);
  });
  afterAll(async () => {
    await dev?.dispose();
    await prod?.dispose();
  });

  it('serves GraphiQL only in development, under a policy that allows its scripts', async () => {
    const page = await fetch(dev.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'unsafe-inline' https:\/\/unpkg\.com/);
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    const none = await fetch(prod.url, { headers: { accept: 'text/html' } });
    expect(none.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
  });

  it('refuses introspection when INTROSPECTION=false', async () => {
    const off = await op(dev.url, `{ __schema { queryType { name } } }`);
    expect(codes(off)).toContain('GRAPHQL_VALIDATION_FAILED');
    expect(off.body.errors?.[0]?.message).toMatch(/introspection has been disabled/);
    const on = await op(prod.url, `{ __schema { queryType { name } } }`);
    expect(on.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('allows any origin in development and none by default in production', async () => {
    const preflight = (url: string) =>
      fetch(url, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' } });
    const open = await preflight(dev.url);
    expect(open.status).toBe(204);
    expect(open.headers.get('access-control-allow-origin')).toBe('*');
    const closed = await preflight(prod.url);
    expect(closed.status).toBe(403);
    expect(closed.headers.get('access-control-allow-origin')).toBeNull();
    // Same-origin pages need no CORS: a plain request is still served.
    const plain = await op(prod.url, `{ __typename }`, {}, { headers: { origin: 'http://localhost:5173' } });
    expect(plain.body.data).toEqual({ __typename: 'Query' });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe.skipIf(!redisUp)('rate limits shared through Redis', () => {
  const prefix = `abuse-${process.pid}-${Date.now()}:`;
  let a: TestServer;
  let b: TestServer;

  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    const redis = redisClient();
    await redis.connect();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('counts one budget over two processes', async () => {
    const env = { REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: prefix, RATE_LIMIT_SIGN_IN_IP: '4/1m', TRUST_PROXY: '1' };
    [a, b] = await Promise.all([startTestServer('pglite', { env }), startTestServer('pglite', { env })]);
    // Each process has its own embedded database, but both see the same address.
    const attempt = (server: TestServer, i: number) =>
      op(server.url, SIGN_IN, { input: { email: `nobody-${i}@example.test`, password: 'guess' } }, { from: '192.0.2.44' });
    const answers = [await attempt(a, 0), await attempt(b, 1), await attempt(a, 2), await attempt(b, 3)];
    expect(answers.map(codes)).toEqual(Array(4).fill(['UNAUTHENTICATED']));
    for (const server of [a, b]) {
      const refused = await attempt(server, 9);
      expect(refused.status).toBe(429);
      expect(codes(refused)).toEqual(['RATE_LIMITED']);
    }
    const redis = redisClient();
    await redis.connect();
    try {
      expect(await redis.keys(`${prefix}rl:signInIp:*`)).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  });
});
