/**
 * The record of running backends (pid and start time), kept in Berth's runtime folder so that a Berth killed
 * with SIGKILL leaves enough behind for the next start to stop what it left: each backend's process group,
 * and the daemons it forked into sessions of their own (by their pid, start time and session, and by the
 * marker in their environment: ./tree.ts). The start time makes sure a pid the system has since given to
 * another process is never signalled.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { SpawnRecord } from './backend.js';
import { processGroup, startTime } from './proc.js';
import { findLeftBehind, stopProcesses } from './tree.js';

const RecordsSchema = z.array(
  z.object({
    forwardId: z.string(),
    pid: z.number().int().positive(),
    startTime: z.string(),
    command: z.array(z.string()),
    // Optional: a Berth from before daemons were followed wrote neither.
    marker: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional(),
    daemons: z
      .array(z.object({ pid: z.number().int().positive(), startTime: z.string(), sid: z.number().int() }))
      .optional(),
  }),
);

/** Owns the records file; writes are serialized and atomic. */
export class SpawnRecords {
  private readonly live = new Map<string, SpawnRecord>();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly graceMs: number,
  ) {}

  /**
   * Stops every backend process group, and every daemon of a backend, that a previous Berth left running;
   * returns what it did, in sentences.
   */
  async reapOrphans(): Promise<string[]> {
    let records: SpawnRecord[];
    try {
      // Only a record this user wrote is believed: signalling process groups on someone else's word is not.
      const info = await lstat(this.path);
      if (!info.isFile() || info.uid !== process.getuid?.()) return [];
      records = RecordsSchema.parse(JSON.parse(await readFile(this.path, 'utf8')));
    } catch {
      return []; // none, or unreadable: nothing can be proven to be ours
    }
    const notices: string[] = [];
    for (const record of records) {
      // Found before the group is stopped: the leader's session proves itself only while the leader runs.
      const daemons = await findLeftBehind({
        marker: record.marker,
        leader: record,
        daemons: record.daemons ?? [],
      });
      const leaderStart = await startTime(record.pid);
      // A live leader with another start time is an unrelated process that got the pid: leave it alone.
      // A dead leader cannot have its pid reused while its group has members (Linux keeps the id in use).
      const group =
        leaderStart === undefined || leaderStart === record.startTime ? await processGroup(record.pid) : [];
      if (group.length > 0) {
        await stopGroup(record.pid, this.graceMs);
        notices.push(
          `Stopped the backend of "${record.forwardId}" (pid ${record.pid}, ${JSON.stringify(record.command)}) that a previous Berth left running when it was killed.`,
        );
      }
      const outside = daemons.filter((pid) => !group.includes(pid));
      if (outside.length > 0) {
        await stopProcesses(outside, this.graceMs);
        notices.push(
          `Stopped what the backend of "${record.forwardId}" had left running in the background (${outside.map((pid) => `pid ${pid}`).join(', ')}) when a previous Berth was killed.`,
        );
      }
    }
    await this.save();
    return notices;
  }

  /** Records (or, with undefined, forgets) the live process of a forward's backend. */
  set(forwardId: string, record: SpawnRecord | undefined): Promise<void> {
    if (record) this.live.set(forwardId, record);
    else this.live.delete(forwardId);
    return this.save();
  }

  /** Resolves when every write asked for so far is on disk (or has failed). */
  idle(): Promise<void> {
    return this.writing;
  }

  private save(): Promise<void> {
    const next = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      const temp = `${this.path}.tmp-${randomBytes(4).toString('hex')}`;
      await writeFile(temp, JSON.stringify([...this.live.values()]), { mode: 0o600 });
      await rename(temp, this.path);
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}

/** SIGTERM to the group, SIGKILL to whatever is left after the grace period. */
export async function stopGroup(pgid: number, graceMs: number): Promise<void> {
  signal(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await processGroup(pgid)).length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  signal(pgid, 'SIGKILL');
}

function signal(pgid: number, name: NodeJS.Signals): void {
  try {
    process.kill(-pgid, name);
  } catch {
    // Already gone.
  }
}
