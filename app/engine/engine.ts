/**
 * The engine: owns the forwards, their listeners and the config, implements the API contract once, and
 * pushes a snapshot and then changes to subscribers. Every transport (control socket, WebSocket, IPC) is a
 * thin adapter, through one API session (app/api/session.ts), over `handle` and `subscribe`.
 */
import type {
  ApiTarget,
  BerthApi,
  BerthEvent,
  CommandHandlers,
  CommandName,
  CommandRequest,
  CommandResponse,
  ForwardState,
  ForwardStatus,
  ListenError,
} from '../api/contract.js';
import { ApiError } from '../api/errors.js';
import { commandName, parseRequest } from '../api/requests.js';
import { formatProblems, problemsFromIssues } from '../config/problems.js';
import { networkInterfaces } from 'node:os';
import {
  ConfigSchema,
  describeListen,
  describeTarget,
  effectiveHealth,
  type Config,
  type Forward,
} from '../config/schema.js';
import type { ConfigStore, LoadResult } from '../config/store.js';
import { Backend, DEFAULT_POLICY, type SupervisionPolicy } from '../backend/backend.js';
import type { LogLine } from '../backend/log-buffer.js';
import { ownListeningInodes } from '../backend/proc.js';
import { SpawnRecords } from '../backend/records.js';
import { newCounters, type Counters, type Forwarder } from './forwarder.js';
import type { PrivilegedBinder, Via } from './listener.js';
import { HealthMonitor, type CheckResult, type HealthStatus } from './health.js';
import { listenProblem } from './messages.js';
import { describeHolder, findPortHolder, type PortHolder } from './port-holder.js';
import { stopProcesses } from '../backend/tree.js';
import { TcpForwarder, type TcpOptions } from './tcp-forwarder.js';
import { UdpForwarder, type UdpOptions } from './udp-forwarder.js';

/** How an engine is put together; limits default to what users expect of a forwarder. */
export interface EngineOptions {
  store: ConfigStore;
  /** Gets privileged ports from berth-helper; without it, EACCES is reported with how to set it up. */
  binder?: PrivilegedBinder;
  tcp?: Partial<TcpOptions>;
  udp?: Partial<UdpOptions>;
  /** How often counters are pushed to subscribers. */
  statsIntervalMs?: number;
  /** Backoff, crash-loop limit, grace period and log size of supervised backends. */
  supervision?: Partial<SupervisionPolicy>;
  /** Where live backends are recorded, so a Berth killed with SIGKILL is cleaned up after by the next. */
  recordsPath?: string;
  /**
   * Start the enabled forwards on start() (default). False loads them as `stopped`, leaving `enabled` in
   * the file as it is: the desktop app's "Start forwards on launch: Never".
   */
  autoStart?: boolean;
  /** Retries of a bind that met a busy port: the first delay, doubling up to the last [1 s, 30 s]. */
  bindRetry?: { baseMs: number; maxMs: number };
  /**
   * How often the engine looks for passive signs of a failing target, a pause (sleep, SIGSTOP) and network
   * changes [1 s]; a tick later than `pauseMs` [5 s] means the process was paused.
   */
  watch?: { tickMs: number; pauseMs: number };
}

/** What the engine watches with: its tick and what it found last. */
interface Watch {
  timer: NodeJS.Timeout | undefined;
  lastTick: number;
  interfaces: string;
}

const DEFAULT_TCP: TcpOptions = { connectTimeoutMs: 10_000, maxConnections: 4096, dataPlane: 'native' };
const DEFAULT_UDP: UdpOptions = { idleTimeoutMs: 60_000, maxSessions: 1024, dataPlane: 'native' };

