import { act, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../app/api/errors.js';
import { forwardStatus } from '../../test/fake-transport.js';
import { push, renderApp } from '../../test/render.js';

describe('the Forwards table', () => {
  it('tells a newcomer what to do when there are no forwards', async () => {
    renderApp([]);
    expect(await screen.findByRole('heading', { name: 'No forwards yet' })).toBeInTheDocument();
    expect(screen.getByText(/A forward listens on a local port/)).toBeInTheDocument();
    expect(screen.queryByRole('table', { name: 'Forwards' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Add forward' })).toBeEnabled();
  });

  it('shows each forward with its state in words, addresses, via, connections and backend', () => {
    renderApp([
      forwardStatus({ id: 'web', name: 'Dev web', connections: { active: 3, total: 9 } }),
      forwardStatus({
        id: 'db',
        state: 'error',
        via: undefined,
        listen: { address: '::1', port: 5432 },
        target: { unix: '/run/pg.sock' },
        error: {
          code: 'EADDRINUSE',
          message: 'Port 5432 is in use by another program. Stop it or pick another port.',
        },
      }),
      forwardStatus({ id: 'dns', protocol: 'udp', state: 'stopped', enabled: false, via: undefined }),
      forwardStatus({
        id: 'api',
        state: 'starting',
        backend: { state: 'restarting', pid: null, restarts: 2, exitCode: 1, signal: null, fdCheck: 'clean' },
      }),
    ]);
    const table = screen.getByRole('table', { name: 'Forwards' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(4);
    const [web, db, dns, api] = rows as [HTMLElement, HTMLElement, HTMLElement, HTMLElement];
    expect(web).toHaveTextContent('Dev web');
    expect(web).toHaveTextContent('Listening');
    expect(web).toHaveTextContent('127.0.0.1:8080');
    expect(web).toHaveTextContent('127.0.0.1:3000');
    expect(web).toHaveTextContent('direct');
    expect(within(web).getByText('3')).toBeInTheDocument();
    expect(db).toHaveTextContent('Error');
    expect(db).toHaveTextContent('Port 5432 is in use by another program. Stop it or pick another port.');
    expect(db).toHaveTextContent('[::1]:5432');
    expect(db).toHaveTextContent('unix:/run/pg.sock');
    expect(dns).toHaveTextContent('Stopped');
    expect(dns).toHaveTextContent('UDP');
    expect(api).toHaveTextContent('Starting');
    expect(api).toHaveTextContent('Restarting');
  });

  it('says Healthy or Unhealthy in words, with the reason, and nothing where checks are off', () => {
    const checked = '2026-12-04T10:00:00.000Z';
    renderApp([
      forwardStatus({
        id: 'ok',
        health: { state: 'healthy', checkedAt: checked, failures: 0, message: null },
      }),
      forwardStatus({
        id: 'sick',
        health: {
          state: 'unhealthy',
          checkedAt: checked,
          failures: 3,
          message: 'nothing is listening on 127.0.0.1:3000',
        },
      }),
      forwardStatus({
        id: 'dns',
        protocol: 'udp',
        health: { state: 'off', checkedAt: null, failures: 0, message: null },
      }),
    ]);
    const rows = within(screen.getByRole('table', { name: 'Forwards' }))
      .getAllByRole('row')
      .slice(1);
    const [ok, sick, dns] = rows as [HTMLElement, HTMLElement, HTMLElement];
    expect(ok).toHaveTextContent('Healthy');
    expect(sick).toHaveTextContent('Unhealthy');
    expect(sick).toHaveTextContent('nothing is listening on 127.0.0.1:3000');
    expect(dns).not.toHaveTextContent(/Healthy|Unhealthy|Unknown/);
  });

  it('names the holder of a busy port, and offers to stop a backend an earlier Berth left', async () => {
    const user = userEvent.setup();
    const busy = (id: string, leftover: boolean) =>
      forwardStatus({
        id,
        state: 'error',
        via: undefined,
        error: {
          code: 'EADDRINUSE',
          message: '127.0.0.1:8080/tcp is already in use.',
          holder: {
            pid: 4242,
            command: '/usr/bin/python3 -m http.server',
            user: 'me',
            ...(leftover ? { leftover } : {}),
          },
          retrying: true,
        },
      });
    const rendered = renderApp([busy('web', true), busy('api', false)]);
    const rows = within(screen.getByRole('table', { name: 'Forwards' }))
      .getAllByRole('row')
      .slice(1);
    const [web, api] = rows as [HTMLElement, HTMLElement];
    expect(web).toHaveTextContent('held by python3, pid 4242');
    expect(api).toHaveTextContent('held by python3, pid 4242');
    expect(within(api).queryByRole('button', { name: /Stop the process/ })).not.toBeInTheDocument();
    await user.click(within(web).getByRole('button', { name: 'Stop the process holding the port of web' }));
    expect(rendered.transport.calls).toEqual([{ name: 'stopLeftover', request: { id: 'web' } }]);
  });

  it('has a switch named "Toggle ID" that sends disable or enable', async () => {
    const user = userEvent.setup();
    const rendered = renderApp([
      forwardStatus({ id: 'web' }),
      forwardStatus({ id: 'db', enabled: false, state: 'stopped' }),
    ]);
    const web = screen.getByRole('switch', { name: 'Toggle web' });
    expect(web).toHaveAttribute('aria-checked', 'true');
    expect(screen.getByRole('switch', { name: 'Toggle db' })).toHaveAttribute('aria-checked', 'false');
    await user.click(web);
    expect(rendered.transport.calls).toEqual([{ name: 'disable', request: { id: 'web' } }]);
    // The keyboard works too, and focus stays on the switch while the engine answers.
    screen.getByRole('switch', { name: 'Toggle db' }).focus();
    await user.keyboard(' ');
    expect(rendered.transport.calls.at(-1)).toEqual({ name: 'enable', request: { id: 'db' } });
    expect(screen.getByRole('switch', { name: 'Toggle db' })).toHaveFocus();
  });

  it('shows a failed toggle as a notice with the engine sentence', async () => {
    const user = userEvent.setup();
    const rendered = renderApp([forwardStatus()]);
    rendered.transport.handlers.disable = () => {
      throw new ApiError(
        'EREADONLY',
        'The config was written by a newer Berth: update Berth to change forwards.',
      );
    };
    await user.click(screen.getByRole('switch', { name: 'Toggle web' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('written by a newer Berth: update Berth');
  });

  it('follows pushed changes without polling', () => {
    const rendered = renderApp([forwardStatus()]);
    push(rendered, {
      type: 'forward',
      forward: forwardStatus({ state: 'stopped', enabled: false, via: undefined }),
    });
    expect(screen.getByRole('row', { name: /web/ })).toHaveTextContent('Stopped');
    expect(screen.getByText('web: Stopped')).toHaveAttribute('role', 'status');
    push(rendered, { type: 'forward', forward: forwardStatus({ id: 'new', state: 'starting' }) });
    expect(screen.getByRole('switch', { name: 'Toggle new' })).toBeInTheDocument();
    push(rendered, { type: 'removed', id: 'web' });
    expect(screen.queryByRole('switch', { name: 'Toggle web' })).not.toBeInTheDocument();
    expect(rendered.transport.calls).toEqual([]);
  });

  it('draws throughput from stats as a sparkline with the current rate in words', () => {
    const rendered = renderApp([forwardStatus()]);
    act(() => rendered.store.sample(1000));
    push(rendered, {
      type: 'stats',
      stats: [
        {
          id: 'web',
          connections: { active: 1, total: 1 },
          bytes: { toTarget: 1024, fromTarget: 1024 },
          errors: 0,
          lastError: null,
        },
      ],
    });
    act(() => rendered.store.sample(2000));
    const row = screen.getByRole('row', { name: /web/ });
    expect(row).toHaveTextContent('2.0 KB/s');
    expect(row.querySelector('polyline')).not.toBeNull();
  });
});
