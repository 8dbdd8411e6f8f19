import * as Y from 'yjs';
import { z } from 'zod';
import { isId, requireRoomMember, requireViewer } from './access.ts';
import { builder, type UserShape } from './builder.ts';
import type { Context, DocRef } from './context.ts';
import { badInput, forbidden, notFound, payloadTooLarge, unavailable } from './errors.ts';
import { Room } from './room.ts';
import { DateTime } from './scalars.ts';
import { User } from './user.ts';
import { parseInput } from './validation.ts';
import { base64Size, decodeBase64, encodeBase64 } from './lib/base64.ts';
import { appendUpdate, compact, isYjsUpdate } from './lib/doc-store.ts';
import { docUpdateStream, type DocUpdateShape } from './lib/doc-stream.ts';
import { limitRate } from './lib/rate-limit.ts';
import { memberRoomStream } from './lib/streams.ts';

export interface DocumentShape {
  id: string;
  roomId: string;
  title: string;
  createdAt: Date;
  updatedAt: Date;
  createdBy: UserShape | null;
}

interface DocAwarenessShape {
  docId: string;
  update: string;
}

const documentSelect = {
  id: true,
  roomId: true,
  title: true,
  createdAt: true,
  updatedAt: true,
  createdBy: { select: { id: true, name: true } },
} as const;

export const Document = builder.objectRef<DocumentShape>('Document').implement({
  description:
    "A shared document of a room, edited together in real time. Its content is a Yjs document (CRDT): read and follow it with docUpdates, change it with applyDocUpdate; the text lives in the Yjs document's shared types (the web client uses `getText('content')`).",
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable identifier (a UUID).' }),
    roomId: t.exposeID('roomId', { description: 'The room it belongs to; its members can read and edit it.' }),
    title: t.exposeString('title', { description: 'Title, 1 to 200 characters.' }),
    createdBy: t.field({ type: User, nullable: true, description: 'Who created it; null when that account is gone.', resolve: (d) => d.createdBy }),
    createdAt: t.field({ type: DateTime, description: 'When it was created.', resolve: (d) => d.createdAt }),
    updatedAt: t.field({ type: DateTime, description: 'When the last update was applied (the creation time before any).', resolve: (d) => d.updatedAt }),
  }),
});

const DocUpdate = builder.objectRef<DocUpdateShape>('DocUpdate').implement({
  description: 'Changes to a shared document, as one Yjs update.',
  fields: (t) => ({
    docId: t.exposeID('docId', { description: 'The document.' }),
    update: t.exposeString('update', {
      description: 'A Yjs update (v1 encoding), base64: apply it with `Y.applyUpdate(doc, bytes)`. Applying it again, or out of order, is harmless.',
    }),
    sync: t.exposeBoolean('sync', {
      description:
        "True for the first event of a subscription: everything the client lacked relative to the state vector it subscribed with (possibly an empty update). False for live updates after it, the client's own included.",
    }),
  }),
});

const DocAwarenessUpdate = builder.objectRef<DocAwarenessShape>('DocAwarenessUpdate').implement({
  description: "Who is in a shared document and where their cursors are (y-protocols awareness).",
  fields: (t) => ({
    docId: t.exposeID('docId', { description: 'The document.' }),
    update: t.exposeString('update', {
      description:
        'A y-protocols awareness update, base64: apply it with `applyAwarenessUpdate(awareness, bytes, origin)`. Each state carries `user { id name }` as stamped by the server.',
    }),
  }),
});

/**
 * Authorizes the viewer for a document: NOT_FOUND when it does not exist,
 * FORBIDDEN when the viewer is not a member of its room.
 */
async function requireDocMember(ctx: Context, docId: string): Promise<DocumentShape> {
  const doc = await findDoc(ctx, docId);
  await requireRoomMember(ctx, doc.roomId);
  return doc;
}

async function findDoc(ctx: Context, docId: string): Promise<DocumentShape> {
  requireViewer(ctx);
  if (!isId(docId)) throw notFound('Document');
  const doc = await ctx.db.document.findUnique({ where: { id: docId }, select: documentSelect });
  if (!doc) throw notFound('Document');
  return doc;
}

/** Checks a base64 argument's size before decoding it: PAYLOAD_TOO_LARGE over `limit`, BAD_USER_INPUT when it is not base64. */
function decodeArg(value: string, field: string, limit: number, what: string): Uint8Array {
  const size = base64Size(value);
  if (size !== null && size > limit) throw payloadTooLarge(`${what} is ${size} bytes; at most ${limit} are accepted.`, limit, field);
  const bytes = decodeBase64(value);
  if (!bytes) throw badInput(`${field}: must be standard base64 (with = padding).`, field);
  return bytes;
}

