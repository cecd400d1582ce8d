/**
 * The UI's state, fed only by what the engine pushes (a snapshot, then changes): no polling. React reads it
 * with useSyncExternalStore; every change replaces the state object, so unchanged state keeps its identity.
 */
import type { BerthEvent, ForwardStatus, LogLineData } from '../../app/api/contract.js';
import { STATE_WORDS } from './format.js';
import type { ConnectionState, Transport } from './transport.js';

/** How many throughput samples each sparkline keeps (one a second). */
export const HISTORY_LENGTH = 30;

/** A message from the engine that is not about one forward (e.g. a config file kept aside). */
export interface Notice {
  id: number;
  level: 'info' | 'warning' | 'error';
  message: string;
}

/** Everything the UI renders. */
export interface StoreState {
  connection: ConnectionState;
  /** False until the first snapshot arrived, so the empty state is not shown while connecting. */
  loaded: boolean;
  forwards: readonly ForwardStatus[];
  /** Bytes per second (both directions) per forward id, oldest first, HISTORY_LENGTH long. */
  throughput: Readonly<Record<string, readonly number[]>>;
  /** Recent backend output per forward id, when the API provides it. */
  logs: Readonly<Record<string, readonly string[]>>;
  notices: readonly Notice[];
  /** The last state change in words ("web: Stopped"), for a polite live region. */
  announcement: string;
}

/** How many log lines the tail keeps per forward. */
export const LOG_TAIL_LINES = 200;

const EMPTY_HISTORY: readonly number[] = Array.from({ length: HISTORY_LENGTH }, () => 0);

/** The pushed state and its subscribers. */
export class ForwardStore {
  private state: StoreState = {
    connection: 'connecting',
    loaded: false,
    forwards: [],
    throughput: {},
    logs: {},
    notices: [],
    announcement: '',
  };
  private readonly listeners = new Set<() => void>();
  // Byte totals at the last sample, to turn the engine's cumulative counters into a rate.
  private readonly lastTotals = new Map<string, number>();
  private lastSampleAt: number | undefined;
  private nextNoticeId = 1;

  /** Current state; the same object until something changes. */
  readonly getSnapshot = (): StoreState => this.state;

  /** Registers a React (or any) listener; returns the unsubscribe function. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Feeds the store from a transport and samples throughput every second; returns the disconnect function. */
  connect(transport: Transport, sampleEveryMs = 1000): () => void {
    const offEvents = transport.subscribe((event) => this.apply(event));
    const offConnection = transport.onConnection((connection) => this.update({ connection }));
    // A local clock, not polling: it turns the pushed byte totals into one rate sample a second.
    const timer = setInterval(() => this.sample(Date.now()), sampleEveryMs);
    return () => {
      clearInterval(timer);
      offEvents();
      offConnection();
    };
  }

  /** Applies one pushed event. */
  apply(event: BerthEvent): void {
    switch (event.type) {
      case 'snapshot': {
        // Rates count from the snapshot's totals: bytes moved while disconnected are no spike.
        this.lastTotals.clear();
        for (const f of event.forwards) this.lastTotals.set(f.id, totalBytes(f));
        this.update({ loaded: true, forwards: event.forwards });
        break;
      }
      case 'forward': {
        if (!this.lastTotals.has(event.forward.id))
          this.lastTotals.set(event.forward.id, totalBytes(event.forward));
        const index = this.state.forwards.findIndex((f) => f.id === event.forward.id);
        const forwards =
          index === -1
            ? [...this.state.forwards, event.forward]
            : this.state.forwards.map((f, i) => (i === index ? event.forward : f));
        const before = this.state.forwards[index];
        const { id, name, state } = event.forward;
        const announcement =
          before?.state === state ? this.state.announcement : `${name ?? id}: ${STATE_WORDS[state]}`;
        this.update({ forwards, announcement });
        break;
      }
      case 'removed': {
        this.lastTotals.delete(event.id);
        const { [event.id]: _gone, ...throughput } = this.state.throughput;
        const { [event.id]: _logs, ...logs } = this.state.logs;
        this.update({ forwards: this.state.forwards.filter((f) => f.id !== event.id), throughput, logs });
        break;
      }
      case 'stats': {
        const byId = new Map(event.stats.map((s) => [s.id, s]));
        const forwards = this.state.forwards.map((f) => {
          const s = byId.get(f.id);
          if (!s) return f;
          return {
            ...f,
            connections: s.connections,
            bytes: s.bytes,
            errors: s.errors,
            lastError: s.lastError,
          };
        });
        this.update({ forwards });
        break;
      }
      case 'log':
        this.appendLogs(event.id, event.lines.map(formatLogLine));
        break;
      case 'notice':
        this.update({
          notices: [
            ...this.state.notices.slice(-4),
            { id: this.nextNoticeId++, level: event.level, message: event.message },
          ],
        });
        break;
    }
  }

  /** Adds a notice raised by the UI itself (e.g. a command that failed). */
  notify(level: Notice['level'], message: string): void {
    this.apply({ type: 'notice', level, message });
  }

  /** Removes a notice the person dismissed. */
  dismiss(id: number): void {
    this.update({ notices: this.state.notices.filter((n) => n.id !== id) });
  }

  /** Replaces a forward's log tail with what the `logs` command returned (when its detail view opens). */
  setLogs(id: string, lines: readonly LogLineData[]): void {
    this.update({ logs: { ...this.state.logs, [id]: lines.map(formatLogLine).slice(-LOG_TAIL_LINES) } });
  }

  /** Appends backend output for a forward, as `log` events push it. */
  appendLogs(id: string, lines: readonly string[]): void {
    const previous = this.state.logs[id] ?? [];
    this.update({ logs: { ...this.state.logs, [id]: [...previous, ...lines].slice(-LOG_TAIL_LINES) } });
  }

  /** Records one throughput sample per forward: bytes moved since the last sample, per second. */
  sample(now: number): void {
    const seconds = this.lastSampleAt === undefined ? 1 : Math.max((now - this.lastSampleAt) / 1000, 0.001);
    this.lastSampleAt = now;
    const throughput: Record<string, readonly number[]> = {};
    let changed = false;
    for (const forward of this.state.forwards) {
      const total = totalBytes(forward);
      const last = this.lastTotals.get(forward.id);
      this.lastTotals.set(forward.id, total);
      const rate = last === undefined ? 0 : Math.max(total - last, 0) / seconds;
      const history = this.state.throughput[forward.id] ?? EMPTY_HISTORY;
      if (rate === 0 && history.every((v) => v === 0)) throughput[forward.id] = history;
      else {
        throughput[forward.id] = [...history.slice(1), rate];
        changed = true;
      }
    }
    if (changed || Object.keys(throughput).length !== Object.keys(this.state.throughput).length)
      this.update({ throughput });
  }

  private update(patch: Partial<StoreState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }
}

function totalBytes(forward: Pick<ForwardStatus, 'bytes'>): number {
  return forward.bytes.toTarget + forward.bytes.fromTarget;
}

/** "15:27:11 stderr  text": one log line as the detail view shows it. */
export function formatLogLine(line: LogLineData): string {
  const time = line.time.slice(11, 19);
  return `${time} ${line.stream.padEnd(6)} ${line.text}`;
}
