/** A bounded ring of a backend's output lines, split by stream, with timestamps. */

/** One line a backend wrote. */
export interface LogLine {
  /** ISO time the line was complete. */
  time: string;
  stream: 'stdout' | 'stderr' | 'berth';
  text: string;
}

// A line longer than this is cut: a process that never writes a newline must not grow memory without bound.
const MAX_LINE_CHARS = 8192;

/** Keeps the last `capacity` lines; partial lines wait for their newline per stream. */
export class LogBuffer {
  private readonly lines: LogLine[] = [];
  private start = 0;
  private readonly partial = { stdout: '', stderr: '' };

  constructor(
    private readonly capacity: number,
    private readonly onLine: (line: LogLine) => void = () => undefined,
  ) {}

  /** Adds a chunk of a stream's output; complete lines are stored and reported. */
  write(stream: 'stdout' | 'stderr', chunk: string): void {
    let text = this.partial[stream] + chunk;
    let newline: number;
    while ((newline = text.indexOf('\n')) !== -1) {
      this.push(stream, text.slice(0, newline).replace(/\r$/, ''));
      text = text.slice(newline + 1);
    }
    if (text.length > MAX_LINE_CHARS) {
      this.push(stream, text.slice(0, MAX_LINE_CHARS));
      text = '';
    }
    this.partial[stream] = text;
  }

  /** Stores what is left of unterminated lines (the process exited). */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.push(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  /** A line from Berth itself about the backend (started, exited, restarting). */
  note(text: string): void {
    this.push('berth', text);
  }

  /** The last `limit` lines, oldest first. */
  tail(limit = this.capacity): LogLine[] {
    const all = [...this.lines.slice(this.start), ...this.lines.slice(0, this.start)];
    return all.slice(Math.max(0, all.length - limit));
  }

  private push(stream: LogLine['stream'], text: string): void {
    const line = { time: new Date().toISOString(), stream, text: text.slice(0, MAX_LINE_CHARS) };
    if (this.lines.length < this.capacity) this.lines.push(line);
    else {
      this.lines[this.start] = line;
      this.start = (this.start + 1) % this.capacity;
    }
    this.onLine(line);
  }
}
