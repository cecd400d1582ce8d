/**
 * A backend's process tree beyond its process group: what its processes forked into sessions of their own
 * (daemons that fork, call setsid and fork again). A process belongs to a backend's tree when it carries the
 * backend's marker in its environment (BERTH_BACKEND_TREE, a random value per backend), when it is in the
 * session of a process Berth knows by pid and start time (the leader, or a daemon found earlier), or when it
 * descends from one of those. With Berth a child subreaper (./subreaper.ts) every orphan of the tree becomes
 * Berth's child: daemons are found and recorded as they appear, and reaped when they exit. Without it, they
 * are found by scanning /proc when the backend stops and when the next Berth starts.
 *
 * An orphan may also exit before a scan has seen it run (its environment, gone with it, can no longer say
 * whose it was). Such a zombie is still reaped when it is in a session other than Berth's own: only
 * backends, spawned detached, start new sessions, and no process can join an existing one, so it came from a
 * backend. It is reaped only once it has stayed a zombie for a scan interval, never while it is a process
 * Berth spawned itself: whoever started a child waits for it at once (libuv on SIGCHLD).
 */
import { randomBytes } from 'node:crypto';
import {
  allPids,
  childrenOf,
  environValue,
  hasExited,
  procAvailable,
  procStat,
  type ProcStat,
} from './proc.js';
import { isSubreaper, reap } from './subreaper.js';

/** The environment variable that marks a backend's processes; each backend has its own value. */
export const TREE_MARKER = 'BERTH_BACKEND_TREE';

/** A process of a backend's tree outside its process group, as recorded: what tells it from a later owner of its pid. */
export interface DaemonRecord {
  pid: number;
  startTime: string;
  sid: number;
}

/** What is known of one tree: its marker, its leader (pid and start time) and the daemons found so far. */
export interface TreeIdentity {
  marker: string | undefined;
  leader: { pid: number; startTime: string } | undefined;
  daemons: readonly DaemonRecord[];
}

/** A process found to be of a tree, with the stat it was found by. */
interface Member {
  pid: number;
  stat: ProcStat;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Every backend process Berth spawned whose exit libuv has not reported, across all backends: libuv waits for
// these, so they are never reaped here.
const spawnedByBerth = new Set<number>();
// Zombie children of Berth not known to be any tree's, by "pid start": when each was first seen.
const strayZombies = new Map<string, number>();
let ownSession: number | undefined;

/** Follows one backend's processes outside its process group, and stops them with it. */
export class BackendTree {
  /** The marker's value in this backend's processes. */
  readonly marker = randomBytes(16).toString('hex');
  private readonly daemons = new Map<number, DaemonRecord>();
  // Processes Berth spawned whose exit libuv has not reported: libuv waits for them, so they are never reaped here.
  private readonly leaders = new Set<number>();
  private everSpawned = false;
  private timer: NodeJS.Timeout | undefined;
  private scanning = false;

  constructor(
    private readonly intervalMs: number,
    /** The daemons found changed: the record of the backend is to be written again. */
    private readonly onChange: () => void,
  ) {}

  /** The variables every process of this backend starts with. */
  get env(): Record<string, string> {
    return { [TREE_MARKER]: this.marker };
  }

  /** The daemons found and still running. */
  get known(): DaemonRecord[] {
    return [...this.daemons.values()];
  }

  /** Berth has just spawned `pid` as this backend's process (before anything is awaited). */
  spawned(pid: number): void {
    this.leaders.add(pid);
    this.everSpawned = true;
    spawnedByBerth.add(pid);
    if (isSubreaper() && this.timer === undefined) {
      this.timer = setInterval(() => void this.scan(), this.intervalMs);
    }
  }

  /** libuv has reaped `pid`, a process this backend spawned. */
  exited(pid: number): void {
    this.leaders.delete(pid);
    spawnedByBerth.delete(pid);
    if (this.leaders.size === 0 && this.daemons.size === 0) this.idle();
  }

