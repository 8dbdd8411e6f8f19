import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import type { RealtimeClient } from '../client/index.ts';
import { CreateDocumentDocument, RoomDocumentsDocument, type DocumentItemFragment } from '../gql/graphql.ts';
import { DocumentEditor } from './DocumentEditor.tsx';

/** The open document is kept in the page's `?doc=` so a reload (or a shared link) reopens it. */
function docFromUrl(): string | null {
  return new URLSearchParams(window.location.search).get('doc');
}

function setDocInUrl(docId: string | null) {
  const url = new URL(window.location.href);
  if (docId) url.searchParams.set('doc', docId);
  else url.searchParams.delete('doc');
  history.replaceState(history.state, '', url);
}

type KnownDocument = Pick<DocumentItemFragment, 'id' | 'title' | 'createdBy'>;

/**
 * The room's list as last loaded, so that a document opened offline (after a
 * reload, say) still opens from its saved copy. Per user and room.
 */
function knownKey(viewerId: string, roomId: string) {
  return `rt.documents:${viewerId}:${roomId}`;
}

function readKnown(viewerId: string, roomId: string): KnownDocument[] {
  try {
    return JSON.parse(localStorage.getItem(knownKey(viewerId, roomId)) ?? '[]') as KnownDocument[];
  } catch {
    return [];
  }
}

/** A room's shared documents beside the chat: the list, a form to create one, and the open one in the editor. */
export function DocumentPanel({ roomId, client, viewer }: { roomId: string; client: RealtimeClient; viewer: { id: string; name: string } }) {
  const [{ data, error }, refetch] = useQuery({ query: RoomDocumentsDocument, variables: { roomId }, requestPolicy: 'cache-and-network' });
  // There is no event for a new document: refresh the list now and then, and when the user comes back.
  useEffect(() => {
    const refresh = () => refetch({ requestPolicy: 'network-only' });
    const timer = setInterval(refresh, 10_000);
    window.addEventListener('focus', refresh);
    return () => {
      clearInterval(timer);
      window.removeEventListener('focus', refresh);
    };
  }, [refetch]);
  const [creating, createDocument] = useMutation(CreateDocumentDocument);
  const [problem, setProblem] = useState<string | null>(null);
  const [openId, setOpenId] = useState<string | null>(docFromUrl);
  const [known] = useState(() => readKnown(viewer.id, roomId));
  const documents: KnownDocument[] = data?.room.documents ?? known;
  useEffect(() => {
    if (!data) return;
    const list = data.room.documents.map(({ id, title, createdBy }) => ({ id, title, createdBy }));
    localStorage.setItem(knownKey(viewer.id, roomId), JSON.stringify(list));
  }, [data, viewer.id, roomId]);
  const open = documents.find((d) => d.id === openId);

  function select(docId: string | null) {
    setOpenId(docId);
    setDocInUrl(docId);
  }

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const title = String(new FormData(form).get('title') ?? '').trim();
    if (!title) return;
    setProblem(null);
    const result = await createDocument({ roomId, title });
    if (result.error) {
      setProblem(result.error.graphQLErrors[0]?.message ?? result.error.message);
      return;
    }
    form.reset();
    refetch({ requestPolicy: 'network-only' });
    if (result.data) select(result.data.createDocument.id);
  }

  return (
    <aside className="doc-panel" aria-label="Shared documents">
      <header className="doc-panel-header">
        <h3>{open ? open.title : 'Documents'}</h3>
        {open && (
          <button className="link small" onClick={() => select(null)}>
            Close document
          </button>
        )}
      </header>
      {open ? (
        <DocumentEditor key={open.id} docId={open.id} title={open.title} client={client} viewer={viewer} />
      ) : (
        <>
          {error && !data && <p className="error small">{error.graphQLErrors[0]?.message ?? error.message}</p>}
          <ul className="doc-list" aria-label="Documents">
            {documents.map((d) => (
              <li key={d.id}>
                <button className="link" onClick={() => select(d.id)} aria-label={`Open ${d.title}`}>
                  {d.title}
                </button>
                <span className="muted small">{d.createdBy ? `by ${d.createdBy.name}` : ''}</span>
              </li>
            ))}
            {data && documents.length === 0 && <li className="muted small">No documents yet.</li>}
          </ul>
          <form className="inline-form" onSubmit={(e) => void create(e)}>
            <input name="title" placeholder="New document title" aria-label="New document title" maxLength={200} />
            <button type="submit" disabled={creating.fetching}>
              Create document
            </button>
          </form>
          {problem && <p className="error small">{problem}</p>}
        </>
      )}
    </aside>
  );
}
