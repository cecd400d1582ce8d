/**
 * The one API contract between the engine and every client (CLI control socket, WebSocket, Electron IPC):
 * commands flow client → engine and return a response; events flow engine → client. Every request is
 * validated at runtime with the schema that defines its type. Renderer code imports this file for types only.
 */
import { z } from 'zod';
import { ForwardSchema } from '../config/schema.js';

/** Lifecycle of a forward's listener. */
export const ForwardStateSchema = z.enum(['stopped', 'starting', 'listening', 'error']);

/** A problem a person can act on: a code (`EADDRINUSE`) and a sentence with the fix. */
export const ForwardErrorSchema = z.object({ code: z.string(), message: z.string() });

/** The process that holds a busy listen port, as far as the platform lets Berth see it. */
export const PortHolderSchema = z.object({
  /** Null when it belongs to another user, whose processes Berth may not look into. */
  pid: z.number().nullable(),
  command: z.string().nullable(),
  user: z.string(),
  /** A backend that an earlier Berth started and left running: the window offers to stop it. */
  leftover: z.boolean().optional(),
});

/** Why a forward is not listening: a problem, and for a busy port who holds it and whether Berth retries. */
export const ListenErrorSchema = ForwardErrorSchema.extend({
  holder: PortHolderSchema.nullable().optional(),
  /** True while Berth waits for the port to free and will take it by itself. */
  retrying: z.boolean().optional(),
});

/** Whether the forward's target answers its health check (docs/api.md). */
export const HealthStatusSchema = z.object({
  state: z.enum(['healthy', 'unhealthy', 'unknown', 'off']),
  checkedAt: z.string().nullable(),
  failures: z.number(),
  message: z.string().nullable(),
});

/** Supervised backend states (docs/api.md, "`berth status --json`"). */
export const BackendStateSchema = z.enum([
  'starting',
  'running',
  'restarting',
  'exited',
  'failed',
  'stopped',
]);

/** What the engine knows of a forward's backend process. */
export const BackendStatusSchema = z.object({
  state: BackendStateSchema,
  pid: z.number().nullable(),
  restarts: z.number(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  fdCheck: z.enum(['clean', 'leak', 'unknown']),
  startedAt: z.string().nullable().optional(),
  reason: z.string().nullable().optional(),
});

/** One line of a backend's output (or Berth's note about it). */
export const LogLineSchema = z.object({
  time: z.string(),
  stream: z.enum(['stdout', 'stderr', 'berth']),
  text: z.string(),
});

/** Counters of one forward; batched into `stats` events a few times a second. */
export const ForwardCountersSchema = z.object({
  connections: z.object({ active: z.number(), total: z.number() }),
  bytes: z.object({ toTarget: z.number(), fromTarget: z.number() }),
  errors: z.number(),
  lastError: ForwardErrorSchema.nullable(),
});

/** One forward as `berth status --json` prints it. */
export const ForwardStatusSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  enabled: z.boolean(),
  protocol: z.enum(['tcp', 'udp']),
  listen: z.object({ address: z.string(), port: z.number() }),
  target: z.union([z.object({ host: z.string(), port: z.number() }), z.object({ unix: z.string() })]),
  state: ForwardStateSchema,
  via: z.enum(['direct', 'helper']).optional(),
  error: ListenErrorSchema.nullable(),
  health: HealthStatusSchema,
  lastError: ForwardErrorSchema.nullable(),
  connections: ForwardCountersSchema.shape.connections,
  bytes: ForwardCountersSchema.shape.bytes,
  errors: z.number(),
  backend: BackendStatusSchema.optional(),
});

/** `{ forwards: [...] }`: the status of every forward. */
export const StatusSchema = z.object({ forwards: z.array(ForwardStatusSchema) });

const byId = z.strictObject({ id: z.string() });