interface Runtime {
  forward: Forward;
  state: ForwardState;
  via: Via | undefined;
  error: ListenError | null;
  /** The holder of a busy port as found (with its marker), while `error` is EADDRINUSE. */
  holder: PortHolder | null;
  /** The next try at a busy port, and the delay it waited. */
  bindRetry: { timer: NodeJS.Timeout; delayMs: number } | undefined;
  /** Checks the target; its status is the forward's `health`. */
  monitor: HealthMonitor;
  /** Errors counted on the data plane when the engine last looked (a rise of refusals triggers a check). */
  errorsSeen: number;
  /** Set by a wake-up or network change: the next failing check restarts the backend at once. */
  recheck: boolean;
  forwarder: Forwarder | undefined;
  /** Counters of forwarders that were stopped, so totals survive disable/enable and edits. */
  past: Counters;
  /** The supervised process behind the forward, when it has one. */
  backend: Backend | undefined;
}

type Listener = (event: BerthEvent) => void;

/** Runs forwards from a config store and implements the Berth API. */
export class Engine implements BerthApi, ApiTarget {
  private config: Config = { version: 1, forwards: [] };
  private readonly runtimes = new Map<string, Runtime>();
  private readonly listeners = new Set<Listener>();
  private readonly lastStats = new Map<string, string>();
  private statsTimer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly tcp: TcpOptions;
  private readonly udp: UdpOptions;
  private closed = false;
  private startup: Promise<unknown> = Promise.resolve();
  private readonly policy: SupervisionPolicy;
  private readonly records: SpawnRecords | undefined;
  private readonly pendingLogs = new Map<string, LogLine[]>();
  private logTimer: NodeJS.Timeout | undefined;
  private readonly watch: Watch = { timer: undefined, lastTick: 0, interfaces: '' };

  constructor(private readonly options: EngineOptions) {
    this.tcp = { ...DEFAULT_TCP, ...options.tcp };
    this.udp = { ...DEFAULT_UDP, ...options.udp };
    this.policy = { ...DEFAULT_POLICY, ...options.supervision };
    this.records = options.recordsPath
      ? new SpawnRecords(options.recordsPath, this.policy.graceMs)
      : undefined;
  }

  /** The config's `helper.socket`, if set (the helper binder resolves its socket through it). */
  get helperSocket(): string | undefined {
    return this.config.helper?.socket;
  }

  /** Loads the config and starts every enabled forward; a forward that fails is in `error`, not fatal. */
  start(): Promise<LoadResult> {
    const started = this.load();
    // Commands that arrive meanwhile wait: a change applied to a config not yet loaded would lose it.
    this.startup = started.catch(() => undefined);
    return started;
  }

  private async load(): Promise<LoadResult> {
    const loaded = await this.options.store.load();
    // Backends a killed Berth left behind go first: they may hold the ports and targets about to be used.
    if (this.records) loaded.notices.push(...(await this.records.reapOrphans()));
    this.config = loaded.config;
    for (const forward of this.config.forwards) this.runtimes.set(forward.id, this.newRuntime(forward));
    if (this.options.autoStart !== false) {
      const enabled = [...this.runtimes.values()].filter((r) => r.forward.enabled);
      await Promise.all(enabled.map((r) => this.startRuntime(r)));
    }
    for (const message of loaded.notices) this.emit({ type: 'notice', level: 'warning', message });
    if (!this.closed) this.startWatching();
    return loaded;
  }

  /**
   * Checks every forward now, looks target names up again, and restarts each backend whose check then fails,
   * instead of waiting for the next interval: after a sleep (Electron's powerMonitor "resume", or a pause the
   * engine noticed itself) or a network change. `reason` goes in the log.
   */
  recheck(reason: string): void {
    if (this.closed) return;
    this.emit({ type: 'notice', level: 'info', message: `Re-checking every forward now: ${reason}.` });
    for (const runtime of this.runtimes.values()) {
      if (runtime.state !== 'listening') continue;
      runtime.forwarder?.refresh?.();
      if (!runtime.monitor.enabled) continue;
      runtime.recheck = true;
      runtime.monitor.checkNow();
    }
  }

