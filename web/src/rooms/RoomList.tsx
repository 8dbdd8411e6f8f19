import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link } from '../app/Link.tsx';
import { PresenceDot } from '../app/presence.tsx';
import { navigate } from '../app/router.ts';
import { CreateRoomDocument, JoinRoomDocument, RoomsDocument, type RoomListItemFragment } from '../gql/graphql.ts';

/** The viewer's rooms with unread counts and members' presence; create a room or join one by id. */
export function RoomList({ viewerId }: { viewerId: string }) {
  const [{ data, fetching, error }, refetch] = useQuery({ query: RoomsDocument, requestPolicy: 'cache-and-network' });
  // Unread counts change with every message in every room; a light refresh beats a subscription per room.
  useEffect(() => {
    const refresh = () => refetch({ requestPolicy: 'network-only' });
    const timer = setInterval(refresh, 15_000);
    window.addEventListener('focus', refresh);
    return () => {
      clearInterval(timer);
      window.removeEventListener('focus', refresh);
    };
  }, [refetch]);
  const [, createRoom] = useMutation(CreateRoomDocument);
  const [, joinRoom] = useMutation(JoinRoomDocument);
  const [problem, setProblem] = useState<string | null>(null);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name') ?? '').trim();
    if (!name) return;
    const result = await createRoom({ input: { name, memberIds: [] } });
    if (result.error) setProblem(result.error.message);
    else if (result.data) navigate(`/rooms/${result.data.createRoom.id}`);
  }

  async function join(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const raw = String(new FormData(e.currentTarget).get('roomId') ?? '').trim();
    // Accept a pasted room link as well as a bare id.
    const roomId = /\/rooms\/([^/?#]+)/.exec(raw)?.[1] ?? raw;
    if (!roomId) return;
    const result = await joinRoom({ roomId });
    if (result.error) setProblem(result.error.message);
    else if (result.data) navigate(`/rooms/${result.data.joinRoom.id}`);
  }

  return (
    <section className="rooms">
      <h2>Rooms</h2>
      {error && !data && <p className="error">{error.message}</p>}
      {fetching && !data && <p className="muted">Loading…</p>}
      <ul className="room-list">
        {data?.rooms.map((room) => <RoomRow key={room.id} room={room} viewerId={viewerId} />)}
        {data && data.rooms.length === 0 && <li className="muted">No rooms yet: create one, or join one with its link.</li>}
      </ul>
      <div className="room-forms">
        <form onSubmit={create} className="inline-form">
          <input name="name" placeholder="New room name" aria-label="New room name" maxLength={100} />
          <button type="submit">Create room</button>
        </form>
        <form onSubmit={join} className="inline-form">
          <input name="roomId" placeholder="Room link or id" aria-label="Room link or id" />
          <button type="submit">Join room</button>
        </form>
        {problem && <p className="error" role="alert">{problem}</p>}
      </div>
    </section>
  );
}

function RoomRow({ room, viewerId }: { room: RoomListItemFragment; viewerId: string }) {
  const others = room.members.filter((m) => m.id !== viewerId);
  return (
    <li className="room-row" data-room-id={room.id}>
      <Link to={`/rooms/${room.id}`}>
        <span className="room-name">{room.name}</span>
        {room.unreadCount > 0 && (
          <span className="badge" data-testid="unread-count">
            {room.unreadCount}
          </span>
        )}
      </Link>
      <span className="members">
        {others.slice(0, 8).map((m) => (
          <span key={m.id} className="member">
            <PresenceDot userId={m.id} status={m.status} />
            {m.name}
          </span>
        ))}
      </span>
    </li>
  );
}
