/** Where Berth's files live by default (docs/config.md, "Where it is"; docs/cli.md, "Where things are"). */
import { homedir, tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

/** `--config PATH`, else `$BERTH_CONFIG`, else `$XDG_CONFIG_HOME/berth/config.json`. */
export function configPath(flag: string | undefined, env: Env = process.env): string {
  if (flag) return resolve(flag);
  if (env.BERTH_CONFIG) return resolve(env.BERTH_CONFIG);
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'berth', 'config.json');
}

/** `--control PATH`, else `$BERTH_CONTROL`, else `$XDG_RUNTIME_DIR/berth/control.sock`, else a per-user temp folder. */
export function controlPath(flag: string | undefined, env: Env = process.env): string {
  if (flag) return resolve(flag);
  if (env.BERTH_CONTROL) return resolve(env.BERTH_CONTROL);
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'berth', 'control.sock');
  return join(tmpdir(), `berth-${userInfo().uid}`, 'control.sock');
}

/** The config's `helper.socket`, else `$BERTH_HELPER_SOCKET`, else the platform default. */
export function helperSocketPath(configured: string | undefined, env: Env = process.env): string {
  if (configured) return configured;
  if (env.BERTH_HELPER_SOCKET) return resolve(env.BERTH_HELPER_SOCKET);
  return process.platform === 'darwin' ? '/var/run/berth/helper.sock' : '/run/berth/helper.sock';
}
