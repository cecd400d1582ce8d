/** Entry point of the browser page served by `berth serve`: WebSocket transport, store, React root. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { ForwardStore } from './store.js';
import { WebSocketTransport } from './ws-transport.js';
import './styles.css';

// The server already checked the token (it set an HttpOnly cookie); the WebSocket carries that cookie, so
// the token can leave the address bar (screen shares, history). The gate page's retry marker is spent.
sessionStorage.removeItem('berth-auth-tried');
if (location.hash.includes('token=')) history.replaceState(null, '', location.pathname + location.search);
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const transport = new WebSocketTransport({ url: `${scheme}//${location.host}/api` });
const store = new ForwardStore();
store.connect(transport);

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App store={store} transport={transport} />
    </StrictMode>,
  );
}
