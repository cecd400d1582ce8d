/** What a newcomer sees before the first forward: what a forward is and how to add one. */

/** The empty table's explanation, with the same "Add forward" action as the header. */
export function EmptyState({ onAdd }: { onAdd: () => void }) {
  return (
    <div className="empty">
      <h2 tabIndex={-1}>No forwards yet</h2>
      <p>
        A forward listens on a local port and passes every connection on to a target, such as a dev server on
        127.0.0.1:8080. It can also start the program that serves the target and keep it running.
      </p>
      <p>
        Choose <strong>Add forward</strong>, give it an ID, the port to listen on and the target, then{' '}
        <strong>Save</strong>. You can also use <code>berth add</code> in a terminal.
      </p>
      <button type="button" className="primary" onClick={onAdd}>
        Add your first forward
      </button>
    </div>
  );
}
