/**
 * What to tell a user when the packaged berth-helper service (docs/install.md) is installed but this user
 * cannot use it yet: not in the group `berth`, not on the allow-list, or the socket unit not running.
 */
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';

/** The socket the packaged service listens on. */
export const INSTALLED_SOCKET = '/run/berth/helper.sock';

/** The packaged helper's situation, read from the filesystem under `root` (tests pass a temporary root). */
export interface InstalledHelperFacts {
  root?: string;
  user?: string;
}

function installed(socketPath: string, root: string): boolean {
  return (
    process.platform === 'linux' &&
    socketPath === INSTALLED_SOCKET &&
    existsSync(join(root, 'usr/libexec/berth/berth-helper-setup'))
  );
}

/** For a user kept out by the socket's group or the allow-list: what to run. Undefined if not packaged. */
export function installedHelperAccessHint(
  socketPath: string,
  facts: InstalledHelperFacts = {},
): string | undefined {
  const root = facts.root ?? '/';
  if (!installed(socketPath, root)) return undefined;
  const user = facts.user ?? userInfo().username;
  let groupLine: string | undefined;
  try {
    groupLine = readFileSync(join(root, 'etc/group'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('berth:'));
  } catch {
    groupLine = undefined;
  }
  const member = groupLine?.split(':')[3]?.split(',').includes(user) ?? false;
  return member
    ? `This user (${user}) is in the group "berth", which takes effect at the next login: log out and back in, or run \`newgrp berth\` in a terminal.`
    : `This user (${user}) may not use berth-helper yet. Run \`sudo /usr/libexec/berth/berth-helper-setup allow ${user}\`, then log out and back in (or run \`newgrp berth\`).`;
}

/** For a packaged helper whose socket does not answer: how to start it. Undefined if not packaged. */
export function installedHelperStartHint(
  socketPath: string,
  facts: InstalledHelperFacts = {},
): string | undefined {
  const root = facts.root ?? '/';
  if (!installed(socketPath, root)) return undefined;
  return 'berth-helper is installed but its socket is not running: run `sudo systemctl enable --now berth-helper.socket`.';
}
