/** @deprecated The IPC channels are part of the bridge's contract: import them from app/api/bridge.ts. */
export { CHANNELS } from '../app/api/bridge.js';
