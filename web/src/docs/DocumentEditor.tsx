import { EditorState } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { basicSetup } from 'codemirror';
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { yUndoManagerKeymap } from 'y-codemirror.next';
import type { RealtimeClient } from '../client/index.ts';
import { indexedDbPersistence } from './doc-persistence.ts';
import { createDocProvider, type DocProvider, type DocSyncState } from './doc-provider.ts';
import { realtimeDocTransport } from './realtime-transport.ts';
import { collaboration } from './remote-cursors.ts';
import { colorIndex, PEER_COLORS } from './user-color.ts';

/** The sync state in words, for the status line. */
export function describeSync(state: DocSyncState): string {
  const edits = (n: number) => `${n} ${n === 1 ? 'edit' : 'edits'}`;
  switch (state.status) {
    case 'synced':
      return 'All changes saved';
    case 'syncing':
      return state.pendingUpdates > 0 ? `Saving ${edits(state.pendingUpdates)}…` : 'Syncing…';
    case 'connecting':
      return 'Connecting…';
    case 'offline':
      return state.pendingUpdates > 0 ? `Offline: ${edits(state.pendingUpdates)} kept, sent on reconnect` : 'Offline';
    case 'error':
      return `Not saved: ${state.error ?? 'refused'}`;
    case 'closed':
      return 'Closed';
  }
}

/** The editor lives in a shadow root: the app's stylesheet does not reach it, so its looks are set here. */
const editorTheme = EditorView.theme({
  '&': { flex: '1', minWidth: '0', height: '100%', backgroundColor: '#fff', fontSize: '0.95em' },
  '&.cm-focused': { outline: 'none' },
  '.cm-scroller': { overflow: 'auto', fontFamily: 'ui-monospace, SFMono-Regular, Menlo, monospace', lineHeight: '1.5' },
  // Room above the first line for a collaborator's name label.
  '.cm-content': { paddingTop: '18px' },
  '.cm-gutters': { backgroundColor: '#f4f6fa', borderRight: '1px solid #dde2ec', color: '#6b7385' },
});

interface Person {
  id: string;
  name: string;
  peer: number;
  self: boolean;
}

/** Everyone with an awareness state in the document, once per user (a user may have several tabs open). */
function peopleIn(provider: DocProvider, viewerId: string): Person[] {
  const byId = new Map<string, Person>();
  for (const state of provider.awareness.getStates().values()) {
    const user = state.user as { id?: string; name?: string } | undefined;
    if (!user?.id || byId.has(user.id)) continue;
    byId.set(user.id, { id: user.id, name: user.name ?? 'Someone', peer: colorIndex(user.id), self: user.id === viewerId });
  }
  return [...byId.values()].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
}

/** One shared document in a collaborative CodeMirror editor, with who is here and the sync state. */
export function DocumentEditor({ docId, title, client, viewer }: { docId: string; title: string; client: RealtimeClient; viewer: { id: string; name: string } }) {
  const [provider] = useState(() =>
    createDocProvider({
      docId,
      transport: realtimeDocTransport(client),
      user: viewer,
      // Per user, like the chat's offline queue: another account in this browser never sends these edits.
      ...(typeof indexedDB !== 'undefined' ? { persistence: indexedDbPersistence(`realtime-docs:${viewer.id}`) } : {}),
    }),
  );
  const host = useRef<HTMLDivElement>(null);
  const sync = useSyncExternalStore(provider.subscribe, provider.getSnapshot);
  const [people, setPeople] = useState<Person[]>(() => peopleIn(provider, viewer.id));

  useEffect(() => {
    // CodeMirror injects its styles as a <style> element in a document, which
    // the app's CSP (`style-src 'self'`) refuses; in a shadow root it adopts a
    // constructed stylesheet instead, which the CSP allows.
    const root = host.current!.shadowRoot ?? host.current!.attachShadow({ mode: 'open' });
    const view = new EditorView({
      root,
      parent: root,
      state: EditorState.create({
        doc: provider.text.toString(),
        extensions: [
          keymap.of(yUndoManagerKeymap),
          basicSetup,
          EditorView.lineWrapping,
          editorTheme,
          EditorView.contentAttributes.of({ 'aria-label': `Document text: ${title}` }),
          collaboration(provider.text, provider.awareness),
        ],
      }),
    });
    const onChange = () => setPeople(peopleIn(provider, viewer.id));
    provider.awareness.on('change', onChange);
    onChange();
    return () => {
      provider.awareness.off('change', onChange);
      view.destroy();
    };
  }, [provider, title, viewer.id]);
  // After the view's cleanup above: closing the document publishes the cursor as gone and saves it.
  useEffect(() => () => provider.destroy(), [provider]);

  return (
    <div className="doc-editor">
      <div className="doc-meta">
        <span className="doc-status" role="status" aria-live="polite" data-sync={sync.status} data-pending={sync.pendingUpdates}>
          <span className="dot" aria-hidden="true" />
          {describeSync(sync)}
        </span>
        <ul className="doc-people" aria-label="People in this document">
          {people.map((p) => (
            <li key={p.id} className="doc-person" data-user-id={p.id}>
              <span className="doc-swatch" style={{ backgroundColor: PEER_COLORS[p.peer] }} aria-hidden="true" />
              {p.self ? `${p.name} (you)` : p.name}
            </li>
          ))}
        </ul>
      </div>
      <div className="doc-host" ref={host} />
    </div>
  );
}
