import { createRoot } from 'react-dom/client';
import { App } from './app/App.tsx';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  // No StrictMode: its double mount would dispose the session's realtime client.
  <App />,
);

// The worker shows Web Push notifications while the app is closed and keeps
// the app shell for reloads without a network (the offline queue survives in IndexedDB).
if ('serviceWorker' in navigator) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch((error: unknown) => console.warn('service worker not registered', error));
  });
}
