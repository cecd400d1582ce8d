/**
 * The harness of the seeded chaos runs (test/native/tcp-stress.test.ts, udp-stress.test.ts): one seed for every choice, a PRNG,
 * timers that stop by themselves, failures caught in callbacks, and the fd baseline every run must come back to.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import { fds } from './fds.js';
import { until } from './index.js';
import { type BerthNative, loadBerthNative } from '../../app/native/addon.js';

export const SEED = process.env.BERTH_STRESS_SEED
  ? Number(process.env.BERTH_STRESS_SEED) >>> 0
  : Math.floor(Math.random() * 2 ** 32);

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rand = () => number;
/** An integer in [lo, hi]. */
export const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
export const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** `size` bytes of the PRNG's output. */
export function noise(rand: Rand, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) out.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  return out;
}

export const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The run's timers and the failures seen in callbacks (thrown there, they would crash the file rather than fail
 * the test). `at` starts something new and is skipped past the deadline; `later` winds something down and always
 * runs. `stop` clears whatever has not fired.
 */
export class Chaos {
  readonly failures: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  constructor(readonly deadline: number) {}

  guard(what: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.failures.push(`${what}: ${(err as Error).stack ?? String(err)}`);
    }
  }

  at(ms: number, what: string, run: () => void): void {
    this.later(ms, what, () => {
      if (Date.now() < this.deadline) run();
    });
  }

  later(ms: number, what: string, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.guard(what, run);
    }, ms);
    this.timers.add(timer);
  }

  every(ms: number, what: string, run: () => void): void {
    const timer = setInterval(() => this.guard(what, run), ms);
    this.timers.add(timer);
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/** Runs `body` with the test's own PRNG; any failure names the seed that replays it. */
export async function seeded(
  t: TestContext,
  salt: number,
  body: (rand: Rand) => Promise<void>,
): Promise<void> {
  t.diagnostic(`seed ${SEED} (BERTH_STRESS_SEED=${SEED} replays this plan)`);
  try {
    await body(prng(SEED ^ salt));
  } catch (err) {
    if (err instanceof Error) {
      err.message += `\n    seed ${SEED}: rerun with BERTH_STRESS_SEED=${SEED}`;
    }
    throw err;
  }
}

/**
 * Waits until this process holds no fd that it did not hold at `baseline` (an fd number now open on another
 * file counts as new), naming what is still open if that does not happen. An fd of the baseline that closed
 * meanwhile is no leak: Node 22 closes some of its own lazily.
 */
export async function fdsBackTo(baseline: Map<string, string>): Promise<void> {
  const extra = () => [...fds()].filter(([fd, link]) => baseline.get(fd) !== link);
  try {
    await until(() => extra().length === 0, 'no fd beyond the baseline', 5000);
  } catch {
    assert.fail(`fds left open (baseline ${baseline.size}): ${JSON.stringify(extra())}`);
  }
}

/** The addon, and why each relay's runs skip where it cannot be had (never a silent pass). */
export function loadRelays(): { native?: BerthNative; tcpSkip: string | false; udpSkip: string | false } {
  if (process.platform !== 'linux') {
    const skip = 'the native relays are Linux only';
    return { tcpSkip: skip, udpSkip: skip };
  }
  let native: BerthNative;
  try {
    native = loadBerthNative('berth_native');
  } catch (err) {
    const skip = `the addon is not built (npm run build:native): ${(err as Error).message}`;
    return { tcpSkip: skip, udpSkip: skip };
  }
  return {
    native,
    tcpSkip: native.tcpRelayAvailable ? false : 'this build of the addon has no TCP relay',
    udpSkip: native.udpRelayAvailable ? false : 'this build of the addon has no UDP relay',
  };
}