builder.objectField(Room, 'documents', (t) =>
  t.field({
    type: [Document],
    description: "The room's shared documents, newest first.",
    resolve: (room, _args, ctx) =>
      ctx.db.document.findMany({ where: { roomId: room.id }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], select: documentSelect }),
  }),
);

builder.queryField('document', (t) =>
  t.field({
    type: Document,
    authScopes: { loggedIn: true },
    description: 'One shared document. Errors: NOT_FOUND, FORBIDDEN when the viewer is not a member of its room.',
    args: { id: t.arg.id({ required: true, description: 'The document id.' }) },
    resolve: (_root, args, ctx) => requireDocMember(ctx, String(args.id)),
  }),
);

const CreateDocument = z.object({
  roomId: z.string(),
  title: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
});

builder.mutationField('createDocument', (t) =>
  t.field({
    type: Document,
    authScopes: { loggedIn: true },
    description:
      'Creates an empty shared document in a room. Not idempotent: a retry creates a second document. Errors: BAD_USER_INPUT (`extensions.field` = title), NOT_FOUND, FORBIDDEN.',
    args: {
      roomId: t.arg.id({ required: true, description: 'The room; the viewer must be a member.' }),
      title: t.arg.string({ required: true, description: 'Title, 1 to 200 characters (trimmed).' }),
    },
    resolve: async (_root, args, ctx) => {
      const data = parseInput(CreateDocument, { roomId: String(args.roomId), title: args.title });
      const viewer = await requireRoomMember(ctx, data.roomId);
      return ctx.db.document.create({ data: { roomId: data.roomId, title: data.title, createdById: viewer.id }, select: documentSelect });
    },
  }),
);

builder.mutationField('applyDocUpdate', (t) =>
  t.boolean({
    authScopes: { loggedIn: true },
    description:
      'Applies a Yjs update to a shared document: stores it and sends it to every docUpdates subscriber. Safe to retry: applying an update twice changes nothing. Errors: BAD_USER_INPUT (not base64, or not a Yjs update), PAYLOAD_TOO_LARGE (the update is over the size limit, 256 KiB by default, or the document would grow past its limit, 5 MiB by default; `extensions.limit` is the limit in bytes), NOT_FOUND, FORBIDDEN, RATE_LIMITED, UNAVAILABLE (the database is briefly unreachable; retry). Nothing is stored on error.',
    args: {
      docId: t.arg.id({ required: true, description: 'The document; the viewer must be a member of its room.' }),
      update: t.arg.string({ required: true, description: 'A Yjs update (v1 encoding, e.g. from `Y.encodeStateAsUpdate` or a doc `update` event), base64.' }),
    },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const bytes = decodeArg(args.update, 'update', ctx.limits.docUpdateMaxBytes, 'The update');
      await limitRate(ctx, 'docUpdate', viewer.id);
      const doc = await requireDocMember(ctx, String(args.docId));
      if (!isYjsUpdate(bytes)) throw badInput('update: not a Yjs update (v1 encoding).', 'update');
      await storeAndPublish(ctx, doc.id, viewer.id, bytes);
      return true;
    },
  }),
);

async function storeAndPublish(ctx: Context, docId: string, userId: string, bytes: Uint8Array): Promise<void> {
  const max = ctx.limits.docMaxBytes;
  let stored;
  try {
    stored = await appendUpdate(ctx, docId, userId, bytes, max);
    // The size counts updates not yet merged into the snapshot, which often
    // shrink when merged: compact first, then decide.
    if (!stored && (await compact(ctx, docId, 1)) > 0) stored = await appendUpdate(ctx, docId, userId, bytes, max);
  } catch (error) {
    if ((error as { code?: string }).code === 'P2028') throw unavailable('Document editing');
    throw error;
  }
  if (!stored) throw payloadTooLarge(`The document reached its size limit of ${max} bytes; it accepts no further updates.`, max, 'docId');
  try {
    await ctx.pubsub.publish('doc:update', docId, { docId, seq: stored.seq, update: encodeBase64(bytes), userId });
  } catch (error) {
    // Stored: subscribers re-read the database when the pub/sub is back.
    ctx.log.error({ err: error, docId, seq: stored.seq }, 'publishing doc:update failed');
  }
  if (stored.seq - stored.snapshotSeq > ctx.limits.docCompactEvery) {
    try {
      await compact(ctx, docId, ctx.limits.docCompactEvery + 1);
    } catch (error) {
      // The update is stored; the next update tries again.
      ctx.log.warn({ err: error, docId }, 'document compaction failed');
    }
  }
}

