import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { useSubscription } from 'urql';
import { PresenceChangedDocument, type PresenceStatus } from '../gql/graphql.ts';

type PresenceMap = ReadonlyMap<string, PresenceStatus>;
const PresenceContext = createContext<PresenceMap>(new Map());

/** Live presence of everyone who shares a room with the viewer, layered over what queries returned. */
export function PresenceProvider({ children }: { children: ReactNode }) {
  const [map, setMap] = useState<PresenceMap>(new Map());
  const [result] = useSubscription({ query: PresenceChangedDocument });
  const event = result.data?.presenceChanged;
  useEffect(() => {
    if (!event) return;
    setMap((prev) => new Map(prev).set(event.user.id, event.status));
  }, [event]);
  return <PresenceContext.Provider value={map}>{children}</PresenceContext.Provider>;
}

/** The newest known status of a user (`fallback` is what the last query said). */
export function usePresence(userId: string, fallback: PresenceStatus): PresenceStatus {
  return useContext(PresenceContext).get(userId) ?? fallback;
}

export function PresenceDot({ userId, status, self }: { userId: string; status: PresenceStatus; self?: boolean }) {
  const live = usePresence(userId, status);
  const online = self || live === 'ONLINE';
  return <span className={`presence ${online ? 'online' : 'offline'}`} data-user={userId} data-presence={online ? 'online' : 'offline'} title={online ? 'online' : 'offline'} />;
}
