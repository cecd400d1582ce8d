/**
 * A supervised backend: the process behind a forward. Started as argv without a shell, in its own process
 * group with stdin closed; watched, restarted by policy with exponential backoff, stopped with SIGTERM to its
 * group and to whatever it daemonised (./tree.ts), and SIGKILL after a grace period. Its output is kept in a
 * bounded ring.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { BackendStatus } from '../api/contract.js';
import type { Backend as BackendConfig } from '../config/schema.js';
import { LogBuffer, type LogLine } from './log-buffer.js';
import { fdCheck, procAvailable, startTime } from './proc.js';
import { becomeSubreaper } from './subreaper.js';
import { BackendTree, type DaemonRecord } from './tree.js';

/** Timings of supervision; tests shrink them, people get the defaults. */
export interface SupervisionPolicy {
  /** First restart delay; doubles on each failure in a row. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Running this long counts as healthy: the backoff and the crash count start over. */
  healthyAfterMs: number;
  /** Failures in a row (without a healthy run between) after which the backend is `failed`. */
  crashLoopLimit: number;
  /** Time between SIGTERM and SIGKILL when stopping. */
  graceMs: number;
  /** How often the fd-hygiene check runs while the backend runs. */
  fdCheckIntervalMs: number;
  /** Lines of output kept per backend. */
  logLines: number;
  /** How often Berth looks for the processes a backend daemonised (where Berth is a child subreaper). */
  treeScanIntervalMs: number;
  /** A backend whose target has not answered a health check this long after it started is restarted. */
  startTimeoutMs: number;
}

/** What supervision defaults to: 1 s doubling to 30 s, healthy after a minute, failed after 5 crashes. */
export const DEFAULT_POLICY: SupervisionPolicy = {
  backoffBaseMs: 1000,
  backoffMaxMs: 30_000,
  healthyAfterMs: 60_000,
  crashLoopLimit: 5,
  graceMs: 5000,
  fdCheckIntervalMs: 10_000,
  logLines: 1000,
  treeScanIntervalMs: 1000,
  startTimeoutMs: 60_000,
};

/** A process Berth started, as recorded so a later Berth can clean up after a crash. */
export interface SpawnRecord {
  forwardId: string;
  /** The process Berth spawned (the last one, if it has exited and left daemons running). */
  pid: number;
  startTime: string;
  command: string[];
  /** The value of BERTH_BACKEND_TREE in the backend's environment (./tree.ts). */
  marker?: string;
  /** Processes the backend forked into sessions of their own, still running. */
  daemons?: DaemonRecord[];
}

/** What a Backend needs from its owner. */
export interface BackendHooks {
  /** Status changed (state, pid, restarts, exit, fdCheck). */
  onStatus(): void;
  onLog(line: LogLine): void;
  /** A process was started, found or has ended: keep the record of live backends current (undefined: none). */
  onSpawn(record: SpawnRecord | undefined): void;
  /** Berth's listening sockets, which no backend may hold. */
  listeningInodes(): Promise<Set<string>>;
  /**
   * True when the process counts as `running` only once its owner calls `ready()` (its target answers a
   * health check); false or absent: as soon as it has started.
   */
  readiness?: boolean;
}

/** Supervises one forward's backend process. */
export class Backend {
  private child: ChildProcess | undefined;
  private status: BackendStatus = {
    state: 'stopped',
    pid: null,
    restarts: 0,
    exitCode: null,
    signal: null,
    fdCheck: 'unknown',
    startedAt: null,
    reason: null,
  };
  private failuresInARow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthyTimer: NodeJS.Timeout | undefined;
  private fdTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private wanted = false;
  /** Why the running process is being replaced (a failing health check), until it exits. */
  private healing: string | undefined;
  private leader: { pid: number; startTime: string } | undefined;
  private readonly tree: BackendTree;
  readonly logs: LogBuffer;

  constructor(
    private readonly forwardId: string,
    private readonly config: BackendConfig,
    private readonly policy: SupervisionPolicy,
    private readonly hooks: BackendHooks,
  ) {
    this.logs = new LogBuffer(policy.logLines, (line) => hooks.onLog(line));
    this.tree = new BackendTree(policy.treeScanIntervalMs, () => this.record());
  }

  /** The status as `berth status --json` shows it. */
  get current(): BackendStatus {
    return { ...this.status };
  }

  /** The value of BERTH_BACKEND_TREE in this backend's processes: how its daemons, and leftovers, are known. */
  get marker(): string {
    return this.tree.marker;
  }