builder.mutationField('applyDocAwareness', (t) =>
  t.boolean({
    authScopes: { loggedIn: true },
    description:
      "Shares the viewer's awareness state in a document (cursor, selection; y-protocols `encodeAwarenessUpdate`). The server stamps each state with `user { id name }` of the viewer (other fields of `user`, e.g. a color, are kept), binds each Yjs clientID to the first user who sends it, and drops a state not renewed within 30 s (clients renew every 15 s) or whose user goes offline or leaves the room. Safe to repeat. Errors: BAD_USER_INPUT (not an awareness update), PAYLOAD_TOO_LARGE (over 8 KiB by default), FORBIDDEN (not a member, or a clientID of another user), NOT_FOUND, RATE_LIMITED, UNAVAILABLE (shared state briefly unreachable; retry).",
    args: {
      docId: t.arg.id({ required: true, description: 'The document; the viewer must be a member of its room.' }),
      update: t.arg.string({ required: true, description: 'A y-protocols awareness update, base64.' }),
    },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const bytes = decodeArg(args.update, 'update', ctx.limits.docAwarenessMaxBytes, 'The awareness update');
      await limitRate(ctx, 'docAwareness', viewer.id);
      const doc = await requireDocMember(ctx, String(args.docId));
      let result;
      try {
        result = await ctx.docAwareness.apply(doc, bytes, { id: viewer.id, name: viewer.name });
      } catch (err) {
        // Following a document needs the pub/sub (Redis with several processes).
        ctx.log.warn({ err, docId: doc.id }, 'applyDocAwareness failed');
        throw unavailable('Document awareness');
      }
      if (result === 'malformed') throw badInput('update: not a y-protocols awareness update.', 'update');
      if (result === 'foreign-client') throw forbidden('A Yjs clientID in this update belongs to another user.');
      return true;
    },
  }),
);

builder.subscriptionField('docUpdates', (t) =>
  t.field({
    type: DocUpdate,
    authScopes: { loggedIn: true },
    description:
      "A shared document's updates. First, always, one event with `sync: true` holding everything the client lacks relative to `stateVector` (all of the document without it); then each update applied by anyone (the viewer included) with `sync: false`. A client that reconnects subscribes again with its current state vector and then applies its own pending changes with applyDocUpdate. Errors: BAD_USER_INPUT (stateVector), NOT_FOUND, FORBIDDEN. Ends when the viewer leaves the room.",
    args: {
      docId: t.arg.id({ required: true, description: 'The document; the viewer must be a member of its room.' }),
      stateVector: t.arg.string({
        required: false,
        description: "The client's Yjs state vector (`Y.encodeStateVector(doc)`), base64; omit to receive the whole document.",
      }),
    },
    // A live update is the same for every subscriber: executed once per
    // distinct operation and shared (api/fanout/shared-results.ts). The sync
    // event and resync catch-ups are each subscriber's own.
    extensions: { sharedResultKey: (u: DocUpdateShape) => (u.sync || u.seq === undefined ? null : `${u.docId}:${u.seq}`) },
    subscribe: async (_root, args, ctx) => {
      let stateVector: Uint8Array | null = null;
      if (args.stateVector != null) {
        stateVector = decodeBase64(args.stateVector);
        if (!stateVector || !isStateVector(stateVector)) throw badInput('stateVector: not a base64 Yjs state vector.', 'stateVector');
      }
      const doc = await findDoc(ctx, String(args.docId));
      return memberRoomStream(ctx, doc.roomId, (_viewer, signal) => docUpdateStream(ctx, doc.id, stateVector, signal));
    },
    resolve: (update) => update,
  }),
);

function isStateVector(bytes: Uint8Array): boolean {
  try {
    Y.decodeStateVector(bytes);
    return true;
  } catch {
    return false;
  }
}

builder.subscriptionField('docAwareness', (t) =>
  t.field({
    type: DocAwarenessUpdate,
    authScopes: { loggedIn: true },
    description:
      'Who is in a shared document and their cursors. First, always, every current state as one awareness update (possibly of no one); then each change (a state added, updated, renewed or removed). Errors: NOT_FOUND, FORBIDDEN, UNAVAILABLE (shared state briefly unreachable; subscribe again). Ends when the viewer leaves the room.',
    args: { docId: t.arg.id({ required: true, description: 'The document; the viewer must be a member of its room.' }) },
    subscribe: async (_root, args, ctx) => {
      const doc = await findDoc(ctx, String(args.docId));
      const ref: DocRef = { id: doc.id, roomId: doc.roomId };
      return memberRoomStream(ctx, doc.roomId, async (_viewer, signal) => {
        let source;
        try {
          source = await ctx.docAwareness.subscribe(ref, signal);
        } catch (err) {
          ctx.log.warn({ err, docId: doc.id }, 'docAwareness failed');
          throw unavailable('Document awareness');
        }
        return awarenessUpdates(ref, source);
      });
    },
    resolve: (update) => update,
  }),
);

async function* awarenessUpdates(doc: DocRef, source: AsyncIterableIterator<Uint8Array>): AsyncGenerator<DocAwarenessShape> {
  try {
    for await (const update of source) yield { docId: doc.id, update: encodeBase64(update) };
  } finally {
    await source.return?.();
  }
}
