/**
 * The addon's calls on Berth's own process (native/src/process_napi.cc): becoming a child subreaper, and
 * reaping one adopted child. `reapChild` checks its pid here first: 0 and below would ask waitpid(2) for any
 * child, which would take the exit statuses libuv waits for.
 */

/** The addon's process exports. Linux only: elsewhere only `childSubreaperAvailable`, false. */
export interface ProcessExports {
  readonly childSubreaperAvailable: boolean;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1); throws a Node-style error (code, errno, syscall) if refused. */
  setChildSubreaper?: () => void;
  /** waitpid(pid, WNOHANG): true if `pid` had exited and is now reaped; false if it runs or is not a child. */
  reapChild?: (pid: number) => boolean;
}

/** Makes this process a child subreaper; false where the addon cannot (not Linux). Throws if prctl refuses. */
export function setChildSubreaper(native: ProcessExports): boolean {
  if (!native.childSubreaperAvailable || !native.setChildSubreaper) return false;
  native.setChildSubreaper();
  return true;
}

/** Reaps the exited child `pid`, and only it; false if it still runs, is not a child, or cannot be here. */
export function reapChild(native: ProcessExports, pid: number): boolean {
  if (!Number.isInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) {
    throw new TypeError(`pid must be an integer from 1 to 2147483647, got ${String(pid)}`);
  }
  if (!native.reapChild) return false;
  return native.reapChild(pid);
}
