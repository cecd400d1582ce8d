/** The config store: validation with JSON paths, atomic saves, and never losing a user's file. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigSchema, type Config } from '../../app/config/schema.js';
import { ConfigError, ConfigStore, parseConfig } from '../../app/config/store.js';
import { onCleanup, startEngine, tempDir } from '../support/index.js';

const sample: Config = {
  version: 1,
  forwards: [
    {
      id: 'web',
      name: 'Dev web on :80',
      enabled: true,
      protocol: 'tcp',
      listen: { address: '127.0.0.1', port: 80 },
      target: { host: '127.0.0.1', port: 8080 },
      backend: {
        command: ['python3', '-m', 'http.server', '8080'],
        cwd: '/tmp',
        env: { PYTHONUNBUFFERED: '1' },
        restart: 'on-failure',
      },
    },
    {
      id: 'dns',
      enabled: false,
      protocol: 'udp',
      listen: { address: '::1', port: 5353 },
      target: { host: 'resolver.internal', port: 53 },
    },
    {
      id: 'sock',
      enabled: true,
      protocol: 'tcp',
      listen: { address: '127.0.0.1', port: 9000 },
      target: { unix: '/run/app.sock' },
    },
  ],
  helper: { socket: '/run/berth/helper.sock' },
};

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(JSON.stringify(raw), 'config.json');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

test('a config round-trips through save and load, saved 0600', async (t) => {
  const dir = await tempDir(t);
  const store = new ConfigStore(join(dir, 'sub', 'config.json'));
  await store.save(sample);
  const loaded = await new ConfigStore(store.path).load();
  assert.deepEqual(loaded.config, sample);
  assert.deepEqual(loaded.notices, []);
  assert.equal((await stat(store.path)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700);
});

test('defaults are filled in and a missing file is an empty config', async (t) => {
  const dir = await tempDir(t);
  assert.deepEqual((await new ConfigStore(join(dir, 'none.json')).load()).config, {
    version: 1,
    forwards: [],
  });
  const config = parseConfig(
    '{"version":1,"forwards":[{"id":"a","listen":{"port":8080},"target":{"host":"::1","port":1}}]}',
    'x',
  );
  assert.deepEqual(config.forwards[0], {
    id: 'a',
    enabled: true,
    protocol: 'tcp',
    listen: { address: '127.0.0.1', port: 8080 },
    target: { host: '::1', port: 1 },
  });
});

test('every kind of bad input is reported with its JSON path', () => {
  const forward = (extra: object) => ({
    version: 1,
    forwards: [{ id: 'ok', listen: { port: 8080 }, target: { host: '127.0.0.1', port: 80 }, ...extra }],
  });
  const cases: [unknown, string[]][] = [
    [forward({ listen: { port: 70000 } }), ['forwards[0].listen.port: must be 1-65535']],
    [forward({ listen: { port: 0 } }), ['forwards[0].listen.port: must be 1-65535']],
    [forward({ listen: { port: 80.5 } }), ['forwards[0].listen.port: must be a whole number']],
    [forward({ listen: { port: '80' } }), ['forwards[0].listen.port: must be a number']],
    [
      forward({ listen: { address: 'localhost', port: 80 } }),
      ['forwards[0].listen.address: must be an IPv4 or IPv6 address, such as 127.0.0.1 or ::1'],
    ],
    [
      forward({ id: 'Web' }),
      ['forwards[0].id: must be 1-40 lowercase letters, digits or hyphens, starting with a letter or digit'],
    ],
    [forward({ protocol: 'sctp' }), ['forwards[0].protocol: must be "tcp" or "udp"']],
    [forward({ enabled: 'yes' }), ['forwards[0].enabled: must be true or false']],
    [forward({ colour: 'red' }), ['forwards[0].colour: unknown key']],
    [
      forward({ target: { host: 'bad host', port: 1 } }),
      [
        'forwards[0].target.host: must be an IP address or a host name, such as 127.0.0.1, ::1 or db.internal',
      ],
    ],
    [forward({ target: { unix: 'relative.sock' } }), ['forwards[0].target.unix: must be an absolute path']],
    [
      forward({ target: {} }),
      ['forwards[0].target: must be { "host", "port" } or { "unix": "/absolute/path" }'],
    ],
    [
      forward({ protocol: 'udp', target: { unix: '/run/x.sock' } }),
      ['forwards[0].target.unix: a Unix socket target needs protocol "tcp"'],
    ],
    [
      forward({ backend: { command: [] } }),
      ['forwards[0].backend.command: must name at least the program to run'],
    ],
    [
      forward({ backend: { command: 'npm start' } }),
      [
        'forwards[0].backend.command: must be an array of strings (argv), such as ["python3", "-m", "http.server"]',
      ],
    ],
    [
      forward({ backend: { command: ['x'], restart: 'sometimes' } }),
      ['forwards[0].backend.restart: must be "never", "on-failure" or "always"'],
    ],
    [
      forward({ backend: { command: ['x'], cwd: 'src' } }),
      ['forwards[0].backend.cwd: must be an absolute path'],
    ],
    [{ version: 1, forwards: {} }, ['forwards: must be an array of forwards']],
    [{ version: 0 }, ['version: must be 1 or 2']],
    [{ version: 1, helper: { socket: 'helper.sock' } }, ['helper.socket: must be an absolute path']],
    [{ version: 1, extra: true }, ['extra: unknown key']],
    [
      {
        version: 1,
        forwards: [
          { id: 'a', listen: { port: 8080 }, target: { host: 'h', port: 1 } },
          { id: 'a', listen: { port: 8080 }, target: { host: 'h', port: 2 } },
        ],
      },
      [
        'forwards[1].id: duplicate id "a" (also used by forwards[0])',
        'forwards[1].listen: 127.0.0.1:8080/tcp is already used by forwards[0]',
      ],
    ],
  ];
  for (const [raw, expected] of cases) assert.deepEqual(problemsOf(raw), expected, JSON.stringify(raw));
  assert.match(problemsOf('{')[0] ?? '', /^\(root\): /);
  assert.throws(
    () => parseConfig('{"version":1,', 'f.json'),
    /f\.json is not a valid Berth config:\n\(root\): not valid JSON/,
  );
});

test('a corrupt file is kept aside untouched and the last good backup is loaded and restored', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'config.json');
  const store = new ConfigStore(path);
  const older: Config = { ...sample, forwards: sample.forwards.slice(0, 1) };
  await store.save(older);
  await store.save(sample); // older is now config.json.bak
  assert.deepEqual(JSON.parse(await readFile(`${path}.bak`, 'utf8')), older);

  await writeFile(path, '{ "version": 1, "forwards": [ { "id": "half-writ');
  const loaded = await new ConfigStore(path).load();
  assert.deepEqual(loaded.config, older);
  const kept = (await readdir(dir)).filter((name) => name.startsWith('config.json.corrupt-'));
  assert.equal(kept.length, 1);
  assert.equal(
    await readFile(join(dir, kept[0] as string), 'utf8'),
    '{ "version": 1, "forwards": [ { "id": "half-writ',
  );
  assert.match(loaded.notices.join('\n'), /not a valid Berth config/);
  assert.match(loaded.notices.join('\n'), /kept as .*config\.json\.corrupt-/);
  assert.match(
    loaded.notices.join('\n'),
    /Loaded the last good config from .*config\.json\.bak \(1 forwards\)/,
  );
  // The good copy is back in place, so the next start finds it too.
  assert.deepEqual(parseConfig(await readFile(path, 'utf8'), path), older);
});

test('an invalid file without a backup leaves an empty config and the file kept aside', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'config.json');
  const bad = JSON.stringify({
    version: 1,
    forwards: [{ id: 'x', listen: { port: 99999 }, target: { unix: '/s' } }],
  });
  await writeFile(path, bad);
  const loaded = await new ConfigStore(path).load();
  assert.deepEqual(loaded.config.forwards, []);
  assert.match(loaded.notices[0] ?? '', /forwards\[0\]\.listen\.port: must be 1-65535/);
  const kept = (await readdir(dir)).filter((name) => name.startsWith('config.json.corrupt-'));
  assert.equal(await readFile(join(dir, kept[0] as string), 'utf8'), bad);
});

test('a config from a newer Berth is used read-only and never rewritten', async (t) => {
  const { engine, configFile } = await startEngine(t); // an engine on an empty config, just for the path's dir
  await engine.close();
  const newer = JSON.stringify({
    version: 3,
    forwards: [
      { id: 'web', enabled: false, listen: { port: 8080 }, target: { host: '127.0.0.1', port: 80 } },
    ],
    telemetry: { future: true },
  });
  await writeFile(configFile, newer);
  const store = new ConfigStore(configFile);
  const loaded = await store.load();
  assert.equal(loaded.readOnly, true);
  assert.equal(loaded.config.forwards[0]?.id, 'web');
  assert.match(loaded.notices[0] ?? '', /newer Berth \(config version 3/);
  await assert.rejects(store.save(loaded.config), /is not rewritten/);

  const { Engine } = await import('../../app/engine/engine.js');
  const readOnly = new Engine({ store: new ConfigStore(configFile) });
  await readOnly.start();
  onCleanup(t, () => readOnly.close());
  await assert.rejects(readOnly.call('enable', { id: 'web' }), { code: 'EREADONLY' });
  await assert.rejects(
    readOnly.call('add', { forward: { id: 'new', listen: { port: 1 }, target: { unix: '/x' } } }),
    { code: 'EREADONLY' },
  );
  assert.equal(await readFile(configFile, 'utf8'), newer);
});

test('a writer killed with SIGKILL mid-save never leaves a truncated config.json', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'config.json');
  const writer = new URL('../fixtures/config-writer.ts', import.meta.url).pathname;
  const rounds = 25;
  for (let round = 0; round < rounds; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const started = await Promise.race([once(child.stdout, 'data'), once(child, 'exit')]);
    assert.ok(started[0] instanceof Buffer, `the writer exited early (${String(started[0])})`);
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 40)));
    child.kill('SIGKILL');
    await once(child, 'exit');
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // killed before its first save completed
    const config = ConfigSchema.parse(JSON.parse(text)); // throws on a truncated or invalid file
    assert.ok(config.forwards.length >= 1);
  }
  // The next start cleans up temp files a killed writer left behind.
  await new ConfigStore(path).load();
  assert.deepEqual(
    (await readdir(dir)).filter((name) => name.includes('.tmp-')),
    [],
  );
});
