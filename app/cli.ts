#!/usr/bin/env node
/** The `berth` command: runs Berth (`serve`) or drives a running one over its control socket. */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ForwardStatus, LogLineData } from './api/contract.js';
import { ApiError } from './api/errors.js';
import { formatStatusTable } from './cli-format.js';
import { formatProblems } from './config/problems.js';
import type { ForwardInput } from './config/schema.js';
import { CONFIG_VERSION } from './config/schema.js';
import { ConfigError, parseConfig } from './config/store.js';
import { ControlClient } from './control/client.js';
import { configPath, controlPath } from './paths.js';
import { serve, type ServeOptions } from './serve.js';
import { VERSION } from './version.js';
import { isLoopback } from './web/server.js';

const USAGE = `Usage: berth <command> [options]

Commands:
  serve [--ui HOST:PORT] [--no-ui]    run Berth in the foreground (Ctrl+C stops it); the UI is
                                      served on loopback, a random port unless --ui says
  status [--json]                     show the forwards of the running Berth
  enable ID | disable ID              start or stop a forward (saved to the config)
  add ID --listen [ADDR:]PORT --target HOST:PORT|unix:/PATH
         [--protocol tcp|udp] [--name NAME] [--disabled]
         [--health tcp|http:PATH|off] [--restart never|on-failure|always] [--cwd DIR]
         [--env K=V]... [-- COMMAND ARG...]
                                      add a forward to the running Berth; after --, the backend
                                      process Berth starts and watches (run without a shell);
                                      --health: how Berth checks that the target answers
  remove ID                           remove a forward
  logs ID [--follow] [--lines N]      show the backend's recent output
  validate [PATH]                     check a config file

Options:
  --config PATH    config file (default: $BERTH_CONFIG or ~/.config/berth/config.json)
  --control PATH   control socket (default: $BERTH_CONTROL or $XDG_RUNTIME_DIR/berth/control.sock)
  -h, --help       show this help
  --version        show the version`;

/** A mistake in how berth was called: printed with a hint and exit code 2. */
class UsageError extends Error {}

type Print = (line: string) => void;
interface Io {
  out: Print;
  err: Print;
}