  // One timer for every forward: passive signals (refused or reset connections to the target), pauses and
  // network changes. Each forward's checks have their own timer (HealthMonitor).
  private startWatching(): void {
    const { tickMs, pauseMs } = this.options.watch ?? { tickMs: 1000, pauseMs: 5000 };
    this.watch.lastTick = Date.now();
    this.watch.interfaces = interfacesKey();
    this.watch.timer = setInterval(() => {
      const now = Date.now();
      const late = now - this.watch.lastTick - tickMs;
      this.watch.lastTick = now;
      if (late >= pauseMs) {
        this.recheck(
          `Berth was paused for ${Math.round((late + tickMs) / 1000)} s (sleep, or a stopped process)`,
        );
        this.watch.interfaces = interfacesKey();
        return;
      }
      const interfaces = interfacesKey();
      if (interfaces !== this.watch.interfaces) {
        this.watch.interfaces = interfaces;
        this.recheck('the network interfaces changed');
        return;
      }
      for (const runtime of this.runtimes.values()) this.passiveCheck(runtime);
    }, tickMs);
    this.watch.timer.unref();
  }

  // Connections to the target refused or reset since the last look: check now rather than at the interval.
  private passiveCheck(runtime: Runtime): void {
    if (!runtime.forwarder || !runtime.monitor.enabled) return;
    const { errors, lastError } = runtime.forwarder.sample();
    if (errors === runtime.errorsSeen) return;
    runtime.errorsSeen = errors;
    if (lastError && TARGET_FAILURES.has(lastError.code)) runtime.monitor.checkNow();
  }

  /** Stops every forward and releases every port. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watch.timer);
    this.watch.timer = undefined;
    clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    clearTimeout(this.logTimer);
    this.logTimer = undefined;
    // A close that arrives while forwards are still starting waits for them, so none is left listening.
    await this.startup;
    await this.queue.catch(() => undefined);
    await Promise.all([...this.runtimes.values()].map((r) => this.stopRuntime(r, 'stopped')));
    // Stopped backends update the records file as they exit; those writes belong to this close too.
    await this.records?.idle();
    this.listeners.clear();
  }

  /** Runs a command whose name and request come from outside: both are validated first. */
  async handle(name: unknown, request: unknown): Promise<CommandResponse<CommandName>> {
    return this.run(commandName(name), request);
  }

  /** Typed entry point for in-process callers; requests are validated the same way. */
  call<N extends CommandName>(name: N, request: CommandRequest<N>): Promise<CommandResponse<N>> {
    return this.run(name, request);
  }

