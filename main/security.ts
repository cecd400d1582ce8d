/**
 * Secure defaults of Berth's window, following Electron's security checklist: the window's options, the
 * Content-Security-Policy, navigation and new-window denial, external links through an allow-list, and
 * permission requests refused.
 */
import type {
  BrowserWindowConstructorOptions,
  HandlerDetails,
  Session,
  WebContents,
  WindowOpenHandlerResponse,
} from 'electron';
import { sameOrigin } from './sender.js';

/** Builds the window's options: isolated, sandboxed, no Node, web security on, the preload at `preload`. */
export function windowOptions(preload: string): BrowserWindowConstructorOptions {
  return {
    width: 1024,
    height: 680,
    minWidth: 640,
    minHeight: 420,
    title: 'Berth',
    // Shown once the page has painted, so the window never flashes white.
    show: false,
    webPreferences: {
      preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: false,
    },
  };
}

/**
 * The window's Content-Security-Policy: only Berth's own files (the built UI has no inline script or style:
 * vite.config.ts sets assetsInlineLimit 0). During development the Vite dev server needs its WebSocket and
 * React's inline refresh preamble, so `devServer` relaxes exactly those two.
 */
export function contentSecurityPolicy(devServer?: string): string {
  const dev = devServer ? new URL(devServer) : undefined;
  const script = dev ? "'self' 'unsafe-inline'" : "'self'";
  const connect = dev ? `'self' ws://${dev.host}` : "'self'";
  return [
    "default-src 'none'",
    `script-src ${script}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "frame-src 'none'",
    "object-src 'none'",
    "worker-src 'none'",
  ].join('; ');
}

/** Response headers with Berth's CSP in place of any the response carried (any case of the name). */
export function withCsp(
  headers: Record<string, string[]> | undefined,
  csp: string,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() !== 'content-security-policy') out[name] = value;
  }
  out['Content-Security-Policy'] = [csp];
  return out;
}

/** Where external links may go: https pages of these hosts, opened in the user's browser. */
export const EXTERNAL_HOSTS: readonly string[] = ['github.com', 'www.electronjs.org'];

/** True when `url` may be handed to `shell.openExternal`: https, an allowed host, no credentials. */
export function isAllowedExternal(url: string, hosts: readonly string[] = EXTERNAL_HOSTS): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (
    parsed.protocol === 'https:' &&
    parsed.username === '' &&
    parsed.password === '' &&
    parsed.port === '' &&
    hosts.includes(parsed.hostname)
  );
}

/** What the guard needs from Electron. */
export interface GuardOptions {
  /** The page's own address; navigation is allowed only within its origin (reloads, hash changes). */
  appUrl: string;
  openExternal: (url: string) => Promise<void>;
}

/**
 * Denies every navigation away from Berth's page and every new window; a link to an allowed host opens in
 * the user's browser instead. Applied to every WebContents the app creates.
 */
export function guardWebContents(contents: WebContents, options: GuardOptions): void {
  const app = new URL(options.appUrl);
  contents.setWindowOpenHandler((details: HandlerDetails): WindowOpenHandlerResponse => {
    openIfAllowed(details.url, options);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event) => {
    if (sameOrigin(event.url, app)) return;
    event.preventDefault();
    openIfAllowed(event.url, options);
  });
  contents.on('will-redirect', (event) => {
    if (!sameOrigin(event.url, app)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

function openIfAllowed(url: string, options: GuardOptions): void {
  // A rejected openExternal (no browser configured) must not become an unhandled rejection in main.
  if (isAllowedExternal(url)) options.openExternal(url).catch(() => undefined);
}

/** Refuses every permission (camera, notifications from the page, ...): Berth's page needs none. */
export function denyPermissions(
  session: Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler'>,
): void {
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
}
