/**
 * Berth as a child subreaper (Linux, PR_SET_CHILD_SUBREAPER through the addon): a process that a backend's
 * tree orphans, such as a daemon that forked, called setsid and forked again, becomes Berth's child instead
 * of init's. Berth can then always find it, and must reap it when it exits: libuv waits only for the pids it
 * spawned, so reap() waits for one given pid, never for any child (that would take libuv's exit statuses).
 * Without the addon (not built, or not Linux) Berth is no subreaper and ./tree.ts scans /proc instead.
 */
import { loadBerthNative, type BerthNative } from '../native/addon.js';
import { reapChild, setChildSubreaper } from '../native/process.js';

let native: BerthNative | undefined;
let enabled: boolean | undefined;

/** Makes this process a child subreaper, once; false where that is not possible (not Linux, no addon). */
export function becomeSubreaper(): boolean {
  if (enabled !== undefined) return enabled;
  enabled = false;
  if (process.platform !== 'linux') return enabled;
  try {
    native = loadBerthNative();
    enabled = setChildSubreaper(native);
  } catch {
    // No addon, or prctl refused: orphans go to init, and are found through /proc.
  }
  return enabled;
}

/** True once becomeSubreaper() has succeeded. */
export function isSubreaper(): boolean {
  return enabled === true;
}

/** Waits for the exited child `pid` without blocking; true if it was reaped. */
export function reap(pid: number): boolean {
  if (!enabled || !native) return false;
  try {
    return reapChild(native, pid);
  } catch {
    return false; // not ours after all (ECHILD is already false): nothing to wait for
  }
}