  /** True while the process runs (started, not exited), whatever its state says. */
  get alive(): boolean {
    return this.child !== undefined && this.isCurrent(this.child);
  }

  /**
   * The target answers: a backend waiting for readiness (`hooks.readiness`) is now `running`. No effect
   * otherwise.
   */
  ready(): void {
    const child = this.child;
    if (!child || !this.isCurrent(child) || this.healing !== undefined) return;
    if (this.status.state !== 'starting' && this.status.state !== 'restarting') return;
    this.logs.note('ready: its target answers');
    this.set({ state: 'running' });
  }

  /**
   * Replaces a process whose target stopped answering: SIGCONT (a stopped process cannot act on SIGTERM),
   * then SIGTERM to its group and to what it daemonised, SIGKILL after the grace period; its exit is then
   * handled as a crash (the same backoff and crash-loop limit). False when there is nothing to replace, or
   * the restart policy is "never".
   */
  heal(reason: string): boolean {
    const child = this.child;
    if (!this.wanted || !child || !this.isCurrent(child) || this.healing !== undefined) return false;
    if (this.config.restart === 'never') return false;
    this.healing = reason;
    this.logs.note(`not answering (${reason}): restarting it`);
    this.set({ state: 'restarting', reason: `Restarting: ${reason}.` });
    signalGroup(child, 'SIGCONT');
    void this.stopLeader(child);
    void this.tree.stop(child.pid, this.policy.graceMs);
    return true;
  }

  /** Starts the process (again); a backend in `failed` starts over with a fresh crash count. */
  start(): void {
    this.wanted = true;
    this.failuresInARow = 0;
    this.status.restarts = 0;
    this.launch('starting');
  }

  /**
   * SIGTERM to the process group and to the processes it daemonised, SIGKILL after the grace period; resolves
   * when they are all gone. Daemons left by a backend that has exited are stopped too.
   */
  stop(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    clearTimeout(this.healthyTimer);
    clearInterval(this.fdTimer);
    const child = this.child;
    const running = child !== undefined && child.exitCode === null && child.signalCode === null;
    if (!running) this.set({ state: 'stopped' });
    this.stopping ??= Promise.all([
      running ? this.stopLeader(child) : undefined,
      this.tree.stop(running ? child.pid : undefined, this.policy.graceMs),
    ]).then(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  private stopLeader(child: ChildProcess): Promise<void> {
    return new Promise<void>((resolve) => {
      const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), this.policy.graceMs);
      child.once('exit', () => {
        clearTimeout(kill);
        // The leader is gone; anything it left in its group goes too.
        signalGroup(child, 'SIGKILL');
        resolve();
      });
      signalGroup(child, 'SIGTERM');
    });
  }

