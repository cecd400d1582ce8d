/** The IPC channels between the preload (main/bridge.ts) and the main process (main/ipc.ts); nothing else crosses. */
export const CHANNELS = {
  /** invoke(name, request) → BridgeReply: one API command. */
  call: 'berth:call',
  /** send(): start pushing events to this window (a snapshot first). */
  subscribe: 'berth:subscribe',
  /** send(): stop pushing events to this window. */
  unsubscribe: 'berth:unsubscribe',
  /** main → window: one BerthEvent. */
  event: 'berth:event',
} as const;
