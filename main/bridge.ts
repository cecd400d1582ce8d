/**
 * The preload side of Berth's IPC, and the only code that touches `ipcRenderer` (lint bans it elsewhere):
 * builds `window.berth` from the contract's types. It forwards calls as they are (the main process validates)
 * and keeps one subscription per window however many listeners the page adds.
 */
import type { IpcRenderer, IpcRendererEvent } from 'electron';
import { CHANNELS, type BerthBridge, type BridgeReply } from '../app/api/bridge.js';
import type { BerthEvent } from '../app/api/contract.js';

/** The parts of `ipcRenderer` the bridge needs. */
export type IpcRendererLike = Pick<IpcRenderer, 'invoke' | 'send' | 'on' | 'removeListener'>;

/** Builds the object exposed as `window.berth`. Only plain functions and data: the context bridge copies it. */
export function createBridge(ipcRenderer: IpcRendererLike): BerthBridge {
  const listeners = new Set<(event: BerthEvent) => void>();
  // The page never sees the IpcRendererEvent (it holds `sender`, i.e. ipcRenderer itself).
  const onEvent = (_event: IpcRendererEvent, berthEvent: BerthEvent) => {
    for (const listener of [...listeners]) listener(berthEvent);
  };
  return {
    call: (name, request) =>
      ipcRenderer.invoke(CHANNELS.call, name, request) as Promise<BridgeReply<typeof name>>,
    subscribe(listener) {
      const wrapped = (event: BerthEvent) => listener(event);
      listeners.add(wrapped);
      if (listeners.size === 1) {
        ipcRenderer.on(CHANNELS.event, onEvent);
        ipcRenderer.send(CHANNELS.subscribe);
      }
      return () => {
        if (!listeners.delete(wrapped) || listeners.size > 0) return;
        ipcRenderer.send(CHANNELS.unsubscribe);
        ipcRenderer.removeListener(CHANNELS.event, onEvent);
      };
    },
  };
}
