import { useEffect, useMemo, useState } from 'react';
import { Provider, useQuery, useSubscription } from 'urql';
import { AuthScreen } from '../auth/AuthScreen.tsx';
import { RoomView } from '../chat/RoomView.tsx';
import { ConnectionBanner } from '../connection/ConnectionBanner.tsx';
import { DashboardPage } from '../dashboard/DashboardPage.tsx';
import { NotificationAddedDocument, UnreadNotificationCountDocument } from '../gql/graphql.ts';
import { NotificationsPage } from '../notifications/NotificationsPage.tsx';
import { RoomList } from '../rooms/RoomList.tsx';
import { Link } from './Link.tsx';
import { PresenceProvider } from './presence.tsx';
import { parseRoute, usePathname } from './router.ts';
import { createSessionClient, loadSession, saveSession, type Session } from './session.ts';

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  if (!session) {
    return (
      <AuthScreen
        onSignedIn={(s) => {
          saveSession(s);
          setSession(s);
        }}
      />
    );
  }
  return (
    <SignedIn
      key={session.user.id}
      session={session}
      onSignOut={() => {
        saveSession(null);
        setSession(null);
      }}
    />
  );
}

function SignedIn({ session, onSignOut }: { session: Session; onSignOut(): void }) {
  const client = useMemo(() => createSessionClient(session), [session]);
  useEffect(() => {
    // The browser says the network is back, or the user returns: do not wait out the backoff.
    const retry = () => {
      if (client.connection.getSnapshot().status !== 'connected') client.retryNow();
    };
    window.addEventListener('online', retry);
    window.addEventListener('focus', retry);
    return () => {
      window.removeEventListener('online', retry);
      window.removeEventListener('focus', retry);
      void client.dispose();
    };
  }, [client]);
  const route = parseRoute(usePathname());
  return (
    <Provider value={client.urql}>
      <PresenceProvider>
        <div className="layout">
          <header className="topbar">
            <Link to="/" className="brand">
              Realtime chat
            </Link>
            <nav>
              <Link to="/">Rooms</Link>
              <Link to="/notifications">
                Notifications <NotificationBadge />
              </Link>
              <Link to="/dashboard">Dashboard</Link>
            </nav>
            <span className="me" data-testid="me">
              {session.user.name}
            </span>
            <button className="link" onClick={onSignOut}>
              Sign out
            </button>
          </header>
          <ConnectionBanner connection={client.connection} />
          <div className="page">
            {route.page === 'rooms' && <RoomList viewerId={session.user.id} />}
            {route.page === 'room' && <RoomView key={route.roomId} roomId={route.roomId} client={client} viewer={session.user} />}
            {route.page === 'notifications' && <NotificationsPage />}
            {route.page === 'dashboard' && <DashboardPage />}
          </div>
        </div>
      </PresenceProvider>
    </Provider>
  );
}

/** Unread notifications: the query's count, plus what arrived live since. */
function NotificationBadge() {
  const [{ data }, refetch] = useQuery({ query: UnreadNotificationCountDocument, requestPolicy: 'cache-and-network' });
  const [added] = useSubscription({ query: NotificationAddedDocument });
  const newest = added.data?.notificationAdded.id;
  useEffect(() => {
    if (newest) refetch({ requestPolicy: 'network-only' });
  }, [newest, refetch]);
  const count = data?.unreadNotificationCount ?? 0;
  if (count === 0) return null;
  return (
    <span className="badge" data-testid="notification-badge" aria-label={`${count} unread`}>
      {count}
    </span>
  );
}
