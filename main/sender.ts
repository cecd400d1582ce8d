/**
 * Who may talk to the engine over IPC: the top frame of Berth's own page, at Berth's own origin
 * (`app://berth` when packaged, the Vite dev server during `npm start`). An iframe, a page that navigated
 * elsewhere, or a frame already gone (senderFrame null) is refused.
 */
import type { WebFrameMain } from 'electron';

/** Returns the sender check for pages loaded from `appUrl`. */
export function trustedSender(appUrl: string): (frame: WebFrameMain | null | undefined) => boolean {
  const app = new URL(appUrl);
  return (frame) => {
    if (!frame || frame.parent !== null) return false;
    return sameOrigin(frame.url, app);
  };
}

/**
 * Compares scheme, host and port. `URL.origin` is "null" for custom schemes like app:, so it cannot be
 * used for the packaged app's origin.
 */
export function sameOrigin(url: string, app: URL): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return parsed.protocol === app.protocol && parsed.host === app.host && parsed.username === '';
}