/** Every command: its request schema and response schema. */
export const commands = {
  status: { request: z.strictObject({}), response: StatusSchema },
  get: { request: byId, response: ForwardSchema },
  add: { request: z.strictObject({ forward: ForwardSchema }), response: ForwardStatusSchema },
  update: {
    request: z.strictObject({ id: z.string(), forward: ForwardSchema }),
    response: ForwardStatusSchema,
  },
  remove: { request: byId, response: z.object({ id: z.string() }) },
  enable: { request: byId, response: ForwardStatusSchema },
  disable: { request: byId, response: ForwardStatusSchema },
  stopLeftover: { request: byId, response: ForwardStatusSchema },
  logs: {
    request: z.strictObject({ id: z.string(), limit: z.number().int().min(1).max(10_000).optional() }),
    response: z.object({ id: z.string(), lines: z.array(LogLineSchema) }),
  },
} as const;

/** Events pushed to subscribers: first a snapshot, then changes. */
export const EventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('snapshot'), forwards: z.array(ForwardStatusSchema) }),
  z.object({ type: z.literal('forward'), forward: ForwardStatusSchema }),
  z.object({ type: z.literal('removed'), id: z.string() }),
  z.object({
    type: z.literal('stats'),
    stats: z.array(ForwardCountersSchema.extend({ id: z.string() })),
  }),
  z.object({ type: z.literal('notice'), level: z.enum(['info', 'warning', 'error']), message: z.string() }),
  z.object({ type: z.literal('log'), id: z.string(), lines: z.array(LogLineSchema) }),
]);

/** The error envelope that crosses every transport and is rebuilt as an ApiError on the other side. */
export const ErrorEnvelopeSchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string(),
  problems: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export type CommandName = keyof typeof commands;
export type CommandRequest<N extends CommandName> = z.input<(typeof commands)[N]['request']>;
export type CommandResponse<N extends CommandName> = z.output<(typeof commands)[N]['response']>;
/** A request after validation: what the command's implementation receives (defaults filled in). */
export type ParsedRequest<N extends CommandName> = z.output<(typeof commands)[N]['request']>;
/** What implements the API: one function per command, from its validated request to its response. */
export type CommandHandlers = {
  [N in CommandName]: (request: ParsedRequest<N>) => Promise<CommandResponse<N>>;
};
/** A command's answer as data, never a rejection: what IPC returns and what a wire reply carries. */
export type CommandOutcome<N extends CommandName> =
  { ok: true; result: CommandResponse<N> } | { ok: false; error: ErrorEnvelope };
export type ForwardStatus = z.output<typeof ForwardStatusSchema>;
export type ForwardState = z.output<typeof ForwardStateSchema>;
export type ForwardCounters = z.output<typeof ForwardCountersSchema>;
export type BackendStatus = z.output<typeof BackendStatusSchema>;
export type HealthState = z.output<typeof HealthStatusSchema>;
export type ListenError = z.output<typeof ListenErrorSchema>;
export type PortHolderStatus = z.output<typeof PortHolderSchema>;
export type Status = z.output<typeof StatusSchema>;
export type BerthEvent = z.output<typeof EventSchema>;
export type ErrorEnvelope = z.output<typeof ErrorEnvelopeSchema>;
export type LogLineData = z.output<typeof LogLineSchema>;

/** What every transport offers a client: typed commands and a subscription. */
export interface BerthApi {
  call<N extends CommandName>(name: N, request: CommandRequest<N>): Promise<CommandResponse<N>>;
  /** Receives a snapshot at once, then changes; returns the unsubscribe function. */
  subscribe(listener: (event: BerthEvent) => void): () => void;
}

/**
 * What every transport serves (the control socket, the WebSocket and IPC, through app/api/session.ts): the
 * engine, or anything else that implements the API once. `handle` takes a command as it came from outside.
 */
export interface ApiTarget {
  /** Runs a command whose name and request come from outside; both are validated (app/api/requests.ts). */
  handle(name: unknown, request: unknown): Promise<CommandResponse<CommandName>>;
  /** Receives a snapshot at once, then changes; returns the unsubscribe function. */
  subscribe(listener: (event: BerthEvent) => void): () => void;
}

/** True when `name` is a command of the contract. */
export function isCommandName(name: unknown): name is CommandName {
  return typeof name === 'string' && Object.hasOwn(commands, name);
}
