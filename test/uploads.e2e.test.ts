import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sanitizeFileName } from '../api/uploads/file-names.ts';
import { createUrlSigner } from '../api/uploads/signed-urls.ts';
import { createLocalFileStore } from '../api/uploads/storage.ts';
import { collect, errorCode, gql, http, signUp, sleep, wsClient, type TestUser } from './helpers/client.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { startTestServer, type Backend, type TestServer } from './helpers/server.ts';

const pgUp = await postgresAvailable();

const MAX_BYTES = 4096;
const JWT_SECRET = 'uploads-test-secret-uploads-test-secret-0123456789';

/** A valid 1x1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

/** The start of a Windows executable: DOS header (`MZ`, e_lfanew) and PE signature. */
function exeBytes(): Buffer {
  const bytes = Buffer.alloc(512);
  bytes.write('MZ', 0, 'latin1');
  bytes.writeUInt32LE(0x80, 0x3c);
  bytes.write('PE\0\0', 0x80, 'latin1');
  return bytes;
}

const ATTACHMENT_FIELDS = 'attachments { id name size contentType url signedUrl }';
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id seq ${ATTACHMENT_FIELDS} } }`;
const SUBSCRIBE = `subscription ($roomId: ID!, $afterSeq: Int) { messageAdded(roomId: $roomId, afterSeq: $afterSeq) { id seq ${ATTACHMENT_FIELDS} } }`;
const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const LAST_SEQ = `query ($id: ID!) { room(id: $id) { lastSeq } }`;

interface Uploaded {
  id: string;
  url: string;
  name: string;
  size: number;
  contentType: string;
}

/** Every file (not folder) under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

describe.each<Backend>(['pglite', 'postgres'])('file sharing over %s', (backend) => {
  const skip = backend === 'postgres' && !pgUp;
  let t: TestServer;
  let origin: string;
  let uploadsDir: string;
  let ana: TestUser;
  let ben: TestUser;
  let eve: TestUser;
  let roomId: string;
  const clients: { dispose(): unknown }[] = [];

  async function upload(
    bytes: Uint8Array,
    options: { name?: string; type?: string; token?: string | null; field?: string } = {},
  ): Promise<Response> {
    const form = new FormData();
    form.append(options.field ?? 'file', new Blob([new Uint8Array(bytes)], { type: options.type ?? 'application/octet-stream' }), options.name ?? 'file.bin');
    const token = options.token === undefined ? ana.token : options.token;
    return fetch(`${origin}/uploads`, {
      method: 'POST',
      body: form,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  }

  async function uploadOk(bytes: Uint8Array, options: Parameters<typeof upload>[1] = {}): Promise<Uploaded> {
    const res = await upload(bytes, options);
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as Uploaded;
  }

  function download(path: string, token?: string, method = 'GET'): Promise<Response> {
    return fetch(`${origin}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  }

  const rowCount = () => t.server.services.db.upload.count();

  beforeAll(async () => {
    if (skip) return;
    t = await startTestServer(backend, { env: { UPLOAD_MAX_BYTES: String(MAX_BYTES), JWT_SECRET } });
    origin = new URL(t.url).origin;
    uploadsDir = join(t.dataDir, 'uploads');
    [ana, ben, eve] = await Promise.all([signUp(t.url, 'Ana'), signUp(t.url, 'Ben'), signUp(t.url, 'Eve')]);
    const data = await gql(t.url, CREATE_ROOM, { input: { name: 'Files', memberIds: [ben.id] } }, ana.token);
    roomId = data.createRoom.id;
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await t?.dispose();
  });

  it.skipIf(skip)('stores a PNG, attaches it to a message and delivers it to room members', async () => {
    const uploaded = await uploadOk(PNG, { name: 'pixel.png', type: 'image/png' });
    expect(uploaded).toMatchObject({ name: 'pixel.png', size: PNG.length, contentType: 'image/png', url: `/uploads/${uploaded.id}` });

    const sent = await gql(t.url, SEND, { input: { roomId, body: 'a pixel', clientId: 'png-1', attachmentIds: [uploaded.id] } }, ana.token);
    const attachment = sent.sendMessage.attachments[0];
    expect(sent.sendMessage.attachments).toHaveLength(1);
    expect(attachment).toMatchObject({ id: uploaded.id, name: 'pixel.png', size: PNG.length, contentType: 'image/png', url: uploaded.url });
    expect(attachment.signedUrl).toMatch(new RegExp(`^/uploads/${uploaded.id}\\?expires=\\d+&sig=[\\w-]{43}$`));

    const benWs = wsClient(t.wsUrl, ben.token);
    clients.push(benWs);
    const seen = collect(benWs, SUBSCRIBE, { roomId, afterSeq: 0 });
    const [first] = await seen.waitFor(1);
    expect(first.messageAdded.id).toBe(sent.sendMessage.id);
    expect(first.messageAdded.attachments).toMatchObject([{ id: uploaded.id, name: 'pixel.png', contentType: 'image/png', url: uploaded.url }]);
    seen.dispose();

    const res = await download(uploaded.url, ben.token);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-length')).toBe(String(PNG.length));
    expect(res.headers.get('content-disposition')).toBe(`inline; filename="pixel.png"; filename*=UTF-8''pixel.png`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toMatch(/^private\b/);

    const head = await download(uploaded.url, ben.token, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(PNG.length));
    expect(await head.text()).toBe('');
  });

  it.skipIf(skip)('refuses a non-member (403), an unknown id (404) and a caller without a token (401)', async () => {
    const uploaded = await uploadOk(PNG, { name: 'secret.png' });
    await gql(t.url, SEND, { input: { roomId, body: 'members only', clientId: 'secret-1', attachmentIds: [uploaded.id] } }, ana.token);

    const asEve = await download(uploaded.url, eve.token);
    expect(asEve.status).toBe(403);
    expect(await asEve.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });

    for (const path of ['/uploads/00000000-0000-4000-8000-000000000000', '/uploads/not-an-id', '/uploads/..%2F..%2Fjwt-secret', '/uploads/a/b']) {
      const res = await download(path, eve.token);
      expect(res.status, path).toBe(404);
    }

    const anonymous = await download(uploaded.url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
  });

  it.skipIf(skip)('lets only the owner fetch an upload that is not attached to a message yet', async () => {
    const uploaded = await uploadOk(Buffer.from('draft notes\n'), { name: 'draft.txt', type: 'text/plain' });
    expect(uploaded.contentType).toBe('text/plain');
    const own = await download(uploaded.url, ana.token);
    expect(own.status).toBe(200);
    expect(own.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(own.headers.get('content-disposition')).toMatch(/^attachment;/);
    expect(await own.text()).toBe('draft notes\n');
    expect((await download(uploaded.url, ben.token)).status).toBe(403);
  });

  it.skipIf(skip)('serves a signed url without a token, and refuses it tampered or expired', async () => {
    const uploaded = await uploadOk(PNG, { name: 'shared.png' });
    const other = await uploadOk(PNG, { name: 'other.png' });
    const sent = await gql(
      t.url,
      SEND,
      { input: { roomId, body: 'signed', clientId: 'signed-1', attachmentIds: [uploaded.id, other.id] } },
      ana.token,
    );
    const signed: string = sent.sendMessage.attachments[0].signedUrl;
    const url = new URL(signed, origin);
    const expires = Number(url.searchParams.get('expires'));
    const now = Math.floor(Date.now() / 1000);
    expect(expires).toBeGreaterThanOrEqual(now + 3600);
    expect(expires).toBeLessThanOrEqual(now + 3600 + 300);

    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer())).toEqual(PNG);

    const sig = url.searchParams.get('sig')!;
    const flipped = sig[10] === 'A' ? 'B' : 'A';
    const tampered = [
      `${url.pathname}?expires=${expires + 3600}&sig=${sig}`,
      `${url.pathname}?expires=${expires}&sig=${sig.slice(0, 10)}${flipped}${sig.slice(11)}`,
      `${url.pathname}?expires=0${expires}&sig=${sig}`,
      `${other.url}?expires=${expires}&sig=${sig}`,
      `${url.pathname}?expires=${expires}`,
    ];
    for (const path of tampered) {
      const res = await fetch(`${origin}${path}`);
      expect(res.status, path).toBe(403);
    }

    // Signed with the server's own key, but already expired.
    const signer = createUrlSigner(JWT_SECRET, 3600, () => new Date());
    const expired = await fetch(`${origin}${signer.signedUrlUntil(uploaded.id, now - 1)}`);
    expect(expired.status).toBe(403);
    const fresh = await fetch(`${origin}${signer.signedUrlUntil(uploaded.id, now + 60)}`);
    expect(fresh.status).toBe(200);
  });

  it.skipIf(skip)('refuses a file over UPLOAD_MAX_BYTES with 413 and keeps nothing', async () => {
    const rowsBefore = await rowCount();
    const filesBefore = await filesUnder(uploadsDir);
    // Just over the limit: refused while streaming. Far over: refused from Content-Length before reading.
    for (const size of [MAX_BYTES + 1, 200_000]) {
      const res = await upload(Buffer.alloc(size, 7), { name: 'big.bin' });
      expect(res.status, `size ${size}`).toBe(413);
      expect(await res.json()).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String) } });
    }
    expect(await rowCount()).toBe(rowsBefore);
    expect(await filesUnder(uploadsDir)).toEqual(filesBefore);

    const exact = await uploadOk(Buffer.alloc(MAX_BYTES, 7), { name: 'exact.bin' });
    expect(exact.size).toBe(MAX_BYTES);
  });

  it.skipIf(skip)('stores an .exe posing as image/png with its real type, and never serves it inline', async () => {
    const uploaded = await uploadOk(exeBytes(), { name: 'cat.png', type: 'image/png' });
    expect(uploaded.contentType).toBe('application/x-msdownload');
    expect(uploaded.name).toBe('cat.png');
    const row = await t.server.services.db.upload.findUniqueOrThrow({ where: { id: uploaded.id } });
    expect(row.contentType).toBe('application/x-msdownload');
    const res = await download(uploaded.url, ana.token);
    expect(res.headers.get('content-type')).toBe('application/x-msdownload');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment;/);
  });

  it.skipIf(skip)('ignores the declared type of unknown bytes', async () => {
    const binary = await uploadOk(Buffer.from([0x00, 0xff, 0x10, 0x80, 0x00, 0x01]), { name: 'x.png', type: 'image/png' });
    expect(binary.contentType).toBe('application/octet-stream');
    const html = await uploadOk(Buffer.from('<script>alert(1)</script>'), { name: 'page.html', type: 'text/html' });
    expect(html.contentType).toBe('text/plain');
  });

  it.skipIf(skip)('sanitizes a path-like name and writes nothing outside the uploads folder', async () => {
    const outside = (await filesUnder(t.dataDir)).filter((f) => !f.startsWith('uploads') && !f.startsWith('pglite'));
    const uploaded = await uploadOk(Buffer.from('root:x:0:0\n'), { name: '../../etc/passwd', type: 'text/plain' });
    expect(uploaded.name).toBe('passwd');
    const row = await t.server.services.db.upload.findUniqueOrThrow({ where: { id: uploaded.id } });
    expect(row.storageKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(await filesUnder(uploadsDir)).toContain(row.storageKey);
    expect((await filesUnder(t.dataDir)).filter((f) => !f.startsWith('uploads') && !f.startsWith('pglite'))).toEqual(outside);
    expect(existsSync(join(uploadsDir, '..', '..', 'etc', 'passwd'))).toBe(false);

    const unicode = await uploadOk(Buffer.from('ok\n'), { name: 'C:\\Users\\ana\\résumé: final?.txt' });
    expect(unicode.name).toBe('résumé_ final_.txt');
    const res = await download(unicode.url, ana.token);
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="r_sum__ final_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9_%20final_.txt`,
    );
  });

  it.skipIf(skip)("refuses to attach someone else's upload with BAD_USER_INPUT and stores nothing", async () => {
    const bens = await uploadOk(PNG, { name: 'bens.png', token: ben.token });
    const before = await gql(t.url, LAST_SEQ, { id: roomId }, ana.token);
    const res = await http(t.url, SEND, { input: { roomId, body: 'stolen', clientId: 'steal-1', attachmentIds: [bens.id] } }, ana.token);
    expect(errorCode(res.body)).toBe('BAD_USER_INPUT');
    const after = await gql(t.url, LAST_SEQ, { id: roomId }, ana.token);
    expect(after.room.lastSeq).toBe(before.room.lastSeq);
    expect(await t.server.services.db.message.count({ where: { clientId: 'steal-1' } })).toBe(0);
    const row = await t.server.services.db.upload.findUniqueOrThrow({ where: { id: bens.id } });
    expect(row.messageId).toBeNull();
  });

  it.skipIf(skip)('keeps nothing from a client that disconnects mid-upload, or streams too much in ignored parts', async () => {
    const rowsBefore = await rowCount();
    const filesBefore = await filesUnder(uploadsDir);
    const boundary = 'xxBOUNDARYxx';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;

    const req = request(`${origin}/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ana.token}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': 3000 },
    });
    req.on('error', () => {});
    req.write(head);
    req.write(Buffer.alloc(1000, 1));
    await sleep(200);
    req.destroy();
    await sleep(300);
    expect(await rowCount()).toBe(rowsBefore);
    expect(await filesUnder(uploadsDir)).toEqual(filesBefore);

    // Chunked (no Content-Length), with the bulk in a part the server ignores.
    const chunked = await new Promise<number>((resolve, reject) => {
      const r = request(`${origin}/uploads`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ana.token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      r.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', reject);
      r.write(head.replace('name="file"', 'name="other"'));
      const chunk = Buffer.alloc(16 * 1024, 2);
      let sent = 0;
      const pump = () => {
        while (sent < 1_000_000 && !r.destroyed) {
          sent += chunk.length;
          if (!r.write(chunk)) return void r.once('drain', pump);
        }
        r.end();
      };
      pump();
    });
    expect(chunked).toBe(413);
    expect(await rowCount()).toBe(rowsBefore);
    expect(await filesUnder(uploadsDir)).toEqual(filesBefore);
  });

  it.skipIf(skip)('answers 401, 405, 400 and 415 for bad upload requests, storing nothing', async () => {
    const rowsBefore = await rowCount();
    const filesBefore = await filesUnder(uploadsDir);

    const anonymous = await upload(PNG, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(await anonymous.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    expect((await upload(PNG, { token: 'garbage' })).status).toBe(401);

    const get = await fetch(`${origin}/uploads`, { headers: { authorization: `Bearer ${ana.token}` } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');

    const wrongField = await upload(PNG, { field: 'avatar' });
    expect(wrongField.status).toBe(400);
    expect(await wrongField.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT' } });

    const json = await fetch(`${origin}/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ana.token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(json.status).toBe(415);

    expect(await rowCount()).toBe(rowsBefore);
    expect(await filesUnder(uploadsDir)).toEqual(filesBefore);
  });
});

