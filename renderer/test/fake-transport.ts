/** An in-memory Transport for component tests: records calls, answers with handlers, pushes events on demand. */
import type { BerthEvent, CommandName, ForwardStatus } from '../../app/api/contract.js';
import type { ConnectionState, Transport } from '../src/transport.js';

type Handler = (request: unknown) => unknown;

/** A Transport whose commands are answered by `handlers` and whose events the test emits. */
export class FakeTransport implements Transport {
  /** Every command but `logs`, which views send on their own when they open (see `logRequests`). */
  readonly calls: { name: CommandName; request: unknown }[] = [];
  readonly logRequests: unknown[] = [];
  readonly handlers: Partial<Record<CommandName, Handler>> = {
    logs: (request) => ({ id: (request as { id: string }).id, lines: [] }),
  };
  private readonly listeners = new Set<(event: BerthEvent) => void>();

  constructor(private snapshot: ForwardStatus[] = []) {}

  call<N extends CommandName>(name: N, request: unknown): Promise<never> {
    if (name === 'logs') this.logRequests.push(request);
    else this.calls.push({ name, request });
    const handler = this.handlers[name];
    try {
      return Promise.resolve(handler ? handler(request) : {}) as Promise<never>;
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  subscribe(listener: (event: BerthEvent) => void): () => void {
    listener({ type: 'snapshot', forwards: this.snapshot });
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    listener('open');
    return () => undefined;
  }

  close(): void {
    this.listeners.clear();
  }

  /** Pushes an event to every subscriber, as the engine would. */
  emit(event: BerthEvent): void {
    if (event.type === 'snapshot') this.snapshot = event.forwards;
    for (const listener of this.listeners) listener(event);
  }
}

/** A listening TCP forward with zero counters; `patch` overrides any field. */
export function forwardStatus(patch: Partial<ForwardStatus> = {}): ForwardStatus {
  return {
    id: 'web',
    enabled: true,
    protocol: 'tcp',
    listen: { address: '127.0.0.1', port: 8080 },
    target: { host: '127.0.0.1', port: 3000 },
    state: 'listening',
    via: 'direct',
    error: null,
    health: { state: 'unknown', checkedAt: null, failures: 0, message: null },
    lastError: null,
    connections: { active: 0, total: 0 },
    bytes: { toTarget: 0, fromTarget: 0 },
    errors: 0,
    ...patch,
  };
}
