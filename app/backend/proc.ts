/**
 * What Linux's /proc tells about processes and sockets: start times (so a recycled pid is never mistaken
 * for a backend), sessions, environments, process trees, and which listening sockets a process holds (the
 * fd-hygiene check).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** True where /proc can answer these questions. */
export const procAvailable = process.platform === 'linux';

/** The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined if gone. */
export async function startTime(pid: number): Promise<string | undefined> {
  return (await procStat(pid))?.startTime;
}

/** What /proc/PID/stat says about a process: enough to know it again (start time) and whose it is. */
export interface ProcStat {
  /** R, S, D, Z (a zombie: exited, not yet waited for), ... */
  state: string;
  ppid: number;
  pgid: number;
  /** Its session: the pid of the process that called setsid(2). */
  sid: number;
  startTime: string;
}

/** The process's /proc/PID/stat, or undefined if it is gone. */
export async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' cannot.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      state: f[0] ?? '',
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      sid: Number(f[3]),
      startTime: f[19] ?? '',
    };
  } catch {
    return undefined;
  }
}

/** True for a process that has exited (a zombie, or on its way to being one). */
export const hasExited = (stat: ProcStat): boolean => stat.state === 'Z' || stat.state === 'X';

/** One variable of the process's environment as it was at exec, or undefined (gone, or not ours to read). */
export async function environValue(pid: number, name: string): Promise<string | undefined> {
  const environ = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
  const prefix = `${name}=`;
  for (const entry of environ.split('\0')) if (entry.startsWith(prefix)) return entry.slice(prefix.length);
  return undefined;
}

/** Every process id in /proc. */
export async function allPids(): Promise<number[]> {
  const names = await readdir('/proc').catch(() => [] as string[]);
  return names.filter((name) => /^\d+$/.test(name)).map(Number);
}

/** The pid and every descendant found through /proc/PID/task/TID/children, plus its process group. */
export async function processTree(pid: number): Promise<number[]> {
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.pop() as number;
    if (seen.has(next)) continue;
    seen.add(next);
    for (const child of await childrenOf(next)) queue.push(child);
  }
  for (const member of await processGroup(pid)) seen.add(member);
  return [...seen];
}

/** Every live process whose process group id is `pgid` (zombies, already dead, are not counted). */
export async function processGroup(pgid: number): Promise<number[]> {
  const members: number[] = [];
  for (const pid of await allPids()) {
    const stat = await procStat(pid); // undefined: exited while we looked
    if (stat && stat.pgid === pgid && !hasExited(stat)) members.push(pid);
  }
  return members;
}

/** The process's children, from every one of its threads (a child's parent is the thread that forked it). */
export async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tasks) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const child of text.split(' ')) if (child.trim() !== '') children.push(Number(child));
  }
  return children;
}

/** Socket inodes held open by a process ("socket:[123]" links in /proc/PID/fd). */
export async function socketInodes(pid: number | 'self'): Promise<Set<string>> {
  const inodes = new Set<string>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match?.[1]) inodes.add(match[1]);
  }
  return inodes;
}

/**
 * Inodes of every listening socket in this network namespace: TCP in LISTEN, bound UDP sockets, and Unix
 * sockets that accept connections. Intersected with a process's own sockets, this says which of them listen.
 */
export async function listeningInodes(): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    for (const row of await rows(`/proc/net/${file}`)) if (row[3] === '0A' && row[9]) inodes.add(row[9]);
  }
  for (const file of ['udp', 'udp6']) {
    for (const row of await rows(`/proc/net/${file}`)) if (row[9] && row[9] !== '0') inodes.add(row[9]);
  }
  // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 is __SO_ACCEPTCON.
  for (const row of await rows('/proc/net/unix')) {
    if (row[3] && (parseInt(row[3], 16) & 0x10000) !== 0 && row[6]) inodes.add(row[6]);
  }
  return inodes;
}

async function rows(path: string): Promise<string[][]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((row) => row.length > 3);
}

/** Whether any process of `pid`'s tree holds one of `ours` (Berth's listening sockets). */
export async function fdCheck(pid: number, ours: Set<string>): Promise<'clean' | 'leak' | 'unknown'> {
  if (!procAvailable) return 'unknown';
  for (const member of await processTree(pid)) {
    for (const inode of await socketInodes(member)) if (ours.has(inode)) return 'leak';
  }
  return 'clean';
}

/** The listening sockets this process holds: what no backend may inherit. */
export async function ownListeningInodes(): Promise<Set<string>> {
  const [own, listening] = await Promise.all([socketInodes('self'), listeningInodes()]);
  return new Set([...own].filter((inode) => listening.has(inode)));
}
