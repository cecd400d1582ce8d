/**
 * Who holds a busy port: on Linux, the listening socket's inode from /proc/net/{tcp,tcp6,udp,udp6} (readable by
 * everyone, with the owner's uid), then the process whose /proc/PID/fd links to that inode (readable only for
 * one's own processes, or by root). Elsewhere Berth cannot see the holder and says so.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { TREE_MARKER } from '../backend/tree.js';
import { environValue, procAvailable } from '../backend/proc.js';

/** The process that holds a port, as far as the platform lets Berth see it (docs/api.md, `error.holder`). */
export interface PortHolder {
  /** Null when the socket belongs to a process Berth may not look into (another user's). */
  pid: number | null;
  command: string | null;
  user: string;
  /** The BERTH_BACKEND_TREE marker in its environment: a backend some Berth started. */
  marker?: string;
}

/** Why a holder could not be named, for messages: the platform, or permissions. */
export const HOLDER_UNSEEN_PLATFORM = `Berth cannot see which process holds a port on ${process.platform}`;

/** Finds the holder of `protocol` port `port` on `address` (or on a wildcard address), or null. */
export async function findPortHolder(
  protocol: 'tcp' | 'udp',
  address: string,
  port: number,
): Promise<PortHolder | null> {
  if (!procAvailable) return null;
  const sockets = await socketsOnPort(protocol, port);
  if (sockets.length === 0) return null;
  // The same address first, then a wildcard one (0.0.0.0 or ::, which take every address).
  const wanted = normalise(address);
  sockets.sort((a, b) => rank(a.address, wanted) - rank(b.address, wanted));
  const socket = sockets[0] as ProcSocket;
  const user = await userName(socket.uid);
  const pid = socket.inode !== '0' ? await pidOfInode(socket.inode) : undefined;
  if (pid === undefined) return { pid: null, command: null, user };
  const marker = await environValue(pid, TREE_MARKER);
  return { pid, command: await commandOf(pid), user, ...(marker !== undefined ? { marker } : {}) };
}

/** "held by python3 -m http.server (pid 4242, user me)" or what Berth can say without the pid. */
export function describeHolder(holder: PortHolder | null): string {
  if (!holder) return HOLDER_UNSEEN_PLATFORM;
  if (holder.pid === null) {
    return `it is held by a process of user ${holder.user}, which Berth may not look into`;
  }
  return `it is held by ${holder.command ?? 'a process'} (pid ${holder.pid}, user ${holder.user})`;
}

interface ProcSocket {
  address: string;
  uid: number;
  inode: string;
}

async function socketsOnPort(protocol: 'tcp' | 'udp', port: number): Promise<ProcSocket[]> {
  // A listening TCP socket is in state 0A (LISTEN); a bound UDP socket in 07 (CLOSE, i.e. not connected).
  const state = protocol === 'tcp' ? '0A' : '07';
  const found: ProcSocket[] = [];
  for (const [file, v6] of [
    [protocol, false],
    [`${protocol}6`, true],
  ] as const) {
    const text = await readFile(`/proc/net/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, , st, , , , uid, , inode] = [f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]];
      if (!local || st !== state || uid === undefined || inode === undefined) continue;
      const [hexAddress, hexPort] = local.split(':');
      if (!hexAddress || Number.parseInt(hexPort ?? '', 16) !== port) continue;
      found.push({ address: v6 ? ipv6(hexAddress) : ipv4(hexAddress), uid: Number(uid), inode });
    }
  }
  return found;
}

// /proc/net prints each 32-bit word of the address in host order (little-endian on the machines Berth runs on).
function words(hex: string): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const word = hex.slice(i, i + 8);
    out.push([6, 4, 2, 0].map((j) => Number.parseInt(word.slice(j, j + 2), 16)));
  }
  return out;
}

function ipv4(hex: string): string {
  return (words(hex)[0] ?? []).join('.');
}

function ipv6(hex: string): string {
  const bytes = words(hex).flat();
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address to whoever compares it.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return bytes.slice(12).join('.');
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return normalise(groups.join(':'));
}

function normalise(address: string): string {
  if (!address.includes(':')) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

function rank(address: string, wanted: string): number {
  if (address === wanted) return 0;
  if (address === '0.0.0.0' || address === '::') return 1;
  return 2;
}

async function pidOfInode(inode: string): Promise<number | undefined> {
  const link = `socket:[${inode}]`;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === link) return Number(pid);
    }
  }
  return undefined;
}

async function commandOf(pid: number): Promise<string | null> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const command = cmdline.split('\0').filter(Boolean).join(' ');
  if (command) return command.length > 200 ? `${command.slice(0, 199)}…` : command;
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return comm.trim() || null;
}

async function userName(uid: number): Promise<string> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && Number(id) === uid) return name;
  }
  return `uid ${uid}`;
}
