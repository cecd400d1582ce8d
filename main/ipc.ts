/**
 * The main-process side of Berth's IPC, and the only main-process code that touches `ipcMain` or
 * `webContents.send` (lint bans them elsewhere). Every message is checked twice before the engine sees it:
 * the sender must be the top frame of Berth's own page (not an iframe, not a page navigated elsewhere), and
 * the arguments must match the contract's zod schema. Nothing throws across the boundary: a call always
 * resolves to `{ ok: true, result }` or `{ ok: false, error }` with the error envelope.
 */
import type { IpcMain, IpcMainEvent, IpcMainInvokeEvent, WebContents, WebFrameMain } from 'electron';
import { CHANNELS, type BridgeReply } from '../app/api/bridge.js';
import {
  commands,
  isCommandName,
  type ApiTarget,
  type CommandName,
  type CommandResponse,
} from '../app/api/contract.js';
import { ApiError, toEnvelope } from '../app/api/errors.js';
import { problemsFromIssues } from '../app/config/problems.js';

/** The parts of `ipcMain` the handlers need. */
export type IpcMainLike = Pick<IpcMain, 'handle' | 'removeHandler' | 'on' | 'removeListener'>;

/** Decides whether a frame may talk to the engine (see main/sender.ts). */
export type SenderCheck = (frame: WebFrameMain | null | undefined) => boolean;

/** What a rejected sender is told; the same words whatever the reason, so a probe learns nothing. */
const FORBIDDEN = 'Only the Berth window may use this API.';

/** Registers the call, subscribe and unsubscribe handlers; returns the function that removes them. */
export function registerIpc(ipcMain: IpcMainLike, api: ApiTarget, isTrusted: SenderCheck): () => void {
  const subscriptions = new Map<WebContents, () => void>();
  const watched = new WeakSet<WebContents>();

  const stop = (contents: WebContents) => {
    subscriptions.get(contents)?.();
    subscriptions.delete(contents);
  };

  const onCall = (event: IpcMainInvokeEvent, ...args: unknown[]) => call(api, isTrusted, event, args);

  const onSubscribe = (event: IpcMainEvent, ...args: unknown[]) => {
    if (!isTrusted(event.senderFrame) || args.length !== 0) return;
    const contents = event.sender;
    // A reload subscribes again: the old subscription goes, the page gets a fresh snapshot.
    stop(contents);
    subscriptions.set(
      contents,
      api.subscribe((berthEvent) => {
        if (!contents.isDestroyed()) contents.send(CHANNELS.event, berthEvent);
      }),
    );
    if (!watched.has(contents)) {
      watched.add(contents);
      contents.once('destroyed', () => stop(contents));
    }
  };

  const onUnsubscribe = (event: IpcMainEvent, ...args: unknown[]) => {
    if (!isTrusted(event.senderFrame) || args.length !== 0) return;
    stop(event.sender);
  };

  ipcMain.handle(CHANNELS.call, onCall);
  ipcMain.on(CHANNELS.subscribe, onSubscribe);
  ipcMain.on(CHANNELS.unsubscribe, onUnsubscribe);
  return () => {
    ipcMain.removeHandler(CHANNELS.call);
    ipcMain.removeListener(CHANNELS.subscribe, onSubscribe);
    ipcMain.removeListener(CHANNELS.unsubscribe, onUnsubscribe);
    for (const contents of [...subscriptions.keys()]) stop(contents);
  };
}

async function call(
  api: ApiTarget,
  isTrusted: SenderCheck,
  event: IpcMainInvokeEvent,
  args: unknown[],
): Promise<BridgeReply<CommandName>> {
  try {
    if (!isTrusted(event.senderFrame)) throw new ApiError('EFORBIDDEN', FORBIDDEN);
    if (args.length !== 2) {
      throw new ApiError(
        'EINVAL',
        `A call takes a command name and a request, got ${args.length} arguments.`,
      );
    }
    const [name, request] = args;
    if (!isCommandName(name)) throw new ApiError('EBADCOMMAND', `Unknown command ${describe(name)}.`);
    const parsed = commands[name].request.safeParse(request);
    if (!parsed.success) {
      throw new ApiError('EINVAL', `Invalid ${name} request.`, problemsFromIssues(parsed.error.issues));
    }
    const result = (await api.handle(name, parsed.data)) as CommandResponse<CommandName>;
    return { ok: true, result };
  } catch (err) {
    return { ok: false, error: toEnvelope(err) };
  }
}

// A name from outside is shown short and quoted, whatever it is.
function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : typeof value;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
