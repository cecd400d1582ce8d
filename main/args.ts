/** The desktop app's command-line flags: the CLI's `--config PATH` and `--control PATH`, and `--hidden`. */
import { configPath, controlPath } from '../app/paths.js';
import { HIDDEN_ARG } from './login-item.js';

/** What the desktop app was started with. */
export interface DesktopArgs {
  configPath: string;
  controlPath: string;
  /** Started at login: stay in the tray, no window. */
  hidden: boolean;
}

/** Reads the flags from argv (`--flag VALUE` or `--flag=VALUE`), falling back on the CLI's defaults. */
export function parseDesktopArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): DesktopArgs {
  return {
    configPath: configPath(flag(argv, '--config'), env),
    controlPath: controlPath(flag(argv, '--control'), env),
    hidden: argv.includes(HIDDEN_ARG),
  };
}

function flag(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === name) return argv[i + 1];
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
  }
  return undefined;
}