  /**
   * Looks once among Berth's children for the tree's orphans: records the new ones and reaps the exited ones.
   * Runs every `intervalMs` while the tree has a process, when Berth is a subreaper.
   */
  async scan(): Promise<void> {
    if (!procAvailable || this.scanning) return;
    this.scanning = true;
    try {
      let changed = false;
      const sessions = await this.sessions();
      for (const pid of await childrenOf(process.pid)) {
        if (this.leaders.has(pid)) continue;
        const stat = await procStat(pid);
        if (!stat || !(await this.owns(pid, stat, sessions))) continue;
        if (hasExited(stat)) {
          reap(pid);
          changed = this.daemons.delete(pid) || changed;
        } else if (this.daemons.get(pid)?.startTime !== stat.startTime) {
          this.daemons.set(pid, { pid, startTime: stat.startTime, sid: stat.sid });
          changed = true;
        }
      }
      // A daemon that is gone, or whose pid another process has by now, is forgotten.
      for (const daemon of this.daemons.values()) {
        const stat = await procStat(daemon.pid);
        if (!stat || stat.startTime !== daemon.startTime || hasExited(stat)) {
          this.daemons.delete(daemon.pid);
          changed = true;
        }
      }
      if (changed) this.onChange();
      await reapStrays(this.intervalMs);
      if (this.leaders.size === 0 && this.daemons.size === 0) this.idle();
    } finally {
      this.scanning = false;
    }
  }

  /**
   * SIGTERM to every process of the tree but the leader (the backend signals its group), SIGKILL to what is
   * left after `graceMs`; resolves when they are gone. `leader` is the running leader's pid, if any.
   */
  async stop(leader: number | undefined, graceMs: number): Promise<void> {
    this.idle();
    if (!procAvailable || !this.everSpawned) return;
    const roots = leader !== undefined ? [leader] : [];
    const find = async () => {
      const sessions = await this.sessions();
      const members = isSubreaper()
        ? await this.adopted(sessions)
        : await scanProcesses((pid, stat) => this.owns(pid, stat, sessions));
      return descendantsToo([...roots, ...members.map((m) => m.pid)], members, leader);
    };
    await stopMembers(find, graceMs);
    this.daemons.clear();
    this.onChange();
  }