describe('upload file names', () => {
  it.each([
    ['../../etc/passwd', 'passwd'],
    ['..', 'file'],
    ['', 'file'],
    [undefined, 'file'],
    ['.htaccess', 'htaccess'],
    ['a\u0000b\u0007c.txt', 'abc.txt'],
    ['invoice\u202Egnp.exe', 'invoicegnp.exe'],
    ['  spaced   out  .pdf ', 'spaced out .pdf'],
    ['CON.txt', '_CON.txt'],
    ['what?<>|.png', 'what____.png'],
  ])('%j becomes %j', (raw, expected) => {
    expect(sanitizeFileName(raw)).toBe(expected);
  });

  it('keeps the extension when shortening a long name', () => {
    const name = sanitizeFileName(`${'x'.repeat(500)}.jpeg`);
    expect([...name]).toHaveLength(200);
    expect(name.endsWith('x.jpeg')).toBe(true);
  });
});

describe('local file store keys', () => {
  it('refuses keys that are not server-generated', async () => {
    const store = createLocalFileStore('/tmp/never-written');
    for (const key of ['../x', '/etc/passwd', 'a/b', '', '00000000-0000-4000-8000-000000000000/..']) {
      await expect(store.get(key), key).rejects.toThrow(/Invalid storage key/);
      await expect(store.put(key, Buffer.from('x')), key).rejects.toThrow(/Invalid storage key/);
    }
    expect(existsSync('/tmp/never-written')).toBe(false);
  });
});
