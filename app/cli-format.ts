/** How the CLI prints forwards for people (`berth status` without `--json`). */
import type { ForwardStatus } from './api/contract.js';
import { describeListen, describeTarget } from './config/schema.js';

/** A table of forwards with their state, followed by each forward's error as a sentence. */
export function formatStatusTable(forwards: readonly ForwardStatus[]): string {
  if (forwards.length === 0)
    return 'No forwards yet. Add one with: berth add ID --listen PORT --target HOST:PORT';
  const rows = forwards.map((f) => [
    f.id,
    f.state,
    f.health.state === 'off' ? '-' : f.health.state,
    f.via ?? '-',
    describeListen(f),
    describeTarget(f.target),
    `${f.connections.active}/${f.connections.total}`,
    `${formatBytes(f.bytes.toTarget)} / ${formatBytes(f.bytes.fromTarget)}`,
  ]);
  const header = ['ID', 'STATE', 'HEALTH', 'VIA', 'LISTEN', 'TARGET', 'CONN', 'SENT / RECEIVED'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  for (const f of forwards) {
    if (f.error) out.push(`${f.id}: ${f.error.code}: ${f.error.message}`);
    else if (f.health.state === 'unhealthy' || (f.health.state === 'unknown' && f.health.message))
      out.push(`${f.id}: ${f.health.state}: ${f.health.message ?? 'its check failed'}`);
    else if (f.lastError) out.push(`${f.id}: last error ${f.lastError.code}: ${f.lastError.message}`);
  }
  return out.join('\n');
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
