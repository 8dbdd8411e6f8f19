import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { PrismaClient } from '../../prisma/generated/client.ts';
import type { RateLimiter, Viewer } from '../../schema/context.ts';
import { bearerToken } from '../auth/tokens.ts';
import type { Logger } from '../logger.ts';
import { detectContentType, isInlineSafe, TEXT_PLAIN, TextProbe } from './content-type.ts';
import { contentDisposition, sanitizeFileName } from './file-names.ts';
import { uploadPath, type UrlSigner } from './signed-urls.ts';
import { FileNotFoundError, type FileStore } from './storage.ts';

/** Path of the upload endpoint; downloads live under it at `/uploads/<id>`. */
export const UPLOADS_PATH = '/uploads';

/** The multipart field that carries the file. */
export const FILE_FIELD = 'file';

/**
 * Room a multipart body may take beyond the file itself (boundaries, part
 * headers, a few small fields). Bounds the whole body, so that parts which
 * are ignored still cannot make the server read without end.
 */
const MULTIPART_OVERHEAD = 16 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UploadRoutesDeps {
  db: PrismaClient;
  store: FileStore;
  signer: UrlSigner;
  /** Largest accepted file, in bytes (UPLOAD_MAX_BYTES). */
  maxBytes: number;
  /** Resolves a bearer token to its user; null when invalid or expired. */
  authenticate(token: string): Promise<Viewer | null>;
  /** Counts uploads per user (`upload`); absent: unlimited. */
  rateLimiter?: RateLimiter;
  log: Logger;
}

/** What `POST /uploads` answers with (201). */
export interface UploadResponse {
  id: string;
  /** Download path, `/uploads/<id>`. */
  url: string;
  name: string;
  size: number;
  contentType: string;
}