  private idle(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  // Berth's children that are this tree's (with a subreaper every orphan of the tree is one of them).
  private async adopted(sessions: Set<number>): Promise<Member[]> {
    const members: Member[] = [];
    for (const pid of await childrenOf(process.pid)) {
      if (this.leaders.has(pid)) continue;
      const stat = await procStat(pid);
      if (stat && (await this.owns(pid, stat, sessions))) members.push({ pid, stat });
    }
    return members;
  }

  // Sessions whose every process is the tree's: that of a leader libuv has not reaped (spawned detached, it
  // leads its own session, and its pid is its own until reaped) and those of the daemons still running. A
  // session id stays in use while any process is in it, so a live process known by pid and start time proves
  // the number has not been given to someone else.
  private async sessions(): Promise<Set<number>> {
    const sessions = new Set<number>();
    for (const pid of this.leaders) {
      const stat = await procStat(pid);
      if (stat) sessions.add(stat.sid);
    }
    for (const daemon of this.daemons.values()) {
      const stat = await procStat(daemon.pid);
      if (stat?.startTime === daemon.startTime) sessions.add(stat.sid);
    }
    return sessions;
  }

  private async owns(pid: number, stat: ProcStat, sessions: Set<number>): Promise<boolean> {
    if (pid === process.pid || this.leaders.has(pid)) return false;
    if (this.daemons.get(pid)?.startTime === stat.startTime || sessions.has(stat.sid)) return true;
    // A zombie's environment is gone; a live process's is what it was started with.
    return !hasExited(stat) && (await environValue(pid, TREE_MARKER)) === this.marker;
  }
}

// Reaps the zombie children of Berth in a session not Berth's own that have stayed zombies for `minAgeMs`
// (see the top of this file): orphans of some backend that exited before any scan saw them run.
async function reapStrays(minAgeMs: number): Promise<void> {
  ownSession ??= (await procStat(process.pid))?.sid;
  const now = Date.now();
  const present = new Set<string>();
  for (const pid of await childrenOf(process.pid)) {
    if (spawnedByBerth.has(pid)) continue;
    const stat = await procStat(pid);
    if (!stat || !hasExited(stat) || ownSession === undefined || stat.sid === ownSession) continue;
    const key = `${pid} ${stat.startTime}`;
    present.add(key);
    const first = strayZombies.get(key);
    if (first === undefined) strayZombies.set(key, now);
    else if (now - first >= minAgeMs && reap(pid)) present.delete(key);
  }
  for (const key of strayZombies.keys()) if (!present.has(key)) strayZombies.delete(key);
}

/**
 * Finds, anywhere in /proc, the processes of a tree that a previous Berth recorded before it was killed: those
 * with its marker, the recorded daemons that still have their start time, and the processes in the session of
 * one of those or of the leader (if it still has its start time). Linux only; empty elsewhere.
 */
export async function findLeftBehind(tree: TreeIdentity): Promise<number[]> {
  if (!procAvailable) return [];
  const sessions = new Set<number>();
  const verified = new Set<number>();
  for (const known of [...(tree.leader ? [tree.leader] : []), ...tree.daemons]) {
    const stat = await procStat(known.pid);
    if (stat?.startTime !== known.startTime || hasExited(stat)) continue;
    verified.add(known.pid);
    sessions.add(stat.sid);
  }
  const members = await scanProcesses(
    async (pid, stat) =>
      !hasExited(stat) &&
      (verified.has(pid) ||
        sessions.has(stat.sid) ||
        (tree.marker !== undefined && (await environValue(pid, TREE_MARKER)) === tree.marker)),
  );
  return members.map((m) => m.pid);
}

/** SIGTERM to `pids`, SIGKILL to what is left after `graceMs`; resolves when they are gone. */
export async function stopProcesses(pids: number[], graceMs: number): Promise<void> {
  const members: Member[] = [];
  for (const pid of pids) {
    const stat = await procStat(pid);
    if (stat && !hasExited(stat)) members.push({ pid, stat });
  }
  await stopMembers(() => Promise.resolve(members), graceMs);
}

// SIGTERM to what `find` finds, then waits up to `graceMs` for it to go; what is left then, and whatever
// `find` finds again (a process may fork as it stops), gets SIGKILL. Exited children of Berth are reaped.
async function stopMembers(find: () => Promise<Member[]>, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  let members = await find();
  await signal(members, 'SIGTERM');
  while (members.length > 0 && Date.now() < deadline) {
    await sleep(50);
    members = await stillRunning(members);
  }
  members = dedupe([...(await stillRunning(members)), ...(await stillRunning(await find()))]);
  await signal(members, 'SIGKILL');
  // SIGKILL cannot be caught; a process in uninterruptible sleep may take a moment.
  const killDeadline = Date.now() + 2000;
  while (members.length > 0 && Date.now() < killDeadline) {
    await sleep(20);
    members = await stillRunning(members);
  }
}

// Signals each member that is still the process it was found as (same start time).
async function signal(members: Member[], name: NodeJS.Signals): Promise<void> {
  for (const member of members) {
    const stat = await procStat(member.pid);
    if (stat?.startTime !== member.stat.startTime || hasExited(stat)) continue;
    try {
      process.kill(member.pid, name);
    } catch {
      // Gone meanwhile.
    }
  }
}

// The members still running; one that exited as Berth's child is reaped (it is the tree's, so not libuv's).
async function stillRunning(members: Member[]): Promise<Member[]> {
  const running: Member[] = [];
  for (const member of members) {
    const stat = await procStat(member.pid);
    if (stat?.startTime !== member.stat.startTime) continue;
    if (!hasExited(stat)) running.push(member);
    else if (stat.ppid === process.pid) reap(member.pid);
  }
  return running;
}

// `members` plus every descendant of `roots` (children of children, found through /proc), but not `leader`.
async function descendantsToo(
  roots: number[],
  members: Member[],
  leader: number | undefined,
): Promise<Member[]> {
  const seen = new Map(members.map((m) => [m.pid, m]));
  const queue = [...roots];
  const visited = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (visited.has(pid)) continue;
    visited.add(pid);
    for (const child of await childrenOf(pid)) {
      queue.push(child);
      if (seen.has(child) || child === leader) continue;
      const stat = await procStat(child);
      if (stat) seen.set(child, { pid: child, stat });
    }
  }
  return [...seen.values()];
}

function dedupe(members: Member[]): Member[] {
  return [...new Map(members.map((m) => [m.pid, m])).values()];
}

// Every process in /proc for which `match` is true.
async function scanProcesses(
  match: (pid: number, stat: ProcStat) => boolean | Promise<boolean>,
): Promise<Member[]> {
  const members: Member[] = [];
  for (const pid of await allPids()) {
    if (pid === process.pid) continue;
    const stat = await procStat(pid);
    if (stat && (await match(pid, stat))) members.push({ pid, stat });
  }
  return members;
}
