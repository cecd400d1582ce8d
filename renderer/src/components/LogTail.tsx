/** The last lines a backend wrote, as a live log region. */

/** The tail of a backend's output; `lines` is undefined while the API offers no log feed. */
export function LogTail({ lines }: { lines: readonly string[] | undefined }) {
  if (!lines || lines.length === 0) {
    return <p className="muted">No output from the backend yet.</p>;
  }
  return (
    <pre className="log" role="log" aria-label="Backend log" tabIndex={0}>
      {lines.join('\n')}
    </pre>
  );
}
