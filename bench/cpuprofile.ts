/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, as `npm run bench -- --profile DIR` makes for Berth):
 * self time per function, top N, with file and line. Usage: cpuprofile FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) {
  process.stderr.write('usage: cpuprofile FILE.cpuprofile [N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  const frame = byId.get(id)?.callFrame;
  const name = frame
    ? `${frame.functionName || '(anonymous)'} ${frame.url ? `${basename(frame.url)}:${frame.lineNumber + 1}` : ''}`
    : '?';
  self.set(name, (self.get(name) ?? 0) + delta);
  total += delta;
});
const idle = self.get('(idle) ') ?? 0;
process.stdout.write(
  `${basename(file)}: ${(total / 1e6).toFixed(2)} s sampled, busy ${(((total - idle) / total) * 100).toFixed(1)}%\n`,
);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  const busyShare = name === '(idle) ' ? '' : ` (${((us / (total - idle)) * 100).toFixed(1)}% of busy)`;
  process.stdout.write(`${(us / 1000).toFixed(0).padStart(7)} ms ${name}${busyShare}\n`);
}
