/** Entry point of the UI: the preload's IPC transport in Berth's window, else a WebSocket to `berth serve`. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { IpcTransport, preloadBridge } from './ipc-transport.js';
import { ForwardStore } from './store.js';
import { WebSocketTransport } from './ws-transport.js';
import './styles.css';

// The server already checked the token (it set an HttpOnly cookie); the WebSocket carries that cookie, so
// the token can leave the address bar (screen shares, history). The gate page's retry marker is spent.
sessionStorage.removeItem('berth-auth-tried');
if (location.hash.includes('token=')) history.replaceState(null, '', location.pathname + location.search);
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const bridge = preloadBridge();
const transport = bridge
  ? new IpcTransport(bridge)
  : new WebSocketTransport({ url: `${scheme}//${location.host}/api` });
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