export interface UploadRoutes {
  /** Whether `path` (without query) belongs to these routes. */
  matches(path: string): boolean;
  /** Answers a request whose path {@link matches}; never rejects. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** An expected failure, answered as `{ error: { code, message } }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const unauthorized = () =>
  new HttpError(401, 'UNAUTHENTICATED', 'Send a valid bearer token.', { 'WWW-Authenticate': 'Bearer' });
const tooLarge = (maxBytes: number) =>
  new HttpError(413, 'PAYLOAD_TOO_LARGE', `The file exceeds the limit of ${maxBytes} bytes.`);
const notFound = () => new HttpError(404, 'NOT_FOUND', 'File not found.');

/** Set when the client went away mid-upload: there is nobody left to answer. */
class ClientGone extends Error {}

/**
 * File sharing over plain HTTP: `POST /uploads` stores one multipart file and
 * records an `Upload` row owned by the caller; `GET`/`HEAD /uploads/<id>`
 * serves it to the owner, to members of the room it was posted in (bearer
 * token), or to anyone holding an unexpired signed url.
 */
export function createUploadRoutes(deps: UploadRoutesDeps): UploadRoutes {
  const { db, store, signer, maxBytes, log } = deps;
  const bodyLimit = maxBytes + MULTIPART_OVERHEAD;

  async function viewerOf(req: IncomingMessage): Promise<Viewer> {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw unauthorized();
    const viewer = await deps.authenticate(token);
    if (!viewer) throw unauthorized();
    return viewer;
  }

  async function upload(req: IncomingMessage, res: ServerResponse) {
    if (req.method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Use POST.', { Allow: 'POST' });
    const viewer = await viewerOf(req);
    const refused = await deps.rateLimiter?.consume('upload', viewer.id);
    if (refused) {
      throw new HttpError(429, 'RATE_LIMITED', `Too many uploads; try again in ${refused.retryAfterSeconds} s.`, {
        'Retry-After': String(refused.retryAfterSeconds),
      });
    }
    const declared = Number(req.headers['content-length']);
    // Refused before reading: nothing of an oversized body is parsed or stored.
    if (Number.isFinite(declared) && declared > bodyLimit) throw tooLarge(maxBytes);

    const key = store.newKey();
    try {
      // A refusal can race a file that was already complete: clean up in every case.
      const received = await receiveFile(req, key);
      const contentType = await detectContentType(() => store.get(key), received.isText);
      const row = await db.upload.create({
        data: { ownerId: viewer.id, name: received.name, size: received.size, contentType, storageKey: key },
        select: { id: true, name: true, size: true, contentType: true },
      });
      const body: UploadResponse = { ...row, url: uploadPath(row.id) };
      sendJson(res, 201, body, { Location: body.url });
    } catch (error) {
      await store.delete(key);
      throw error;
    }
  }

  /**
   * Streams the `file` part into the store under `key` while counting bytes.
   * Resolves only after the store has settled, so on a refusal the partial
   * file is already gone when the client reads the answer.
   */
  function receiveFile(req: IncomingMessage, key: string): Promise<{ name: string; size: number; isText: boolean }> {
    return new Promise((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: req.headers,
          defParamCharset: 'utf8',
          // One byte over the limit, because busboy reports "limit" on reaching it.
          limits: { fileSize: maxBytes + 1, files: 4, fields: 8, fieldSize: 1024, parts: 12, headerPairs: 16 },
        });
      } catch {
        reject(new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `Send multipart/form-data with the file in a field named "${FILE_FIELD}".`));
        return;
      }
      let failure: Error | undefined;
      let saving: Promise<{ name: string; size: number; isText: boolean }> | undefined;
      let fileStream: Readable | undefined;
      let finished = false;
      let read = 0;

      const finish = () => {
        if (finished) return;
        finished = true;
        (saving ?? Promise.resolve(undefined)).then(
          (file) => {
            if (failure) reject(failure);
            else if (file) resolve(file);
            else reject(new HttpError(400, 'BAD_USER_INPUT', `Send the file in a multipart field named "${FILE_FIELD}".`));
          },
          (error: unknown) => reject(failure ?? error),
        );
      };
      const abort = (error: Error) => {
        if (failure) return;
        failure = error;
        // Deferred: busboy emits "limit" mid-write and touches its state
        // right after; tearing it down synchronously crashes it.
        setImmediate(() => {
          req.unpipe(parser);
          fileStream?.destroy(error);
          parser.destroy();
          finish();
        });
      };

      parser.on('file', (field, stream, info) => {
        // Tearing the parser down destroys its open file streams with an error.
        stream.on('error', () => {});
        if (field !== FILE_FIELD || saving || failure) {
          stream.resume();
          return;
        }
        fileStream = stream;
        stream.once('limit', () => abort(tooLarge(maxBytes)));
        const probe = new TextProbe();
        stream.on('error', (error) => probe.destroy(error));
        const name = sanitizeFileName(info.filename);
        saving = store.put(key, stream.pipe(probe)).then(({ size }) => ({ name, size, isText: probe.isText }));
        // Rejections surface through finish(); this only keeps them from being reported as unhandled.
        saving.catch(() => {});
      });
      parser.once('close', finish);
      parser.on('error', (error: Error) =>
        abort(new HttpError(400, 'BAD_USER_INPUT', `Malformed multipart body: ${error.message}`)),
      );
      req.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > bodyLimit) abort(tooLarge(maxBytes));
      });
      req.once('close', () => {
        if (!req.complete) abort(new ClientGone('client closed the upload'));
      });
      req.pipe(parser);
    });
  }

  async function download(req: IncomingMessage, res: ServerResponse, id: string, query: URLSearchParams) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Use GET or HEAD.', { Allow: 'GET, HEAD' });
    }
    let cacheControl = 'private';
    let upload: { name: string; contentType: string; storageKey: string } | null;
    if (query.has('sig') || query.has('expires')) {
      // A signed url is checked before the id is looked up: a bad signature
      // learns nothing about which ids exist.
      const secondsLeft = signer.verify(id, query.get('expires'), query.get('sig'));
      if (secondsLeft === null) throw new HttpError(403, 'FORBIDDEN', 'The signed url is invalid or has expired.');
      if (!UUID.test(id)) throw notFound();
      upload = await db.upload.findUnique({ where: { id }, select: { name: true, contentType: true, storageKey: true } });
      if (!upload) throw notFound();
      cacheControl = `private, max-age=${secondsLeft}`;
    } else {
      const viewer = await viewerOf(req);
      if (!UUID.test(id)) throw notFound();
      const found = await db.upload.findUnique({
        where: { id },
        select: {
          name: true,
          contentType: true,
          storageKey: true,
          ownerId: true,
          message: { select: { room: { select: { members: { where: { userId: viewer.id }, select: { userId: true } } } } } },
        },
      });
      if (!found) throw notFound();
      const member = (found.message?.room.members.length ?? 0) > 0;
      if (found.ownerId !== viewer.id && !member) {
        throw new HttpError(403, 'FORBIDDEN', 'Only members of a room where this file was posted may download it.');
      }
      upload = found;
    }

    const stat = await store.stat(upload.storageKey);
    if (!stat) {
      log.error({ id, storageKey: upload.storageKey }, 'upload row without stored bytes');
      throw notFound();
    }
    const headers: Record<string, string | number> = {
      'Content-Type': upload.contentType === TEXT_PLAIN ? `${TEXT_PLAIN}; charset=utf-8` : upload.contentType,
      'Content-Length': stat.size,
      'Content-Disposition': contentDisposition(isInlineSafe(upload.contentType) ? 'inline' : 'attachment', upload.name),
      'X-Content-Type-Options': 'nosniff',
      // Should a browser ever render a stored file as a page, it gets no script and no origin.
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'Cache-Control': cacheControl,
    };
    if (req.method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    let body;
    try {
      body = await store.get(upload.storageKey);
    } catch (error) {
      if (error instanceof FileNotFoundError) throw notFound();
      throw error;
    }
    res.writeHead(200, headers);
    await pipeline(body, res);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, error: unknown) {
    if (error instanceof ClientGone) return;
    if (res.headersSent) {
      // Mid-body there is no way to signal failure but to cut the connection.
      log.error({ err: error, url: req.url }, 'upload route failed after headers were sent');
      res.destroy();
      return;
    }
    if (error instanceof HttpError) {
      // An unread request body would otherwise keep the connection busy.
      const close: Record<string, string> = req.complete ? {} : { Connection: 'close' };
      sendJson(res, error.status, { error: { code: error.code, message: error.message } }, { ...error.headers, ...close });
      return;
    }
    log.error({ err: error, method: req.method, url: req.url }, 'upload route failed');
    const close: Record<string, string> = req.complete ? {} : { Connection: 'close' };
    sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } }, close);
  }

  return {
    matches: (path) => path === UPLOADS_PATH || path.startsWith(`${UPLOADS_PATH}/`),
    async handle(req, res) {
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (url.pathname === UPLOADS_PATH) {
          await upload(req, res);
          return;
        }
        const id = url.pathname.slice(UPLOADS_PATH.length + 1);
        if (id.includes('/')) throw notFound();
        await download(req, res, id, url.searchParams);
      } catch (error) {
        sendError(req, res, error);
      }
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      ...headers,
    })
    .end(text);
}
