import { useEffect, useState, useSyncExternalStore } from 'react';
import type { ConnectionState, ConnectionStore } from '../client/index.ts';

/** The banner's sentence for a connection state; `now` is epoch ms (for the countdown). */
export function describeConnection(state: ConnectionState, now: number): { tone: 'ok' | 'warn' | 'bad'; text: string } {
  const queued = state.queued > 0 ? `, ${state.queued} ${state.queued === 1 ? 'message' : 'messages'} queued` : '';
  const seconds = state.retryAt !== undefined ? Math.max(0, Math.ceil((state.retryAt - now) / 1000)) : undefined;
  switch (state.status) {
    case 'connected':
      return { tone: 'ok', text: state.queued > 0 ? `Connected, sending ${state.queued} queued` : 'Connected' };
    case 'connecting':
      return { tone: 'warn', text: `Connecting…${queued}` };
    case 'reconnecting':
      return { tone: 'warn', text: seconds ? `Reconnecting in ${seconds} s${queued}` : `Reconnecting…${queued}` };
    case 'offline':
      return { tone: 'bad', text: `Offline${seconds ? ` (retrying in ${seconds} s)` : ''}${queued}` };
    case 'closed':
      return { tone: 'bad', text: state.closeCode === 4401 || state.closeCode === 4403 ? 'Signed out: please sign in again' : `Disconnected${queued}` };
  }
}

/** Connected / reconnecting in N s / offline, and how many messages wait to be sent. */
export function ConnectionBanner({ connection }: { connection: ConnectionStore }) {
  const state = useSyncExternalStore(connection.subscribe, connection.getSnapshot);
  const [now, setNow] = useState(() => Date.now());
  const counting = state.retryAt !== undefined;
  useEffect(() => {
    if (!counting) return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    setNow(Date.now());
    return () => clearInterval(timer);
  }, [counting, state.retryAt]);
  const { tone, text } = describeConnection(state, now);
  return (
    <div role="status" aria-live="polite" className={`banner banner-${tone}`} data-status={state.status} data-queued={state.queued}>
      <span className="dot" aria-hidden="true" />
      {text}
    </div>
  );
}