  private launch(state: 'starting' | 'restarting'): void {
    this.healing = undefined;
    const [program, ...args] = this.config.command as [string, ...string[]];
    this.set({ state, pid: null, reason: null, fdCheck: 'unknown' });
    // Where it can, Berth adopts what its backends orphan, so that a daemon cannot slip away from it.
    becomeSubreaper();
    let child: ChildProcess;
    try {
      child = spawn(program, args, {
        cwd: this.config.cwd,
        // The marker last: it is how this backend's daemons are told from every other process.
        env: { ...process.env, ...this.config.env, ...this.tree.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group (and session), so the whole tree can be signalled
        shell: false,
        windowsHide: true,
      });
    } catch (err) {
      this.cannotRun(err as NodeJS.ErrnoException);
      return;
    }
    this.child = child;
    // At once (the pid is set as spawn() returns): from now on no scan may take it for an orphan to reap.
    if (child.pid !== undefined) this.tree.spawned(child.pid);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.logs.write('stdout', chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.logs.write('stderr', chunk));
    child.once('error', (err: NodeJS.ErrnoException) => {
      // Spawn failures (ENOENT, EACCES) arrive here instead of 'spawn'; 'exit' does not follow.
      if (child.pid === undefined) this.cannotRun(err);
    });
    child.once('spawn', () => void this.spawned(child));
    child.once('exit', (code, signal) => this.exited(child, code, signal));
  }

  private async spawned(child: ChildProcess): Promise<void> {
    const pid = child.pid as number;
    // With readiness, it stays starting (or restarting) until its target answers: ready().
    const state = this.hooks.readiness ? this.status.state : 'running';
    this.set({ state, pid, startedAt: new Date().toISOString(), exitCode: null, signal: null });
    this.logs.note(`started pid ${pid}: ${JSON.stringify(this.config.command)}`);
    this.healthyTimer = setTimeout(() => (this.failuresInARow = 0), this.policy.healthyAfterMs);
    const started = procAvailable ? await startTime(pid) : undefined;
    if (this.isCurrent(child)) {
      this.leader = { pid, startTime: started ?? '' };
      this.record();
    }
    await this.checkFds(child);
    // The process may have exited, or been stopped, while we looked: then no timer may outlive it.
    if (!this.isCurrent(child) || !this.wanted) return;
    clearInterval(this.fdTimer);
    this.fdTimer = setInterval(() => void this.checkFds(child), this.policy.fdCheckIntervalMs);
  }

  // True while `child` is the backend's process and has not exited.
  private isCurrent(child: ChildProcess): boolean {
    return child === this.child && child.exitCode === null && child.signalCode === null;
  }

  private async checkFds(child: ChildProcess): Promise<void> {
    if (!this.isCurrent(child) || child.pid === undefined) return;
    const result = await fdCheck(child.pid, await this.hooks.listeningInodes());
    if (this.isCurrent(child) && result !== this.status.fdCheck) {
      if (result === 'leak')
        this.logs.note("holds one of Berth's listening sockets (fd leak): ports may stay bound");
      this.set({ fdCheck: result });
    }
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.pid !== undefined) this.tree.exited(child.pid);
    if (child !== this.child) return;
    clearTimeout(this.healthyTimer);
    clearInterval(this.fdTimer);
    this.logs.flush();
    this.logs.note(signal ? `exited on ${signal}` : `exited with code ${code}`);
    const daemons = this.tree.known;
    if (daemons.length > 0 && this.wanted) {
      const pids = daemons.map((d) => `pid ${d.pid}`).join(', ');
      this.logs.note(`left running in the background: ${pids}; they are stopped with the backend`);
    }
    this.record();
    // No process, nothing to check: a clean or leaky verdict belonged to the process that just ended.
    const exit = { pid: null, exitCode: code, signal: signal as string | null, fdCheck: 'unknown' as const };
    if (!this.wanted) return this.set({ ...exit, state: 'stopped' });
    const healing = this.healing;
    this.healing = undefined;
    const failed = healing !== undefined || signal !== null || code !== 0;
    const restart =
      healing !== undefined ||
      this.config.restart === 'always' ||
      (this.config.restart === 'on-failure' && failed);
    if (!restart) return this.set({ ...exit, state: 'exited' });

    this.failuresInARow = failed ? this.failuresInARow + 1 : 0;
    if (this.failuresInARow >= this.policy.crashLoopLimit) {
      const last = healing
        ? `stopped answering: ${healing}`
        : signal
          ? `killed by ${signal}`
          : `exit code ${code}`;
      const reason = `Crashed ${this.failuresInARow} times in a row (last: ${last}); not restarting. Check its logs (berth logs ${this.forwardId}), fix it, then enable the forward again.`;
      this.logs.note(reason);
      return this.set({ ...exit, state: 'failed', reason });
    }
    const delay = Math.min(
      this.policy.backoffMaxMs,
      this.policy.backoffBaseMs * 2 ** Math.max(0, this.failuresInARow - 1),
    );
    this.logs.note(`restarting in ${delay} ms (${this.config.restart})`);
    this.set({ ...exit, state: 'restarting' });
    this.restartTimer = setTimeout(() => {
      this.status.restarts += 1;
      this.launch('restarting');
    }, delay);
  }

  // Writes the record of what runs of this backend: the spawned process while it runs, and its daemons.
  private record(): void {
    const child = this.child;
    const running = child !== undefined && child.exitCode === null && child.signalCode === null;
    const daemons = this.tree.known;
    if (!this.leader || (!running && daemons.length === 0)) return this.hooks.onSpawn(undefined);
    this.hooks.onSpawn({
      forwardId: this.forwardId,
      ...this.leader,
      command: this.config.command,
      marker: this.tree.marker,
      daemons,
    });
  }

  private cannotRun(err: NodeJS.ErrnoException): void {
    const program = this.config.command[0] ?? '';
    const why =
      err.code === 'ENOENT'
        ? `"${program}" was not found${this.config.cwd ? ` (or the folder ${this.config.cwd} does not exist)` : ''}. Check the command and PATH.`
        : err.code === 'EACCES'
          ? `"${program}" is not executable (permission denied).`
          : `"${program}" could not be started: ${err.message}.`;
    this.logs.note(`cannot run: ${why}`);
    this.child = undefined;
    this.set({ state: 'failed', pid: null, reason: `Cannot run the backend: ${why}` });
  }

  private set(change: Partial<BackendStatus>): void {
    this.status = { ...this.status, ...change };
    this.hooks.onStatus();
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}
