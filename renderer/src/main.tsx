/** Entry point of the UI: the preload's IPC transport in Berth's window, else a WebSocket to `berth serve`. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { IpcTransport, preloadBridge } from './ipc-transport.js';
import { ForwardStore } from './store.js';
import { WebSocketTransport } from './ws-transport.js';
import './styles.css';

// The token is kept in this origin's sessionStorage (never a cookie: browsers share localhost cookies with
// every port) and offered to the API as a WebSocket subprotocol; it can leave the address bar (screen
// shares, history). The gate page's retry marker is spent.
sessionStorage.removeItem('berth-auth-tried');
const fromAddress = /(?:^#|&)token=([^&]+)/.exec(location.hash)?.[1];
if (fromAddress) sessionStorage.setItem('berth-token', decodeURIComponent(fromAddress));
if (location.hash.includes('token=')) history.replaceState(null, '', location.pathname + location.search);
const token = sessionStorage.getItem('berth-token') ?? '';
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const bridge = preloadBridge();
const transport = bridge
  ? new IpcTransport(bridge)
  : new WebSocketTransport({
      url: `${scheme}//${location.host}/api`,
      protocols: ['berth.v1', `berth-token.${token}`],
    });
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
