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

/**
 * The newest config format this build reads and writes. Version 2 adds optional fields only (docs/config.md):
 * a file is written as version 1 while it uses none of them, so that an older Berth still reads it, and as
 * version 2 once it does, so that an older Berth treats it as a newer file (used read-only, never rewritten)
 * instead of as a broken one.
 */
export const CONFIG_VERSION = 2;

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

/** What a health check uses where the config says nothing. */
export const HEALTH_DEFAULTS = { path: '/', intervalS: 10, timeoutMs: 2000, failures: 3 } as const;

/** Kinds of health check: connect to the target, GET a path on it, or none. */
export const HealthCheckSchema = z.enum(['tcp', 'http', 'off'], {
  error: 'must be "tcp", "http" or "off"',
});

/**
 * How Berth checks that a forward's target answers (docs/config.md, "health"). Every field may be left out:
 * `effectiveHealth` fills in the defaults, so a file never needs to spell them out.
 */
export const HealthSchema = z
  .strictObject({
    check: HealthCheckSchema.optional(),
    path: z
      .string({ error: 'must be a string' })
      .max(2048, { error: 'must be at most 2048 characters' })
      .refine((value) => value.startsWith('/'), { error: 'must start with "/", such as /healthz' })
      .refine((value) => ![...value].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f), {
        error: 'must not contain spaces or control characters (percent-encode them)',
      })
      .optional(),
    intervalS: z
      .number({ error: 'must be a number of seconds' })
      .min(1, { error: 'must be at least 1 (seconds)' })
      .max(86_400, { error: 'must be at most 86400 (a day)' })
      .optional(),
    timeoutMs: z
      .number({ error: 'must be a number of milliseconds' })
      .int({ error: 'must be a whole number of milliseconds' })
      .min(1, { error: 'must be at least 1 (milliseconds)' })
      .optional(),
    failures: z
      .number({ error: 'must be a number' })
      .int({ error: 'must be a whole number' })
      .min(1, { error: 'must be at least 1' })
      .max(100, { error: 'must be at most 100' })
      .optional(),
  })
  .superRefine((health, ctx) => {
    const intervalMs = (health.intervalS ?? HEALTH_DEFAULTS.intervalS) * 1000;
    const timeoutMs = health.timeoutMs ?? HEALTH_DEFAULTS.timeoutMs;
    if (timeoutMs >= intervalMs) {
      ctx.addIssue({
        code: 'custom',
        path: [health.timeoutMs !== undefined ? 'timeoutMs' : 'intervalS'],
        message: `the timeout (${timeoutMs} ms) must be below the interval (${intervalMs} ms)`,
      });
    }
    if (health.path !== undefined && health.check !== 'http') {
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'is used only with "check": "http"' });
    }
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
    health: HealthSchema.optional(),
  })
  .superRefine((forward, ctx) => {
    const check = forward.health?.check;
    if (forward.protocol === 'udp' && (check === 'tcp' || check === 'http')) {
      ctx.addIssue({
        code: 'custom',
        path: ['health', 'check'],
        message: `a "${check}" check needs protocol "tcp" (a UDP target cannot be checked by connecting)`,
      });
    }
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
    version: z.union([z.literal(1), z.literal(CONFIG_VERSION)], { error: `must be 1 or ${CONFIG_VERSION}` }),
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
/** A validated health setting, as written. */
export type Health = z.output<typeof HealthSchema>;
/** A validated target. */
export type Target = z.output<typeof TargetSchema>;
/** A validated config file. */
export type Config = z.output<typeof ConfigSchema>;

/** An empty config, what a missing file means. */
export function emptyConfig(): Config {
  return { version: 1, forwards: [] };
}

/**
 * The version a config is written with: 2 once a forward uses a field that version 2 added, else 1, so that
 * an older Berth keeps reading and writing every file that does not need the newer format.
 */
export function configVersionFor(config: Pick<Config, 'forwards'>): 1 | typeof CONFIG_VERSION {
  const wave2: (keyof Forward)[] = ['health'];
  return config.forwards.some((forward) => wave2.some((field) => forward[field] !== undefined))
    ? CONFIG_VERSION
    : 1;
}

/** A forward's health check with every default filled in (docs/config.md, "health"). */
export interface EffectiveHealth {
  check: 'tcp' | 'http' | 'off';
  path: string;
  intervalMs: number;
  timeoutMs: number;
  failures: number;
}

/** The check Berth runs for `forward`: what its `health` says, the defaults for the rest. */
export function effectiveHealth(forward: Pick<Forward, 'protocol' | 'health'>): EffectiveHealth {
  const health = forward.health ?? {};
  return {
    check: health.check ?? (forward.protocol === 'tcp' ? 'tcp' : 'off'),
    path: health.path ?? HEALTH_DEFAULTS.path,
    intervalMs: (health.intervalS ?? HEALTH_DEFAULTS.intervalS) * 1000,
    timeoutMs: health.timeoutMs ?? HEALTH_DEFAULTS.timeoutMs,
    failures: health.failures ?? HEALTH_DEFAULTS.failures,
  };
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
