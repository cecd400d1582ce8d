/**
 * Quitting: the first `before-quit` is held (preventDefault) while the shutdown runs (tray and IPC let go,
 * control socket closed, every backend stopped and every port released), then `app.exit` ends the process.
 * A second Quit while stopping waits for the same shutdown. A shutdown that hangs is cut off after a timeout,
 * so Berth never refuses to quit.
 */
import type { App } from 'electron';

/** What the quit sequence drives. */
export interface QuitOptions {
  app: Pick<App, 'on' | 'exit'>;
  /** Stops everything; resolves once every port is released. */
  shutdown: () => Promise<void>;
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** Tells the window whether a close is part of quitting (then it must not hide to the tray). */
export interface QuitState {
  readonly quitting: boolean;
}

/** Installs the quit sequence on `before-quit`. */
export function installQuit(options: QuitOptions): QuitState {
  let phase: 'running' | 'stopping' | 'done' = 'running';
  const state = {
    get quitting() {
      return phase !== 'running';
    },
  };
  options.app.on('before-quit', (event) => {
    if (phase === 'done') return;
    event.preventDefault();
    if (phase === 'stopping') return;
    phase = 'stopping';
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        options.log?.('Berth: shutdown took too long; exiting anyway.');
        resolve();
      }, options.timeoutMs ?? 10_000);
    });
    let code = 0;
    const stopped = options.shutdown().catch((err: unknown) => {
      code = 1;
      options.log?.(`Berth: shutdown failed: ${(err as Error).message}`);
    });
    void Promise.race([stopped, timeout]).then(() => {
      clearTimeout(timer);
      phase = 'done';
      options.app.exit(code);
    });
  });
  return state;
}
