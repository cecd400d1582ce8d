/** The control socket's own defences: a private folder, and nothing read or run after a bad message. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmod, mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlServer } from '../../app/control/server.js';
import { closed, onCleanup, startEngine, tempDir } from '../support/index.js';

test('refuses a control folder that others can enter or write to', async (t) => {
  const { engine } = await startEngine(t);
  const dir = await tempDir(t);
  const shared = join(dir, 'shared');
  await mkdir(shared);
  await chmod(shared, 0o777); // as if another user had made it first
  await assert.rejects(ControlServer.open(join(shared, 'control.sock'), engine), (err: Error) => {
    assert.match(err.message, /shared must be a folder of this user with no access for others \(mode 0700\)/);
    assert.match(err.message, /mode 777/);
    return true;
  });
});

test('after a bad message nothing more is read or run, and the connection closes', async (t) => {
  const { engine, dir } = await startEngine(t);
  const control = await ControlServer.open(join(dir, 'run', 'control.sock'), engine);
  onCleanup(t, () => control.close());
  const client = net.connect({ path: control.path, allowHalfOpen: true });
  await once(client, 'connect');
  let reply = '';
  client.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
  const add = { forward: { id: 'after-bad', listen: { port: 1 }, target: { unix: '/x' }, enabled: false } };
  const gone = closed(client);
  client.write('not json\n');
  client.write(`${JSON.stringify({ id: 1, command: 'add', request: add })}\n`);
  await gone;
  assert.match(reply, /"code":"EPROTO"/);
  assert.doesNotMatch(reply, /"id":1/);
  assert.deepEqual((await engine.call('status', {})).forwards, [], 'the request after the bad one never ran');
});

test('a message without end is cut off at the size cap instead of buffered', async (t) => {
  const { engine, dir } = await startEngine(t);
  const control = await ControlServer.open(join(dir, 'run', 'control.sock'), engine);
  onCleanup(t, () => control.close());
  const client = net.connect({ path: control.path, allowHalfOpen: true });
  client.on('error', () => undefined);
  await once(client, 'connect');
  let reply = '';
  client.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
  const gone = closed(client);
  const chunk = 'x'.repeat(64 * 1024);
  let sent = 0;
  // At most 16 MiB, and only while the server keeps reading.
  // The server closing on us (EPIPE, reset) is the expected end of this loop.
  const stopped = gone.then(() => undefined);
  while (sent < 16 * 1024 * 1024 && !client.destroyed && client.writable) {
    const drained = client.write(chunk);
    sent += chunk.length;
    if (!drained) await Promise.race([new Promise((resolve) => client.once('drain', resolve)), stopped]);
  }
  await gone;
  assert.match(reply, /a message is larger than 1048576 bytes/);
  assert.ok(sent < 16 * 1024 * 1024, `the server read all ${sent} bytes`);
});
