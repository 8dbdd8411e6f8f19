import { useEffect, useState } from 'react';
import { useClient, useMutation, useQuery, useSubscription } from 'urql';
import { Link } from '../app/Link.tsx';
import { MarkNotificationReadDocument, NotificationAddedDocument, NotificationsDocument, type NotificationItemFragment } from '../gql/graphql.ts';
import { enablePush, type PushSetup } from './push.ts';

const PUSH_TEXT: Record<PushSetup, string> = {
  unsupported: 'This browser cannot show push notifications.',
  'off-on-server': 'Push notifications are not configured on this server.',
  denied: 'Notifications are blocked for this site (change it in the browser’s site settings).',
  subscribed: 'Push notifications are on for this browser.',
};

/** The viewer's notifications, newest first, live; push is turned on here, by a click. */
export function NotificationsPage() {
  const urql = useClient();
  const [{ data }, refetch] = useQuery({ query: NotificationsDocument, variables: { first: 50 }, requestPolicy: 'cache-and-network' });
  const [added] = useSubscription({ query: NotificationAddedDocument });
  const [live, setLive] = useState<NotificationItemFragment[]>([]);
  const [, markRead] = useMutation(MarkNotificationReadDocument);
  const [push, setPush] = useState<string | null>(null);

  const newest = added.data?.notificationAdded;
  useEffect(() => {
    if (newest) setLive((prev) => (prev.some((n) => n.id === newest.id) ? prev : [newest, ...prev]));
  }, [newest]);

  const stored = data?.notifications.edges.map((e) => e.node) ?? [];
  const items = [...live.filter((n) => !stored.some((s) => s.id === n.id)), ...stored];

  return (
    <section className="notifications">
      <h2>Notifications</h2>
      <div className="push-setup">
        <button
          onClick={() => {
            setPush('Asking…');
            enablePush(urql).then(
              (state) => setPush(PUSH_TEXT[state]),
              (error: Error) => setPush(`Could not turn on push: ${error.message}`),
            );
          }}
        >
          Enable push notifications
        </button>
        {push && <span className="muted">{push}</span>}
      </div>
      <ul className="notification-list">
        {items.length === 0 && <li className="muted">Nothing yet.</li>}
        {items.map((n) => (
          <li key={n.id} className={n.read ? 'read' : 'unread'}>
            <Link to={`/rooms/${n.roomId}`}>
              <strong>{n.title}</strong>
            </Link>
            <div>{n.body}</div>
            <time className="muted small">{new Date(n.createdAt).toLocaleString()}</time>
            {!n.read && (
              <button className="link small" onClick={() => void markRead({ id: n.id }).then(() => refetch({ requestPolicy: 'network-only' }))}>
                Mark read
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
