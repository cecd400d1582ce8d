/**
 * The version-1 config format (docs/config.md), defined once: the zod schemas below are the runtime
 * validator and, through z.infer, the TypeScript types. Everything else (engine, API, UI form) reuses them,
 * so this file stays free of Node built-ins: the renderer runs it in the browser.
 */
import { z } from 'zod';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 for an IPv4 literal, 6 for an IPv6 literal, 0 otherwise (like node:net isIP, but browser-safe). */
export function ipVersion(value: string): 0 | 4 | 6 {
  if (IPV4.test(value)) return 4;
  if (!value.includes(':') || !/^[0-9a-fA-F:.]+$/.test(value)) return 0;
  try {
    // The WHATWG URL parser implements the full IPv6 grammar (including embedded IPv4) in Node and browsers.
    new URL(`http://[${value}]/`);
    return 6;
  } catch {
    return 0;
  }
}

const isAbsolute = (path: string): boolean => path.startsWith('/');
const isIP = ipVersion;

/** The newest config format this build reads and writes. */
export const CONFIG_VERSION = 1;

/** Forward ids: short, lowercase, usable in URLs, shell arguments and accessible names. */
export const FORWARD_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;

// RFC 1123 host names: labels of letters, digits and hyphens, not starting or ending with a hyphen.
const HOST_NAME =
  /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

const port = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be 1-65535' })
  .max(65535, { error: 'must be 1-65535' });

const ipLiteral = z.string({ error: 'must be a string' }).refine((value) => isIP(value) !== 0, {
  error: 'must be an IPv4 or IPv6 address, such as 127.0.0.1 or ::1',
});

const hostName = z
  .string({ error: 'must be a string' })
  .refine((value) => isIP(value) !== 0 || HOST_NAME.test(value), {
    error: 'must be an IP address or a host name, such as 127.0.0.1, ::1 or db.internal',
  });

const absolutePath = z
  .string({ error: 'must be a string' })
  .refine((value) => isAbsolute(value), { error: 'must be an absolute path' })
  .refine((value) => !value.includes('\0'), { error: 'must not contain a NUL character' });

/** Where a forward listens. */
export const ListenSchema = z.strictObject({
  address: ipLiteral.default('127.0.0.1'),
  port,
});

/** Where a forward sends its traffic: a host and port, or (TCP only) a Unix socket. */
export const TargetSchema = z.union(
  [z.strictObject({ host: hostName, port }), z.strictObject({ unix: absolutePath })],
  { error: 'must be { "host", "port" } or { "unix": "/absolute/path" }' },
);

/** Restart policies of a supervised backend. */
export const RestartPolicySchema = z.enum(['never', 'on-failure', 'always'], {
  error: 'must be "never", "on-failure" or "always"',
});

/** The process that serves a forward's target, run as argv without a shell. */
export const BackendSchema = z.strictObject({
  command: z
    .array(z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }), {
      error: 'must be an array of strings (argv), such as ["python3", "-m", "http.server"]',
    })
    .min(1, { error: 'must name at least the program to run' }),
  cwd: absolutePath.optional(),
  env: z.record(z.string(), z.string({ error: 'must be a string' })).optional(),
  restart: RestartPolicySchema.default('on-failure'),
});

/** One forward as stored in the config file. */
export const ForwardSchema = z
  .strictObject({
    id: z.string({ error: 'must be a string' }).regex(FORWARD_ID, {
      error: 'must be 1-40 lowercase letters, digits or hyphens, starting with a letter or digit',
    }),
    name: z
      .string({ error: 'must be a string' })
      .max(200, { error: 'must be at most 200 characters' })
      .optional(),
    enabled: z.boolean({ error: 'must be true or false' }).default(true),
    protocol: z.enum(['tcp', 'udp'], { error: 'must be "tcp" or "udp"' }).default('tcp'),
    listen: ListenSchema,
    target: TargetSchema,
    backend: BackendSchema.optional(),
  })
  .superRefine((forward, ctx) => {
    if (forward.protocol === 'udp' && 'unix' in forward.target) {
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'unix'],
        message: 'a Unix socket target needs protocol "tcp"',
      });
    }
  });

/** Settings for reaching berth-helper. */
export const HelperSettingsSchema = z.strictObject({ socket: absolutePath.optional() });

/** The whole config file, version 1. */
export const ConfigSchema = z
  .strictObject({
    version: z.literal(CONFIG_VERSION, { error: `must be ${CONFIG_VERSION}` }),
    forwards: z.array(ForwardSchema, { error: 'must be an array of forwards' }).default([]),
    helper: HelperSettingsSchema.optional(),
  })
  .superRefine((config, ctx) => {
    const ids = new Map<string, number>();
    const listens = new Map<string, number>();
    config.forwards.forEach((forward, index) => {
      const first = ids.get(forward.id);
      if (first === undefined) ids.set(forward.id, index);
      else {
        ctx.addIssue({
          code: 'custom',
          path: ['forwards', index, 'id'],
          message: `duplicate id "${forward.id}" (also used by forwards[${first}])`,
        });
      }
      const key = `${forward.protocol}/${forward.listen.address}/${forward.listen.port}`;
      const sameListen = listens.get(key);
      if (sameListen === undefined) listens.set(key, index);
      else {
        ctx.addIssue({
          code: 'custom',
          path: ['forwards', index, 'listen'],
          message: `${describeListen(forward)} is already used by forwards[${sameListen}]`,
        });
      }
    });
  });

/** A forward as written by a person or a client: defaults may be left out. */
export type ForwardInput = z.input<typeof ForwardSchema>;
/** A validated forward with every default filled in. */
export type Forward = z.output<typeof ForwardSchema>;
/** A validated backend. */
export type Backend = z.output<typeof BackendSchema>;
/** A validated target. */
export type Target = z.output<typeof TargetSchema>;
/** A validated config file. */
export type Config = z.output<typeof ConfigSchema>;

/** An empty version-1 config, what a missing file means. */
export function emptyConfig(): Config {
  return { version: CONFIG_VERSION, forwards: [] };
}

/** "127.0.0.1:80/tcp" or "[::1]:53/udp": how messages name a listener. */
export function describeListen(forward: Pick<Forward, 'listen' | 'protocol'>): string {
  const { address, port: listenPort } = forward.listen;
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return `${host}:${listenPort}/${forward.protocol}`;
}

/** "127.0.0.1:8080", "[::1]:8080" or "unix:/run/app.sock": how messages name a target. */
export function describeTarget(target: Target): string {
  if ('unix' in target) return `unix:${target.unix}`;
  const host = isIP(target.host) === 6 ? `[${target.host}]` : target.host;
  return `${host}:${target.port}`;
}