const common = {
  config: { type: 'string' },
  control: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const commandOptions = {
  serve: { 'no-ui': { type: 'boolean' }, ui: { type: 'string' } },
  status: { json: { type: 'boolean' } },
  enable: {},
  disable: {},
  remove: {},
  validate: {},
  logs: { follow: { type: 'boolean', short: 'f' }, lines: { type: 'string', short: 'n' } },
  add: {
    listen: { type: 'string' },
    target: { type: 'string' },
    protocol: { type: 'string' },
    name: { type: 'string' },
    disabled: { type: 'boolean' },
    health: { type: 'string' },
    restart: { type: 'string' },
    cwd: { type: 'string' },
    env: { type: 'string', multiple: true },
  },
} as const satisfies Record<string, ParseArgsConfig['options']>;

type Command = keyof typeof commandOptions;

/** Runs the CLI; resolves to the process exit code (serve resolves when it has stopped). */
export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    io.out(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === 'version') {
    io.out(VERSION);
    return 0;
  }
  try {
    if (!Object.hasOwn(commandOptions, command)) throw new UsageError(`unknown command "${command}"`);
    // Everything after `--` is the backend's argv, passed on untouched.
    const split = rest.indexOf('--');
    const backendArgv = split === -1 ? [] : rest.slice(split + 1);
    const parsed = parse(command as Command, split === -1 ? rest : rest.slice(0, split));
    if (split !== -1 && command !== 'add') throw new UsageError(`${command}: unexpected arguments after --`);
    if (parsed.values.help) {
      io.out(USAGE);
      return 0;
    }
    return await run(command as Command, parsed.values, parsed.positionals, io, backendArgv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`berth: ${err.message}\nRun \`berth --help\` for usage.`);
      return 2;
    }
    if (err instanceof ApiError) {
      io.err(`berth: ${err.message}`);
      if (err.problems && err.problems.length > 0) io.err(formatProblems(err.problems));
      return 1;
    }
    io.err(`berth: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(command: Command, args: string[]): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...common, ...commandOptions[command] },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

async function run(
  command: Command,
  values: Values,
  positionals: string[],
  io: Io,
  backendArgv: string[],
): Promise<number> {
  const str = (key: string) => (typeof values[key] === 'string' ? values[key] : undefined);
  const control = controlPath(str('control'));
  switch (command) {
    case 'serve':
      expectPositionals(command, positionals, 0);
      return runServe(configPath(str('config')), control, uiOption(values), io);
    case 'validate':
      expectPositionals(command, positionals, 0, 1);
      return validate(positionals[0] ?? configPath(str('config')), io);
    case 'status':
      expectPositionals(command, positionals, 0);
      return withClient(control, async (client) => {
        const status = await client.call('status', {});
        io.out(values.json ? JSON.stringify(status, null, 2) : formatStatusTable(status.forwards));
        return 0;
      });
    case 'enable':
    case 'disable': {
      const [id] = expectPositionals(command, positionals, 1);
      return withClient(control, async (client) => {
        const forward = await client.call(command, { id: id as string });
        io.out(describeState(forward));
        return forward.state === 'error' ? 1 : 0;
      });
    }
    case 'remove': {
      const [id] = expectPositionals(command, positionals, 1);
      return withClient(control, async (client) => {
        await client.call('remove', { id: id as string });
        io.out(`${id}: removed`);
        return 0;
      });
    }
    case 'add': {
      const [id] = expectPositionals(command, positionals, 1);
      const forward = forwardFromFlags(id as string, values, backendArgv);
      return withClient(control, async (client) => {
        const status = await client.call('add', { forward });
        io.out(describeState(status));
        return status.state === 'error' ? 1 : 0;
      });
    }
    case 'logs': {
      const [id] = expectPositionals(command, positionals, 1);
      const lines = str('lines') === undefined ? 200 : Number(str('lines'));
      if (!Number.isInteger(lines) || lines < 1)
        throw new UsageError(`logs: --lines must be a positive whole number`);
      return values.follow
        ? followLogs(control, id as string, lines, io)
        : printLogs(control, id as string, lines, io);
    }
  }
}

const formatLine = (line: LogLineData) => `${line.time} ${line.stream.padEnd(6)} ${line.text}`;

function printLogs(control: string, id: string, limit: number, io: Io): Promise<number> {
  return withClient(control, async (client) => {
    const { lines } = await client.call('logs', { id, limit });
    for (const line of lines) io.out(formatLine(line));
    return 0;
  });
}

// Prints the recent lines, then every new one as it arrives, until Ctrl+C or Berth goes away.
async function followLogs(control: string, id: string, limit: number, io: Io): Promise<number> {
  const client = await ControlClient.connect(control);
  try {
    const { lines } = await client.call('logs', { id, limit });
    for (const line of lines) io.out(formatLine(line));
    return await new Promise<number>((resolve) => {
      client.subscribe((event) => {
        if (event.type === 'log' && event.id === id) for (const line of event.lines) io.out(formatLine(line));
        if (event.type === 'removed' && event.id === id) resolve(0);
      });
      client.onClose(() => resolve(1));
      process.once('SIGINT', () => resolve(0));
    });
  } finally {
    client.close();
  }
}

function expectPositionals(command: string, positionals: string[], min: number, max = min): string[] {
  if (positionals.length < min)
    throw new UsageError(`${command}: missing ${min === 1 ? 'the forward ID' : 'arguments'}`);
  if (positionals.length > max) throw new UsageError(`${command}: unexpected argument "${positionals[max]}"`);
  return positionals;
}

async function withClient(path: string, work: (client: ControlClient) => Promise<number>): Promise<number> {
  const client = await ControlClient.connect(path);
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

function describeState(forward: ForwardStatus): string {
  if (forward.state === 'error' && forward.error)
    return `${forward.id}: error ${forward.error.code}: ${forward.error.message}`;
  return `${forward.id}: ${forward.state}${forward.via ? ` (${forward.via})` : ''}`;
}

function forwardFromFlags(id: string, values: Values, backendArgv: string[]): ForwardInput {
  const listen = values.listen;
  const target = values.target;
  if (typeof listen !== 'string') throw new UsageError('add: --listen [ADDRESS:]PORT is required');
  if (typeof target !== 'string') throw new UsageError('add: --target HOST:PORT or unix:/PATH is required');
  const protocol = values.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp')
    throw new UsageError(`add: --protocol must be tcp or udp, not "${String(protocol)}"`);
  const listenAt = hostPort('--listen', listen);
  return {
    id,
    ...(typeof values.name === 'string' ? { name: values.name } : {}),
    enabled: values.disabled !== true,
    protocol,
    listen:
      listenAt.host === undefined ? { port: listenAt.port } : { address: listenAt.host, port: listenAt.port },
    target: target.startsWith('unix:')
      ? { unix: target.slice('unix:'.length) }
      : (({ host, port }) => ({ host: host ?? '127.0.0.1', port }))(hostPort('--target', target)),
    ...healthFromFlag(values.health),
    ...backendFromFlags(values, backendArgv),
  };
}

// "tcp", "off" or "http:/healthz" (the path as it goes in the request; "http" alone checks "/").
function healthFromFlag(value: Values['health']): Pick<ForwardInput, 'health'> {
  if (value === undefined) return {};
  if (typeof value !== 'string') throw new UsageError('add: --health takes tcp, http:PATH or off');
  if (value === 'tcp' || value === 'off') return { health: { check: value } };
  if (value === 'http') return { health: { check: 'http', path: '/' } };
  if (value.startsWith('http:')) return { health: { check: 'http', path: value.slice('http:'.length) } };
  throw new UsageError(`add: --health must be tcp, http:PATH (such as http:/healthz) or off, not "${value}"`);
}

function backendFromFlags(values: Values, argv: string[]): Pick<ForwardInput, 'backend'> {
  const { restart, cwd, env } = values;
  if (argv.length === 0) {
    if (restart !== undefined || cwd !== undefined || env !== undefined) {
      throw new UsageError('add: --restart, --cwd and --env need a backend command after --');
    }
    return {};
  }
  const variables: Record<string, string> = {};
  for (const pair of Array.isArray(env) ? env : []) {
    const equals = pair.indexOf('=');
    if (equals < 1) throw new UsageError(`add: --env "${pair}" is not NAME=VALUE`);
    variables[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return {
    backend: {
      command: argv,
      ...(typeof cwd === 'string' ? { cwd: resolve(cwd) } : {}),
      ...(env !== undefined ? { env: variables } : {}),
      ...(typeof restart === 'string' ? { restart: restart as 'never' } : {}),
    },
  };
}

// "8080", "127.0.0.1:8080", "db.internal:5432" or "[::1]:8080".
function hostPort(flag: string, text: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?(\d+)$/.exec(text);
  if (!match) {
    const hint = isIP(text) === 6 ? ' (write IPv6 addresses in brackets: [::1]:8080)' : '';
    throw new UsageError(`${flag}: "${text}" is not [HOST:]PORT${hint}`);
  }
  return { host: match[1] ?? match[2], port: Number(match[3]) };
}

async function validate(path: string, io: Io): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    io.err(`berth: cannot read ${path}: ${(err as Error).message}`);
    return 1;
  }
  try {
    const version = (JSON.parse(text) as { version?: unknown }).version;
    if (typeof version === 'number' && version > CONFIG_VERSION) {
      io.err(
        `${path}: config version ${version} is newer than this Berth reads (${CONFIG_VERSION}). Update Berth.`,
      );
      return 1;
    }
  } catch {
    // parseConfig below reports the syntax error with its position.
  }
  try {
    const config = parseConfig(text, path);
    io.out(`${path}: valid (${config.forwards.length} forward${config.forwards.length === 1 ? '' : 's'})`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) io.err(`${path}: ${problem.path}: ${problem.message}`);
    return 1;
  }
}

// `--ui 127.0.0.1:8080`, `--ui [::1]:0`, `--ui localhost:8080` or `--ui 8080`; loopback only.
function uiOption(values: Values): ServeOptions['ui'] {
  const ui = values.ui;
  if (values['no-ui'] === true) {
    if (typeof ui === 'string') throw new UsageError('serve: --ui and --no-ui cannot be used together');
    return false;
  }
  if (typeof ui !== 'string') return undefined;
  const { host = '127.0.0.1', port } = hostPort('--ui', ui);
  const address = host === 'localhost' ? '127.0.0.1' : host;
  if (!isLoopback(address))
    throw new UsageError(
      `--ui: the UI is served on loopback only: use 127.0.0.1:PORT or [::1]:PORT, not ${host}`,
    );
  if (port > 65535) throw new UsageError(`--ui: port ${port} is not 0-65535`);
  return { host: address, port };
}

async function runServe(config: string, control: string, ui: ServeOptions['ui'], io: Io): Promise<number> {
  const served = await serve({ configPath: config, controlPath: control, ui, out: io.out, err: io.err });
  io.out('Berth is running. Press Ctrl+C to stop.');
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.err(`berth: ${signal} again, exiting without waiting`);
        resolve(1);
        return;
      }
      stopping = true;
      io.out(`Stopping (${signal}): closing every listener.`);
      served.stop().then(
        () => resolve(0),
        (err: unknown) => {
          io.err(`berth: stopping failed: ${String(err)}`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

// Run only when executed as the `berth` bin, not when imported by tests.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  const code = await main(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
  process.exit(code);
}
