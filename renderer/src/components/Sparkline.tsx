/** Throughput over the last half minute as a small line, with the current rate in words beside it. */
import { formatRate } from '../format.js';

const WIDTH = 80;
const HEIGHT = 20;

/** A sparkline of `samples` (bytes per second, oldest first). */
export function Sparkline({ samples }: { samples: readonly number[] }) {
  const now = samples.at(-1) ?? 0;
  const max = Math.max(...samples, 1);
  const step = samples.length > 1 ? WIDTH / (samples.length - 1) : WIDTH;
  const points = samples
    .map((value, i) => `${(i * step).toFixed(1)},${(HEIGHT - 1 - (value / max) * (HEIGHT - 2)).toFixed(1)}`)
    .join(' ');
  return (
    <span className="sparkline">
      <svg
        width={WIDTH}
        height={HEIGHT}
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        aria-hidden="true"
        focusable="false"
      >
        {samples.length > 0 && <polyline points={points} />}
      </svg>
      <span className="rate">{formatRate(now)}</span>
    </span>
  );
}
