import { RangeSet, type Extension, type Range } from '@codemirror/state';
import { Decoration, EditorView, ViewPlugin, WidgetType, type DecorationSet, type ViewUpdate } from '@codemirror/view';
import { yCollab, yRemoteSelections, ySyncFacet } from 'y-codemirror.next';
import type { Awareness } from 'y-protocols/awareness';
import * as Y from 'yjs';
import { colorIndex, PEER_COLORS } from './user-color.ts';

/**
 * Collaborators' carets, name labels and selections in the editor.
 *
 * y-codemirror.next draws these with inline `style` attributes, which the
 * app's Content Security Policy (`style-src 'self'`) refuses; this plugin
 * draws the same things with classes (`doc-peer-N`, one per palette colour,
 * styled by the theme below), and keeps the name label always visible. Like
 * the original, it also publishes the local cursor in the awareness state.
 */
class CaretWidget extends WidgetType {
  constructor(
    readonly peer: number,
    readonly name: string,
  ) {
    super();
  }

  override toDOM(): HTMLElement {
    const caret = document.createElement('span');
    caret.className = `cm-ySelectionCaret doc-caret doc-peer-${this.peer}`;
    caret.append('\u2060');
    const dot = document.createElement('span');
    dot.className = 'cm-ySelectionCaretDot';
    const info = document.createElement('span');
    info.className = 'cm-ySelectionInfo doc-caret-name';
    info.textContent = this.name;
    caret.append(dot, '\u2060', info, '\u2060');
    return caret;
  }

  override eq(other: CaretWidget): boolean {
    return other.peer === this.peer && other.name === this.name;
  }

  override get estimatedHeight(): number {
    return -1;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

interface CursorState {
  anchor: unknown;
  head: unknown;
}

class RemoteCursors {
  decorations: DecorationSet = RangeSet.of([]);
  private readonly awareness: Awareness;
  private readonly onChange: (change: { added: number[]; updated: number[]; removed: number[] }) => void;

  constructor(view: EditorView) {
    const conf = view.state.facet(ySyncFacet);
    this.awareness = conf.awareness as Awareness;
    this.onChange = ({ added, updated, removed }) => {
      const self = this.awareness.doc.clientID;
      if ([...added, ...updated, ...removed].some((id) => id !== self)) view.dispatch({});
    };
    this.awareness.on('change', this.onChange);
  }

  destroy() {
    this.awareness.off('change', this.onChange);
  }

  update(update: ViewUpdate) {
    const { ytext } = update.state.facet(ySyncFacet);
    const ydoc = ytext.doc!;
    const awareness = this.awareness;

    // This client's cursor, for the others.
    const local = awareness.getLocalState();
    if (local) {
      const hasFocus = update.view.hasFocus && update.view.dom.ownerDocument.hasFocus();
      const sel = hasFocus ? update.state.selection.main : null;
      const current = local.cursor as CursorState | null | undefined;
      if (sel) {
        const anchor = Y.createRelativePositionFromTypeIndex(ytext, sel.anchor);
        const head = Y.createRelativePositionFromTypeIndex(ytext, sel.head);
        const same =
          current != null &&
          Y.compareRelativePositions(Y.createRelativePositionFromJSON(current.anchor), anchor) &&
          Y.compareRelativePositions(Y.createRelativePositionFromJSON(current.head), head);
        if (!same) awareness.setLocalStateField('cursor', { anchor, head });
      } else if (current != null && hasFocus) {
        awareness.setLocalStateField('cursor', null);
      }
    }

    // The others' carets and selections.
    const decorations: Range<Decoration>[] = [];
    awareness.getStates().forEach((state, clientId) => {
      if (clientId === ydoc.clientID) return;
      const cursor = state.cursor as CursorState | null | undefined;
      if (cursor?.anchor == null || cursor.head == null) return;
      const anchor = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.anchor), ydoc);
      const head = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.head), ydoc);
      if (!anchor || !head || anchor.type !== ytext || head.type !== ytext) return;
      const user = (state.user ?? {}) as { id?: string; name?: string };
      const peer = colorIndex(user.id ?? String(clientId));
      const name = user.name ?? 'Someone';
      const docLength = update.state.doc.length;
      const start = Math.min(anchor.index, head.index, docLength);
      const end = Math.min(Math.max(anchor.index, head.index), docLength);
      if (end > start) {
        const mark = Decoration.mark({ class: `cm-ySelection doc-peer-${peer}-selection` });
        const startLine = update.state.doc.lineAt(start);
        const endLine = update.state.doc.lineAt(end);
        if (startLine.number === endLine.number) decorations.push(mark.range(start, end));
        else {
          if (startLine.to > start) decorations.push(mark.range(start, startLine.to));
          for (let n = startLine.number + 1; n < endLine.number; n++) {
            const line = update.state.doc.line(n);
            decorations.push(Decoration.line({ class: `cm-yLineSelection doc-peer-${peer}-selection` }).range(line.from));
          }
          if (end > endLine.from) decorations.push(mark.range(endLine.from, end));
        }
      }
      const at = Math.min(head.index, docLength);
      decorations.push(Decoration.widget({ side: head.index - anchor.index > 0 ? -1 : 1, widget: new CaretWidget(peer, name) }).range(at));
    });
    this.decorations = Decoration.set(decorations, true);
  }
}

const remoteCursors = ViewPlugin.fromClass(RemoteCursors, { decorations: (v) => v.decorations });

const remoteCursorsTheme = EditorView.baseTheme({
  '.doc-caret .doc-caret-name': { opacity: 1, fontFamily: 'inherit', top: '-1.25em', borderRadius: '3px 3px 3px 0', padding: '0 4px' },
  ...Object.fromEntries(
    PEER_COLORS.flatMap((color, i) => [
      [`.doc-peer-${i}`, { backgroundColor: color, borderColor: color }],
      [`.doc-peer-${i}-selection`, { backgroundColor: `${color}33` }],
    ]),
  ),
});

/**
 * yCollab (text sync, remote selections, Yjs undo) with the collaborators'
 * cursors drawn by {@link remoteCursors} instead of y-codemirror.next's own.
 */
export function collaboration(text: Y.Text, awareness: Awareness): Extension {
  const extensions = yCollab(text, awareness) as Extension[];
  return [...extensions.filter((e) => e !== yRemoteSelections), remoteCursorsTheme, remoteCursors];
}