  subscribe(listener: Listener): () => void {
    listener({ type: 'snapshot', forwards: this.statusAll() });
    this.listeners.add(listener);
    if (!this.statsTimer && !this.closed) {
      for (const runtime of this.runtimes.values())
        this.lastStats.set(runtime.forward.id, statsKey(this.status(runtime)));
      this.statsTimer = setInterval(() => this.pushStats(), this.options.statsIntervalMs ?? 250);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        clearInterval(this.statsTimer);
        this.statsTimer = undefined;
      }
    };
  }

  // The one path of every command: validated with the contract's schema, run once the config is loaded.
  private async run<N extends CommandName>(name: N, request: unknown): Promise<CommandResponse<N>> {
    const parsed = parseRequest(name, request);
    await this.startup;
    return this.commands[name](parsed);
  }

  // One implementation per command of the contract, each typed by it: the request as validated, the
  // response as the schema says. Changes go through `serial`; reads answer at once.
  private readonly commands: CommandHandlers = {
    status: () => Promise.resolve({ forwards: this.statusAll() }),
    get: ({ id }) => Promise.resolve(this.find(id).forward),
    add: ({ forward }) => this.serial(() => this.add(forward)),
    update: ({ id, forward }) => this.serial(() => this.update(id, forward)),
    remove: ({ id }) => this.serial(() => this.remove(id)),
    enable: ({ id }) => this.serial(() => this.setEnabled(id, true)),
    disable: ({ id }) => this.serial(() => this.setEnabled(id, false)),
    stopLeftover: ({ id }) => this.serial(() => this.stopLeftover(id)),
    logs: ({ id, limit }) => Promise.resolve({ id, lines: this.find(id).backend?.logs.tail(limit) ?? [] }),
  };

  // Changes run one at a time, so each sees the config the previous one saved.
  private serial<T>(change: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closed) throw new ApiError('ECLOSED', 'Berth is shutting down.');
      return change();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async add(forward: Forward): Promise<ForwardStatus> {
    if (this.runtimes.has(forward.id)) {
      throw new ApiError(
        'EEXIST',
        `A forward with id "${forward.id}" already exists. Choose another id or edit it.`,
      );
    }
    await this.saveConfig({ ...this.config, forwards: [...this.config.forwards, forward] }, 'forward');
    const runtime = this.newRuntime(forward);
    this.runtimes.set(forward.id, runtime);
    if (forward.enabled) await this.startRuntime(runtime);
    else this.emitForward(runtime);
    return this.status(runtime);
  }

  private async update(id: string, forward: Forward): Promise<ForwardStatus> {
    const runtime = this.find(id);
    if (forward.id !== id) {
      throw new ApiError(
        'EINVAL',
        `The id of a forward cannot change (${id} → ${forward.id}). Add a new forward instead.`,
        [{ path: 'forward.id', message: `must be "${id}"` }],
      );
    }
    await this.saveConfig(
      { ...this.config, forwards: this.config.forwards.map((f) => (f.id === id ? forward : f)) },
      'forward',
    );
    await this.stopRuntime(runtime, 'stopped');
    runtime.forward = forward;
    runtime.backend = this.newBackend(forward);
    runtime.monitor = this.newMonitor(runtime);
    if (forward.enabled) await this.startRuntime(runtime);
    else this.emitForward(runtime);
    return this.status(runtime);
  }

  private async remove(id: string): Promise<CommandResponse<'remove'>> {
    const runtime = this.find(id);
    await this.saveConfig({ ...this.config, forwards: this.config.forwards.filter((f) => f.id !== id) });
    await this.stopRuntime(runtime, 'stopped');
    this.runtimes.delete(id);
    this.lastStats.delete(id);
    this.emit({ type: 'removed', id });
    return { id };
  }

  private async setEnabled(id: string, enabled: boolean): Promise<ForwardStatus> {
    const runtime = this.find(id);
    if (runtime.forward.enabled !== enabled) {
      const forward = { ...runtime.forward, enabled };
      await this.saveConfig({
        ...this.config,
        forwards: this.config.forwards.map((f) => (f.id === id ? forward : f)),
      });
      runtime.forward = forward;
    }
    if (enabled && runtime.state !== 'listening') {
      // Enabling a forward in error tries again: the port may be free now.
      await this.stopRuntime(runtime, 'stopped');
      await this.startRuntime(runtime);
    } else if (!enabled) {
      await this.stopRuntime(runtime, 'stopped');
      this.emitForward(runtime);
    }
    return this.status(runtime);
  }

  // Stops the process that holds the forward's port when it is a backend an earlier Berth left running
  // (it carries a marker no backend of this Berth has), then takes the port.
  private async stopLeftover(id: string): Promise<ForwardStatus> {
    const runtime = this.find(id);
    const holder = runtime.holder;
    if (runtime.error?.code !== 'EADDRINUSE' || !holder || holder.pid === null || !this.isLeftover(holder)) {
      throw new ApiError(
        'ENOTLEFTOVER',
        `The port of "${id}" is not held by a backend an earlier Berth left running, so Berth does not stop it.`,
      );
    }
    // Found again by pid and marker just before the signal: the pid must still be that process.
    const now = await findPortHolder(
      runtime.forward.protocol,
      runtime.forward.listen.address,
      runtime.forward.listen.port,
    );
    if (now?.pid === holder.pid && now.marker === holder.marker) {
      await stopProcesses([holder.pid], this.policy.graceMs);
    }
    if (runtime.state === 'error' && runtime.forward.enabled) {
      await this.stopRuntime(runtime, 'stopped');
      await this.startRuntime(runtime);
    }
    return this.status(runtime);
  }

  private isLeftover(holder: PortHolder): boolean {
    if (holder.marker === undefined) return false;
    for (const runtime of this.runtimes.values()) if (runtime.backend?.marker === holder.marker) return false;
    return true;
  }

  // Validates the whole config (ids and listen addresses must stay unique), then saves it. Nothing changes
  // at run time unless the save succeeded, so the file and the running forwards never disagree.
  private async saveConfig(next: Config, requestKey?: 'forward'): Promise<void> {
    if (this.options.store.isReadOnly) {
      throw new ApiError(
        'EREADONLY',
        `${this.options.store.path} was written by a newer Berth and is read-only here: update Berth to change forwards.`,
      );
    }
    const parsed = ConfigSchema.safeParse(next);
    if (!parsed.success) {
      const problems = problemsFromIssues(parsed.error.issues).map((p) => ({
        // A problem in the forward being written is reported against the request, as the client sent it.
        path: requestKey ? p.path.replace(/^forwards\[\d+\]/, requestKey) : p.path,
        message: p.message,
      }));
      throw new ApiError('EINVAL', `The forward cannot be saved: ${formatProblems(problems)}`, problems);
    }
    await this.options.store.save(parsed.data);
    this.config = parsed.data;
  }

  private find(id: string): Runtime {
    const runtime = this.runtimes.get(id);
    if (!runtime) {
      const known = [...this.runtimes.keys()];
      const hint = known.length > 0 ? ` Known ids: ${known.join(', ')}.` : ' There are no forwards yet.';
      throw new ApiError('ENOFORWARD', `No forward with id "${id}".${hint}`);
    }
    return runtime;
  }

  private async startRuntime(runtime: Runtime): Promise<void> {
    const { forward } = runtime;
    this.clearBindRetry(runtime);
    runtime.state = 'starting';
    runtime.error = null;
    runtime.holder = null;
    this.emitForward(runtime);
    const forwarder =
      forward.protocol === 'udp'
        ? new UdpForwarder(forward, this.udp, this.options.binder)
        : new TcpForwarder(forward, this.tcp, this.options.binder);
    try {
      runtime.via = await forwarder.start();
      runtime.forwarder = forwarder;
      runtime.state = 'listening';
      runtime.errorsSeen = 0;
      // The listener first, so the port is stable; clients that come while the backend starts wait for it.
      if (runtime.backend) {
        runtime.monitor.setWaiting(true);
        runtime.backend.start();
      }
      runtime.monitor.start();
    } catch (err) {
      await forwarder.stop();
      runtime.via = undefined;
      runtime.state = 'error';
      runtime.error = listenProblem(forward, err as NodeJS.ErrnoException);
      if (runtime.error.code === 'EADDRINUSE') await this.busyPort(runtime);
    }
    this.emitForward(runtime);
  }

  // A busy port: name its holder, and try again with backoff until it frees (the forward stays in error).
  private async busyPort(runtime: Runtime): Promise<void> {
    const { forward } = runtime;
    const holder = await findPortHolder(forward.protocol, forward.listen.address, forward.listen.port).catch(
      () => null,
    );
    if (runtime.state !== 'error' || runtime.error?.code !== 'EADDRINUSE') return;
    const { baseMs, maxMs } = this.options.bindRetry ?? { baseMs: 1000, maxMs: 30_000 };
    const delayMs = Math.min(maxMs, runtime.bindRetry ? runtime.bindRetry.delayMs * 2 : baseMs);
    const leftover = holder !== null && this.isLeftover(holder);
    runtime.holder = holder;
    runtime.error = {
      ...runtime.error,
      message: busyMessage(forward, holder, leftover),
      holder: holder && {
        pid: holder.pid,
        command: holder.command,
        user: holder.user,
        ...(leftover ? { leftover: true } : {}),
      },
      retrying: true,
    };
    if (this.closed) return;
    const timer = setTimeout(() => {
      void this.serial(async () => {
        if (runtime.bindRetry?.timer !== timer || runtime.state !== 'error' || !runtime.forward.enabled)
          return;
        await this.startRuntime(runtime);
      }).catch(() => undefined);
    }, delayMs);
    runtime.bindRetry = { timer, delayMs };
  }

  private clearBindRetry(runtime: Runtime): void {
    if (runtime.bindRetry) clearTimeout(runtime.bindRetry.timer);
  }

  // A check settled: report a change, let a starting backend count as running, restart one that fails.
  private onHealth(runtime: Runtime, before: HealthStatus, health: HealthStatus, result: CheckResult): void {
    const backend = runtime.backend;
    const recheck = runtime.recheck;
    runtime.recheck = false;
    if (health.state === 'healthy') backend?.ready();
    if (backend?.alive && !result.ok) {
      const state = backend.current.state;
      const startedAt = Date.parse(backend.current.startedAt ?? '');
      const waitedMs = Date.now() - startedAt;
      if (state === 'running' && (health.state === 'unhealthy' || recheck)) {
        backend.heal(`${result.message ?? 'the health check failed'}${recheck ? ', after a wake-up' : ''}`);
      } else if (
        (state === 'starting' || state === 'restarting') &&
        Number.isFinite(startedAt) &&
        waitedMs >= this.policy.startTimeoutMs
      ) {
        backend.heal(`its target did not answer within ${Math.round(waitedMs / 1000)} s of starting`);
      }
    }
    if (before.state !== health.state && (health.state === 'healthy' || health.state === 'unhealthy')) {
      const id = runtime.forward.id;
      const message =
        health.state === 'unhealthy'
          ? `${id} is unhealthy: ${health.message ?? 'its check failed'}.`
          : `${id} is healthy again: ${describeTarget(runtime.forward.target)} answers.`;
      if (health.state === 'healthy' && before.state === 'unknown') return this.emitForward(runtime);
      this.emit({ type: 'notice', level: health.state === 'unhealthy' ? 'warning' : 'info', message });
      backend?.logs.note(message);
    }
    if (before.state !== health.state || before.message !== health.message) this.emitForward(runtime);
  }

  private async stopRuntime(runtime: Runtime, state: 'stopped'): Promise<void> {
    this.clearBindRetry(runtime);
    runtime.bindRetry = undefined;
    runtime.monitor.stop();
    const forwarder = runtime.forwarder;
    runtime.forwarder = undefined;
    const backendStopped = runtime.backend?.stop();
    if (forwarder) {
      await forwarder.stop();
      runtime.past = addCounters(runtime.past, forwarder.sample());
    }
    await backendStopped;
    runtime.state = state;
    runtime.via = undefined;
    runtime.error = null;
    runtime.holder = null;
  }

  private newRuntime(forward: Forward): Runtime {
    const runtime: Runtime = {
      forward,
      state: 'stopped',
      via: undefined,
      error: null,
      holder: null,
      bindRetry: undefined,
      monitor: undefined as unknown as HealthMonitor,
      errorsSeen: 0,
      recheck: false,
      forwarder: undefined,
      past: newCounters(),
      backend: this.newBackend(forward),
    };
    runtime.monitor = this.newMonitor(runtime);
    return runtime;
  }

  private newMonitor(runtime: Runtime): HealthMonitor {
    let before: HealthStatus | undefined;
    const monitor = new HealthMonitor(() => runtime.forward.target, effectiveHealth(runtime.forward), {
      onResult: (health, result) => {
        const previous = before ?? { state: 'unknown', checkedAt: null, failures: 0, message: null };
        before = health;
        if (runtime.monitor === monitor) this.onHealth(runtime, previous, health, result);
      },
    });
    return monitor;
  }

  private newBackend(forward: Forward): Backend | undefined {
    if (!forward.backend) return undefined;
    const id = forward.id;
    return new Backend(id, forward.backend, this.policy, {
      onStatus: () => {
        const runtime = this.runtimes.get(id);
        if (!runtime) return;
        // While it starts (or restarts), its target is not expected to answer: checks wait for it.
        const state = runtime.backend?.current.state;
        if (runtime.state === 'listening')
          runtime.monitor.setWaiting(state === 'starting' || state === 'restarting');
        this.emitForward(runtime);
      },
      onLog: (line) => this.queueLog(id, line),
      onSpawn: (record) => void this.records?.set(id, record).catch(() => undefined),
      listeningInodes: ownListeningInodes,
      readiness: effectiveHealth(forward).check !== 'off',
    });
  }

  // Output is pushed in small batches: a chatty backend must not turn into one event per line.
  private queueLog(id: string, line: LogLine): void {
    if (this.listeners.size === 0) return;
    const pending = this.pendingLogs.get(id) ?? [];
    pending.push(line);
    this.pendingLogs.set(id, pending);
    this.logTimer ??= setTimeout(() => {
      this.logTimer = undefined;
      const batches = [...this.pendingLogs];
      this.pendingLogs.clear();
      for (const [forwardId, lines] of batches) this.emit({ type: 'log', id: forwardId, lines });
    }, 100);
  }

  private statusAll(): ForwardStatus[] {
    return this.config.forwards.flatMap((f) => {
      const runtime = this.runtimes.get(f.id);
      return runtime ? [this.status(runtime)] : [];
    });
  }

  private status(runtime: Runtime): ForwardStatus {
    const { forward } = runtime;
    const counters = runtime.forwarder ? addCounters(runtime.past, runtime.forwarder.sample()) : runtime.past;
    return {
      id: forward.id,
      ...(forward.name !== undefined ? { name: forward.name } : {}),
      enabled: forward.enabled,
      protocol: forward.protocol,
      listen: { ...forward.listen },
      target: { ...forward.target },
      state: runtime.state,
      ...(runtime.via ? { via: runtime.via } : {}),
      error: runtime.error,
      health: runtime.monitor.status,
      lastError: counters.lastError,
      connections: { active: counters.active, total: counters.total },
      bytes: { toTarget: counters.toTarget, fromTarget: counters.fromTarget },
      errors: counters.errors,
      ...(runtime.backend ? { backend: runtime.backend.current } : {}),
    };
  }

  private pushStats(): void {
    const stats = [];
    for (const runtime of this.runtimes.values()) {
      const status = this.status(runtime);
      const key = statsKey(status);
      if (this.lastStats.get(status.id) === key) continue;
      this.lastStats.set(status.id, key);
      const { id, connections, bytes, errors, lastError } = status;
      stats.push({ id, connections, bytes, errors, lastError });
    }
    if (stats.length > 0) this.emit({ type: 'stats', stats });
  }

  private emitForward(runtime: Runtime): void {
    this.emit({ type: 'forward', forward: this.status(runtime) });
  }

  private emit(event: BerthEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // One broken subscriber must not stop the others or the engine.
      }
    }
  }
}

