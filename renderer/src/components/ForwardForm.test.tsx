import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../app/api/errors.js';
import { forwardStatus } from '../../test/fake-transport.js';
import { renderApp } from '../../test/render.js';

async function openForm() {
  const user = userEvent.setup();
  const rendered = renderApp([]);
  await user.click(screen.getByRole('button', { name: 'Add forward' }));
  return { user, rendered };
}

const field = (label: string) => screen.getByLabelText(label, { exact: true });

describe('the add/edit form', () => {
  it('has the fields and buttons docs/ui.md names, and focuses the first field', async () => {
    await openForm();
    for (const label of [
      'ID',
      'Name',
      'Protocol',
      'Listen address',
      'Listen port',
      'Target host',
      'Target port',
      'Backend command',
    ])
      expect(field(label)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Save' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Cancel' })).toBeInTheDocument();
    expect(field('ID')).toHaveFocus();
  });

  it('shows each problem next to its field, checked with the engine schema, and sends nothing', async () => {
    const { user, rendered } = await openForm();
    await user.type(field('ID'), 'Bad ID');
    await user.type(field('Listen port'), '70000');
    await user.clear(field('Target host'));
    await user.type(field('Target host'), 'not a host!');
    await user.type(field('Target port'), 'eighty');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(field('ID')).toHaveAccessibleDescription(/ID must be 1-40 lowercase letters/);
    expect(field('Listen port')).toHaveAccessibleDescription(/Listen port must be 1-65535\./);
    expect(field('Target host')).toHaveAccessibleDescription(
      /Target host must be an IP address or a host name/,
    );
    expect(field('Target port')).toHaveAccessibleDescription(/Target port must be a number/);
    expect(field('Listen port')).toHaveAttribute('aria-invalid', 'true');
    expect(field('Name')).not.toHaveAttribute('aria-invalid');
    expect(field('ID')).toHaveFocus();
    expect(rendered.transport.calls).toEqual([]);
  });

  it('shows how the backend command splits into argv, and refuses an unclosed quote', async () => {
    const { user } = await openForm();
    await user.type(field('Backend command'), `python3 -m http.server "8080" --bind 127.0.0.1`);
    const argv = screen.getByRole('list', { name: 'Backend argv' });
    expect([...argv.querySelectorAll('li')].map((li) => li.textContent)).toEqual([
      'python3',
      '-m',
      'http.server',
      '8080',
      '--bind',
      '127.0.0.1',
    ]);
    await user.type(field('Backend command'), ` "oops`);
    expect(screen.getByText(/has an unclosed double quote/)).toBeInTheDocument();
  });

  it('sends a valid forward with add, backend as argv, and returns to the table', async () => {
    const { user, rendered } = await openForm();
    rendered.transport.handlers.add = () => forwardStatus();
    await user.type(field('ID'), 'web');
    await user.type(field('Name'), 'Dev web');
    await user.type(field('Listen port'), '8080');
    await user.type(field('Target port'), '3000');
    await user.type(field('Backend command'), `node server.js --name 'my app'`);
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(rendered.transport.calls).toEqual([
      {
        name: 'add',
        request: {
          forward: {
            id: 'web',
            name: 'Dev web',
            enabled: true,
            protocol: 'tcp',
            listen: { address: '127.0.0.1', port: 8080 },
            target: { host: '127.0.0.1', port: 3000 },
            backend: { command: ['node', 'server.js', '--name', 'my app'], restart: 'on-failure' },
          },
        },
      },
    ]);
    expect(await screen.findByRole('heading', { name: 'No forwards yet' })).toBeInTheDocument();
  });

  it("places the engine's problems (forward.listen.port, forward.listen) next to the fields", async () => {
    const { user, rendered } = await openForm();
    rendered.transport.handlers.add = () => {
      throw new ApiError(
        'EINVAL',
        'The forward cannot be saved: forward.listen: 127.0.0.1:8080/tcp is already used by forwards[0]',
        [{ path: 'forward.listen', message: '127.0.0.1:8080/tcp is already used by forwards[0]' }],
      );
    };
    await user.type(field('ID'), 'web2');
    await user.type(field('Listen port'), '8080');
    await user.type(field('Target port'), '3000');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('127.0.0.1:8080/tcp is already used by forwards[0].')).toBeInTheDocument();
    expect(field('Listen port')).toHaveAccessibleDescription(/already used/);
    expect(field('Listen port')).toHaveFocus();
  });

  it('puts a duplicate id next to ID, and any other failure above the form', async () => {
    const { user, rendered } = await openForm();
    rendered.transport.handlers.add = () => {
      throw new ApiError('EEXIST', 'A forward with id "web" already exists. Choose another id or edit it.');
    };
    await user.type(field('ID'), 'web');
    await user.type(field('Listen port'), '8080');
    await user.type(field('Target port'), '3000');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(field('ID')).toHaveAccessibleDescription(/already exists. Choose another id/);
    rendered.transport.handlers.add = () => {
      throw new ApiError('EREADONLY', 'The config is read-only here: update Berth to change forwards.');
    };
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('read-only here: update Berth');
  });

  it('edits an existing forward: loads it with get, keeps the id and backend settings, sends update', async () => {
    const user = userEvent.setup();
    const rendered = renderApp([forwardStatus({ name: 'Dev web' })]);
    rendered.transport.handlers.get = () => ({
      id: 'web',
      name: 'Dev web',
      enabled: true,
      protocol: 'tcp',
      listen: { address: '127.0.0.1', port: 8080 },
      target: { host: '127.0.0.1', port: 3000 },
      backend: { command: ['python3', '-m', 'http.server', 'a b'], cwd: '/srv', restart: 'always' },
    });
    rendered.transport.handlers.update = () => forwardStatus();
    await user.click(screen.getByRole('button', { name: 'Dev web' }));
    await user.click(screen.getByRole('button', { name: 'Edit' }));
    expect(await screen.findByRole('heading', { name: 'Edit Dev web' })).toBeInTheDocument();
    expect(field('ID')).toBeDisabled();
    expect(field('Backend command')).toHaveValue(`python3 -m http.server 'a b'`);
    await user.clear(field('Listen port'));
    await user.type(field('Listen port'), '8081');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(rendered.transport.calls.at(-1)).toEqual({
      name: 'update',
      request: {
        id: 'web',
        forward: {
          id: 'web',
          name: 'Dev web',
          enabled: true,
          protocol: 'tcp',
          listen: { address: '127.0.0.1', port: 8081 },
          target: { host: '127.0.0.1', port: 3000 },
          backend: { command: ['python3', '-m', 'http.server', 'a b'], cwd: '/srv', restart: 'always' },
        },
      },
    });
  });

  it('Escape cancels the form', async () => {
    const { user, rendered } = await openForm();
    await user.keyboard('{Escape}');
    expect(screen.getByRole('heading', { name: 'No forwards yet' })).toBeInTheDocument();
    expect(rendered.transport.calls).toEqual([]);
  });

  it('Cancel returns to the table without sending anything', async () => {
    const { user, rendered } = await openForm();
    await user.type(field('ID'), 'web');
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(screen.getByRole('heading', { name: 'No forwards yet' })).toBeInTheDocument();
    expect(rendered.transport.calls).toEqual([]);
  });
});
