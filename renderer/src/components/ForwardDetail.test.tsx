import { act, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { forwardStatus } from '../../test/fake-transport.js';
import { push, renderApp } from '../../test/render.js';

const value = (term: string) => screen.getByText(term, { selector: 'dt' }).nextElementSibling;

async function openDetail(forward = forwardStatus()) {
  const user = userEvent.setup();
  const rendered = renderApp([forward]);
  await user.click(screen.getByRole('button', { name: forward.name ?? forward.id }));
  return { user, rendered };
}

describe('the detail view', () => {
  it('shows counters, how the port was acquired and the last error', async () => {
    await openDetail(
      forwardStatus({
        name: 'Dev web',
        via: 'helper',
        connections: { active: 2, total: 1234 },
        bytes: { toTarget: 2048, fromTarget: 1_500_000 },
        errors: 3,
        lastError: {
          code: 'ECONNREFUSED',
          message: 'The target 127.0.0.1:3000 refused the connection. Is it running?',
        },
      }),
    );
    expect(screen.getByRole('heading', { name: 'Dev web' })).toBeInTheDocument();
    expect(value('Acquired')).toHaveTextContent('helper');
    expect(value('Connections')).toHaveTextContent('2 active, 1,234 total');
    expect(value('Bytes to target')).toHaveTextContent('2,048 (2.0 KB)');
    expect(value('Bytes from target')).toHaveTextContent('1,500,000 (1.4 MB)');
    expect(value('Errors')).toHaveTextContent('3');
    expect(value('Last error')).toHaveTextContent('refused the connection. Is it running?');
  });

  it('shows the backend: state word, pid, restarts, last exit, fd check, and its log tail', async () => {
    const { rendered } = await openDetail(
      forwardStatus({
        backend: {
          state: 'failed',
          pid: null,
          restarts: 5,
          exitCode: 3,
          signal: null,
          fdCheck: 'leak',
          reason: 'It exited 5 times in a minute.',
        },
      }),
    );
    expect(value('State')).toHaveTextContent('Failed');
    expect(value('PID')).toHaveTextContent('—');
    expect(value('Restarts')).toHaveTextContent('5');
    expect(value('Last exit')).toHaveTextContent('exit code 3');
    expect(value('Listening sockets')).toHaveTextContent(/^Leak: /);
    expect(value('Reason')).toHaveTextContent('It exited 5 times in a minute.');
    expect(screen.getByText('No output from the backend yet.')).toBeInTheDocument();
    act(() => rendered.store.appendLogs('web', ['Serving HTTP on 127.0.0.1 port 8080', 'Traceback: boom']));
    expect(screen.getByRole('log', { name: 'Backend log' })).toHaveTextContent('Traceback: boom');
    push(rendered, {
      type: 'forward',
      forward: forwardStatus({
        backend: {
          state: 'running',
          pid: 4242,
          restarts: 6,
          exitCode: null,
          signal: 'SIGKILL',
          fdCheck: 'clean',
        },
      }),
    });
    expect(value('State')).toHaveTextContent('Running');
    expect(value('PID')).toHaveTextContent('4242');
    expect(value('Last exit')).toHaveTextContent('signal SIGKILL');
  });

  it('loads the recent output when it opens and follows pushed log lines', async () => {
    const user = userEvent.setup();
    const forward = forwardStatus({
      backend: { state: 'running', pid: 7, restarts: 0, exitCode: null, signal: null, fdCheck: 'clean' },
    });
    const rendered = renderApp([forward]);
    rendered.transport.handlers.logs = () => ({
      id: 'web',
      lines: [{ time: '2026-11-29T15:27:11.317Z', stream: 'stdout', text: 'Serving HTTP on port 8080' }],
    });
    await user.click(screen.getByRole('button', { name: forward.name ?? forward.id }));
    expect(rendered.transport.logRequests).toEqual([{ id: 'web' }]);
    const log = await screen.findByRole('log', { name: 'Backend log' });
    expect(log).toHaveTextContent('15:27:11 stdout Serving HTTP on port 8080');
    push(rendered, {
      type: 'log',
      id: 'web',
      lines: [{ time: '2026-11-29T15:27:12.000Z', stream: 'stderr', text: 'GET / 200' }],
    });
    expect(log).toHaveTextContent('15:27:12 stderr GET / 200');
  });

  it('says there is no backend when the forward has none', async () => {
    await openDetail();
    expect(screen.getByText(/^No backend\./)).toBeInTheDocument();
    expect(screen.queryByRole('log')).not.toBeInTheDocument();
  });

  it('asks before deleting; Cancel keeps the forward, Delete removes it', async () => {
    const { user, rendered } = await openDetail();
    await user.click(screen.getByRole('button', { name: 'Delete…' }));
    const dialog = screen.getByRole('alertdialog', { name: 'Delete web?' });
    expect(dialog).toHaveAccessibleDescription(/frees the port and removes it from the config/);
    expect(screen.getByRole('button', { name: 'Cancel' })).toHaveFocus();
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument();
    expect(rendered.transport.calls).toEqual([]);
    rendered.transport.handlers.remove = () => ({ id: 'web' });
    await user.click(screen.getByRole('button', { name: 'Delete…' }));
    await user.click(screen.getByRole('button', { name: 'Delete' }));
    expect(rendered.transport.calls).toEqual([{ name: 'remove', request: { id: 'web' } }]);
  });

  it('goes back to the table when the forward is removed elsewhere', async () => {
    const { rendered } = await openDetail();
    push(rendered, { type: 'removed', id: 'web' });
    expect(await screen.findByRole('heading', { name: 'No forwards yet' })).toBeInTheDocument();
  });
});