// Codes of a failed connection to the target that say it may be down (the data plane's lastError).
const TARGET_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOENT',
]);

// The addresses of every interface: a change means the network changed (Wi-Fi, VPN, a cable).
function interfacesKey(): string {
  const all = networkInterfaces();
  return Object.keys(all)
    .sort()
    .map((name) => `${name}=${(all[name] ?? []).map((a) => a.address).join(',')}`)
    .join(';');
}

function busyMessage(forward: Forward, holder: PortHolder | null, leftover: boolean): string {
  const where = describeListen(forward);
  const who = leftover
    ? `it is held by a backend an earlier Berth left running: ${holder?.command ?? ''} (pid ${holder?.pid ?? '?'}); stop it (the window offers to)`
    : describeHolder(holder);
  return `${where} is already in use: ${who}. Berth takes the port by itself as soon as it is free.`;
}

function addCounters(past: Counters, live: Counters): Counters {
  return {
    active: live.active,
    total: past.total + live.total,
    toTarget: past.toTarget + live.toTarget,
    fromTarget: past.fromTarget + live.fromTarget,
    errors: past.errors + live.errors,
    lastError: live.lastError ?? past.lastError,
  };
}

function statsKey(status: ForwardStatus): string {
  return JSON.stringify([status.connections, status.bytes, status.errors, status.lastError]);
}
