import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useQuery, useSubscription } from 'urql';
import type { RealtimeClient } from '../client/index.ts';
import { PresenceDot } from '../app/presence.tsx';
import { loadSession } from '../app/session.ts';
import {
  JoinRoomDocument,
  ReadReceiptsDocument,
  RoomDetailDocument,
  RoomHistoryDocument,
  SetTypingDocument,
  TypingDocument,
  type ChatMessageFragment,
} from '../gql/graphql.ts';
import { DocumentPanel } from '../docs/DocumentPanel.tsx';
import { TypingNotifier } from '../typing/typing-notifier.ts';
import { MessageItem, PendingItem } from './MessageItem.tsx';
import { readPending, writePending, type PendingEntry } from './pending.ts';
import { uploadFile, type UploadedFile } from './upload.ts';

const PAGE = 30;

/** Resolves when the client's WebSocket is (again) connected. */
function connected(client: RealtimeClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.connection.getSnapshot().status === 'connected') return resolve();
    const stop = client.connection.subscribe((state) => {
      if (state.status !== 'connected') return;
      stop();
      resolve();
    });
  });
}

/** An open room: history with scroll-back, live messages, typing, read marks, uploads. */
export function RoomView({ roomId, client, viewer }: { roomId: string; client: RealtimeClient; viewer: { id: string; name: string } }) {
  const [{ data: detail, error: detailError }, refetchDetail] = useQuery({ query: RoomDetailDocument, variables: { id: roomId }, requestPolicy: 'cache-and-network' });
  const [messages, setMessages] = useState<ChatMessageFragment[]>([]);
  const [older, setOlder] = useState<{ cursor: string | null; more: boolean; loading: boolean }>({ cursor: null, more: false, loading: false });
  const [pending, setPending] = useState<PendingEntry[]>(() => readPending(roomId));
  const [receipts, setReceipts] = useState<ReadonlyMap<string, number>>(new Map());
  const listRef = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);

  const addMessages = useCallback(
    (incoming: ChatMessageFragment[]) => {
      setMessages((prev) => {
        const bySeq = new Map(prev.map((m) => [m.seq, m]));
        for (const m of incoming) bySeq.set(m.seq, m);
        return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
      });
      const arrived = new Set(incoming.map((m) => m.clientId));
      setPending((prev) => {
        const next = prev.filter((p) => !arrived.has(p.clientId));
        if (next.length !== prev.length) writePending(roomId, next);
        return next.length === prev.length ? prev : next;
      });
    },
    [roomId],
  );

  // History first, then live from its newest seq: nothing missed, nothing twice.
  useEffect(() => {
    let sub: { unsubscribe(): void } | undefined;
    let cancelled = false;
    const history = (requestPolicy: 'cache-and-network' | 'network-only') => client.urql.query(RoomHistoryDocument, { id: roomId, last: PAGE }, { requestPolicy }).toPromise();
    void history('cache-and-network')
      // Opened offline with nothing cached: subscribing live-only now would miss
      // whatever is sent (our own queue included) before the socket is back, so
      // wait for the connection and start from real history.
      .then(async (first) => (first.data?.room || cancelled ? first : (await connected(client), history('network-only'))))
      .then((result) => {
        if (cancelled) return;
        const room = result.data?.room;
        if (room) {
          addMessages(room.messages.edges.map((e) => e.node));
          setOlder({ cursor: room.messages.pageInfo.startCursor ?? null, more: room.messages.pageInfo.hasPreviousPage, loading: false });
        }
        const lastSeq = room ? Math.max(0, ...room.messages.edges.map((e) => e.node.seq)) : undefined;
        sub = client.subscribeMessages(roomId, (m) => addMessages([m]), {
          ...(lastSeq !== undefined ? { afterSeq: lastSeq } : {}),
          onBacklogTooLarge: async () => {
            const fresh = await client.urql.query(RoomHistoryDocument, { id: roomId, last: PAGE }, { requestPolicy: 'network-only' }).toPromise();
            const nodes = fresh.data?.room.messages.edges.map((e) => e.node) ?? [];
            addMessages(nodes);
            return nodes.length ? Math.max(...nodes.map((n) => n.seq)) : undefined;
          },
        });
      });
    return () => {
      cancelled = true;
      sub?.unsubscribe();
    };
  }, [client, roomId, addMessages]);

  async function loadOlder() {
    if (!older.more || older.loading || !older.cursor) return;
    setOlder((o) => ({ ...o, loading: true }));
    const list = listRef.current;
    const before = list ? list.scrollHeight - list.scrollTop : 0;
    const result = await client.urql.query(RoomHistoryDocument, { id: roomId, last: PAGE, before: older.cursor }, { requestPolicy: 'network-only' }).toPromise();
    const page = result.data?.room.messages;
    if (page) {
      stickToBottom.current = false;
      addMessages(page.edges.map((e) => e.node));
      setOlder({ cursor: page.pageInfo.startCursor ?? null, more: page.pageInfo.hasPreviousPage, loading: false });
      // Keep the message the reader was looking at in place.
      requestAnimationFrame(() => {
        if (list) list.scrollTop = list.scrollHeight - before;
      });
    } else setOlder((o) => ({ ...o, loading: false }));
  }

  // Keep the newest message in view unless the reader scrolled up.
  useEffect(() => {
    const list = listRef.current;
    if (list && stickToBottom.current) list.scrollTop = list.scrollHeight;
  }, [messages, pending]);

  // Read receipts: the room's marks, then live moves.
  useEffect(() => {
    if (!detail) return;
    setReceipts((prev) => {
      const next = new Map(prev);
      for (const r of detail.room.readReceipts) next.set(r.user.id, Math.max(next.get(r.user.id) ?? 0, r.lastReadSeq));
      return next;
    });
  }, [detail]);
  const [receiptEvent] = useSubscription({ query: ReadReceiptsDocument, variables: { roomId } });
  const receipt = receiptEvent.data?.readReceipts;
  useEffect(() => {
    if (!receipt) return;
    setReceipts((prev) => new Map(prev).set(receipt.user.id, Math.max(prev.get(receipt.user.id) ?? 0, receipt.lastReadSeq)));
  }, [receipt]);

  // Mark the newest message read while the page is visible.
  const newest = messages[messages.length - 1];
  const marked = useRef(0);
  useEffect(() => {
    if (!newest || newest.seq <= marked.current) return;
    const mark = () => {
      if (document.visibilityState !== 'visible' || newest.seq <= marked.current) return;
      marked.current = newest.seq;
      client.markRead(roomId, newest.id).catch(() => {
        marked.current = 0;
      });
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [client, roomId, newest]);

  // Typing: others in this room, and our own keystrokes through the debounce.
  const [typingEvent] = useSubscription({ query: TypingDocument, variables: { roomId } });
  const typists = (typingEvent.data?.typing.users ?? []).filter((u) => u.id !== viewer.id);
  const notifier = useMemo(
    () =>
      new TypingNotifier({
        send: (isTyping) => client.urql.mutation(SetTypingDocument, { roomId, isTyping }).toPromise(),
      }),
    [client, roomId],
  );
  useEffect(() => () => notifier.stop(), [notifier]);

  // Composer and upload.
  const [draft, setDraft] = useState('');
  const [upload, setUpload] = useState<{ name: string; progress: number; file?: UploadedFile; error?: string } | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  function pickFile(file: File | undefined) {
    if (!file) return;
    const token = loadSession()?.token;
    if (!token) return;
    setUpload({ name: file.name, progress: 0 });
    const { done } = uploadFile(file, token, (progress) => setUpload((u) => (u && !u.file ? { ...u, progress } : u)));
    done.then(
      (uploaded) => setUpload({ name: file.name, progress: 1, file: uploaded }),
      (error: Error) => setUpload({ name: file.name, progress: 0, error: error.message }),
    );
  }

  function send(e: FormEvent) {
    e.preventDefault();
    const body = draft.trim();
    const attachment = upload?.file;
    if (!body && !attachment) return;
    if (upload && !upload.file && !upload.error) return; // still uploading
    notifier.stop();
    stickToBottom.current = true;
    const { clientId, sent } = client.sendMessage({ roomId, body, ...(attachment ? { attachmentIds: [attachment.id] } : {}) });
    const entry: PendingEntry = { clientId, body: body || attachment?.name || '', createdAt: new Date().toISOString() };
    setPending((prev) => {
      const next = [...prev, entry];
      writePending(roomId, next);
      return next;
    });
    setDraft('');
    setUpload(null);
    if (fileInput.current) fileInput.current.value = '';
    sent.then(
      (message) => addMessages([message]),
      () => {
        // Disposed (sign-out, reload): it stays queued; an API refusal: drop it from view.
      },
    );
  }

  // Someone joined since the room was loaded: refresh members (presence, read counts).
  const unknownSender = detail ? messages.find((m) => !detail.room.members.some((u) => u.id === m.sender.id))?.sender.id : undefined;
  useEffect(() => {
    if (unknownSender) refetchDetail({ requestPolicy: 'network-only' });
  }, [unknownSender, refetchDetail]);

  const members = detail?.room.members ?? [];
  const others = members.filter((m) => m.id !== viewer.id);
  const readersOf = (seq: number) => others.reduce((n, m) => n + ((receipts.get(m.id) ?? 0) >= seq ? 1 : 0), 0);
  const shownPending = pending.filter((p) => !messages.some((m) => m.clientId === p.clientId));

  if (detailError && !detail) {
    const forbidden = detailError.graphQLErrors.some((e) => e.extensions?.code === 'FORBIDDEN');
    return (
      <div className="card">
        <p className="error">This room cannot be opened: {detailError.graphQLErrors[0]?.message ?? detailError.message}</p>
        {/* An invite link opened by someone who is not a member yet. */}
        {forbidden && (
          <button
            onClick={() =>
              void client.urql
                .mutation(JoinRoomDocument, { roomId })
                .toPromise()
                .then(() => window.location.reload())
            }
          >
            Join this room
          </button>
        )}
      </div>
    );
  }

  return (
    <div className="room-layout">
      <section className="room">
        <header className="room-header">
          <h2>{detail?.room.name ?? '…'}</h2>
          <span className="members">
            {members.map((m) => (
              <span key={m.id} className="member">
                <PresenceDot userId={m.id} status={m.status} self={m.id === viewer.id} />
                {m.name}
              </span>
            ))}
          </span>
          <button className="link small" onClick={() => void navigator.clipboard?.writeText(window.location.href)} title="Others join with this link">
            Copy invite link
          </button>
        </header>
        <ol
          className="messages"
          ref={listRef}
          data-testid="messages"
          onScroll={(e) => {
            const el = e.currentTarget;
            stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
            if (el.scrollTop < 40) void loadOlder();
          }}
        >
          {older.more && (
            <li className="older">
              <button className="link" onClick={() => void loadOlder()} disabled={older.loading}>
                {older.loading ? 'Loading…' : 'Load older messages'}
              </button>
            </li>
          )}
          {messages.map((m) => (
            <MessageItem key={m.seq} message={m} mine={m.sender.id === viewer.id} readBy={readersOf(m.seq)} members={members.length} />
          ))}
          {shownPending.map((p) => (
            <PendingItem key={p.clientId} body={p.body} sender={viewer.name} />
          ))}
        </ol>
        <div className="typing" aria-live="polite" data-testid="typing">
          {typists.length === 1 && `${typists[0]!.name} is typing…`}
          {typists.length === 2 && `${typists[0]!.name} and ${typists[1]!.name} are typing…`}
          {typists.length > 2 && `${typists.length} people are typing…`}
        </div>
        {upload && (
          <div className="upload" data-testid="upload">
            <span>{upload.name}</span>
            {upload.error ? <span className="error">{upload.error}</span> : <progress max={1} value={upload.progress} aria-label="Upload progress" />}
            <button className="link small" onClick={() => setUpload(null)}>
              Remove
            </button>
          </div>
        )}
        <form className="composer" onSubmit={send}>
          <label className="attach" title="Attach a file">
            Attach
            <input ref={fileInput} type="file" aria-label="Attach a file" onChange={(e) => pickFile(e.currentTarget.files?.[0])} />
          </label>
          <input
            value={draft}
            onChange={(e) => {
              setDraft(e.currentTarget.value);
              if (e.currentTarget.value) notifier.keystroke();
              else notifier.stop();
            }}
            onBlur={() => notifier.stop()}
            placeholder="Write a message"
            aria-label="Message"
            maxLength={4000}
          />
          <button type="submit">Send</button>
        </form>
      </section>
      <DocumentPanel roomId={roomId} client={client} viewer={viewer} />
    </div>
  );
}
