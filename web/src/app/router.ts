import { useSyncExternalStore } from 'react';

/** The app's pages, from `location.pathname`. */
export type Route =
  | { page: 'rooms' }
  | { page: 'room'; roomId: string }
  | { page: 'notifications' }
  | { page: 'dashboard' };

export function parseRoute(pathname: string): Route {
  const room = /^\/rooms\/([^/]+)\/?$/.exec(pathname);
  if (room?.[1]) return { page: 'room', roomId: decodeURIComponent(room[1]) };
  if (pathname.startsWith('/notifications')) return { page: 'notifications' };
  if (pathname.startsWith('/dashboard')) return { page: 'dashboard' };
  return { page: 'rooms' };
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(path: string): void {
  if (path === window.location.pathname) return;
  history.pushState(null, '', path);
  listeners.forEach((l) => l());
}

export function usePathname(): string {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => window.location.pathname,
  );
}
