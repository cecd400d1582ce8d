/** Debian's load generators, used when installed: iperf3 for throughput, wrk for connection rate. */
import { run, which } from './procs.js';
import { sleep } from './stats.js';

/** TCP throughput in bit/s with iperf3 (client sends), `streams` parallel streams for `seconds` (whole). */
export async function iperf3Throughput(port: number, streams: number, seconds: number): Promise<number> {
  const iperf3 = which('iperf3')!;
  const args = ['-c', '127.0.0.1', '-p', String(port), '-P', String(streams), '-t', String(seconds), '-J'];
  let lastError: unknown;
  // The server runs one test at a time and may still be closing the previous one: a few bounded retries.
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      const out = await run(iperf3, args, (seconds + 10) * 1000);
      const report = JSON.parse(out) as {
        end?: { sum_received?: { bits_per_second?: number } };
        error?: string;
      };
      if (report.error) throw new Error(report.error);
      const bps = report.end?.sum_received?.bits_per_second;
      if (bps === undefined) throw new Error('iperf3 printed no sum_received');
      return bps;
    } catch (err) {
      lastError = err;
      await sleep(300);
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** New connections per second with wrk: one request per connection (`Connection: close`). */
export async function wrkConnections(
  port: number,
  concurrency: number,
  seconds: number,
): Promise<{ perSecond: number; errors: number }> {
  const wrk = which('wrk')!;
  const out = await run(
    wrk,
    ['-t1', `-c${concurrency}`, `-d${seconds}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`],
    (seconds + 10) * 1000,
  );
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rate?.[1]) throw new Error(`wrk printed no rate: ${out.slice(0, 300)}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sum = errors ? errors.slice(1).reduce((total, n) => total + Number(n), 0) : 0;
  return { perSecond: Number(rate[1]), errors: sum };
}
