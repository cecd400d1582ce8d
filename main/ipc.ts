/**
 * The main-process side of Berth's IPC, and the only main-process code that touches `ipcMain` or
 * `webContents.send` (lint bans them elsewhere). Each window is one API session (app/api/session.ts), as a
 * control-socket or WebSocket connection is; this file adds only the sender check: the sender must be the
 * top frame of Berth's own page (not an iframe, not a page navigated elsewhere). Nothing throws across the
 * boundary: a call always resolves to `{ ok: true, result }` or `{ ok: false, error }` with the envelope.
 */
import type { IpcMain, IpcMainEvent, IpcMainInvokeEvent, WebContents, WebFrameMain } from 'electron';
import { CHANNELS, type BridgeReply } from '../app/api/bridge.js';
import type { ApiTarget, CommandName } from '../app/api/contract.js';
import { ApiError, toEnvelope } from '../app/api/errors.js';
import { ApiSession } from '../app/api/session.js';

/** The parts of `ipcMain` the handlers need. */
export type IpcMainLike = Pick<IpcMain, 'handle' | 'removeHandler' | 'on' | 'removeListener'>;

/** Decides whether a frame may talk to the engine (see main/sender.ts). */
export type SenderCheck = (frame: WebFrameMain | null | undefined) => boolean;

/** What a rejected sender is told; the same words whatever the reason, so a probe learns nothing. */
const FORBIDDEN = 'Only the Berth window may use this API.';

/** Registers the call, subscribe and unsubscribe handlers; returns the function that removes them. */
export function registerIpc(ipcMain: IpcMainLike, api: ApiTarget, isTrusted: SenderCheck): () => void {
  const sessions = new Map<WebContents, ApiSession>();

  const sessionOf = (contents: WebContents): ApiSession => {
    let session = sessions.get(contents);
    if (!session) {
      session = new ApiSession(api, {
        // Answers go back through invoke(); only events are sent.
        send: (message) => {
          if ('event' in message && !contents.isDestroyed()) contents.send(CHANNELS.event, message.event);
        },
        // webContents.send keeps no queue a slow window could grow.
        buffered: () => 0,
        close: () => undefined,
      });
      sessions.set(contents, session);
      contents.once('destroyed', () => end(contents));
    }
    return session;
  };

  const end = (contents: WebContents) => {
    sessions.get(contents)?.end();
    sessions.delete(contents);
  };

  const onCall = (event: IpcMainInvokeEvent, ...args: unknown[]): Promise<BridgeReply<CommandName>> =>
    isTrusted(event.senderFrame)
      ? sessionOf(event.sender).invoke(args)
      : Promise.resolve({ ok: false, error: toEnvelope(new ApiError('EFORBIDDEN', FORBIDDEN)) });

  // A reload subscribes again: the session starts over, and the page gets a fresh snapshot.
  const onSubscribe = (event: IpcMainEvent, ...args: unknown[]) => {
    if (isTrusted(event.senderFrame) && args.length === 0) sessionOf(event.sender).subscribe();
  };

  const onUnsubscribe = (event: IpcMainEvent, ...args: unknown[]) => {
    if (isTrusted(event.senderFrame) && args.length === 0) sessions.get(event.sender)?.unsubscribe();
  };

  ipcMain.handle(CHANNELS.call, onCall);
  ipcMain.on(CHANNELS.subscribe, onSubscribe);
  ipcMain.on(CHANNELS.unsubscribe, onUnsubscribe);
  return () => {
    ipcMain.removeHandler(CHANNELS.call);
    ipcMain.removeListener(CHANNELS.subscribe, onSubscribe);
    ipcMain.removeListener(CHANNELS.unsubscribe, onUnsubscribe);
    for (const contents of [...sessions.keys()]) end(contents);
  };
}
