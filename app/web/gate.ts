/**
 * The page a request without the token gets (status 401). The browser keeps `#token=...` to itself, so this
 * page's one script sends it to `/auth` in a header; the server answers with an HttpOnly cookie that opens
 * the UI's files, the token goes to this origin's sessionStorage for the API, and the page reloads as the
 * app. Without a token it says where the right address is.
 */
import { createHash } from 'node:crypto';

const SCRIPT = `(() => {
  const run = () => {
  const say = (text) => { document.getElementById('why').textContent = text; };
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) { say('Open the address that berth serve printed: it ends with #token=...'); return; }
  if (sessionStorage.getItem('berth-auth-tried') === location.hash) {
    sessionStorage.removeItem('berth-auth-tried');
    say('This address has an old token. Copy the address that berth serve printed when it last started.');
    return;
  }
  fetch('/auth', { method: 'POST', headers: { Authorization: 'Bearer ' + decodeURIComponent(match[1]) } })
    .then((response) => {
      if (!response.ok) { say('This address has an old token. Copy the address that berth serve printed when it last started.'); return; }
      sessionStorage.setItem('berth-auth-tried', location.hash);
      sessionStorage.setItem('berth-token', decodeURIComponent(match[1]));
      location.reload();
    })
    .catch(() => say('Berth did not answer. Check that berth serve is still running.'));
  };
  addEventListener('hashchange', run);
  run();
})();`;

/** The gate page's HTML. */
export const GATE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="color-scheme" content="light dark"><title>Berth</title></head>
<body><h1>Berth</h1><p id="why">Opening Berth…</p><script>${SCRIPT}</script></body></html>
`;

/** The Content-Security-Policy of the gate page: its one inline script, by hash, and nothing else. */
export const GATE_CSP = `default-src 'none'; script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
