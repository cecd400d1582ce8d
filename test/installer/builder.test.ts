/**
 * build/electron-builder.yml and build/dist.sh produce an app whose resources hold berth-helper (with its
 * systemd units and setup script), the unpacked addon and the renderer: `electron-builder --linux dir`, then
 * `--linux dir --prepackaged` and `--linux tar.gz --prepackaged` (Debian's 7zip) on a Forge-like packaged app.
 *
 * THE ELECTRON RUNTIME HERE IS A PLACEHOLDER: Electron cannot be downloaded on these machines, so `electronDist`
 * points at a folder this test makes in a temp dir, holding a shell script named `electron` that only prints
 * that it is a placeholder. The packages made here check the layout and are not runnable apps. deb, rpm and
 * AppImage need fpm and appimagetool, which electron-builder downloads: they are built on release machines; here
 * a recording stand-in for fpm (CUSTOM_FPM_PATH) checks what electron-builder would hand it for deb and rpm.
 */
import assert from 'node:assert/strict';
import { listPackage, statFile } from '@electron/asar';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  ADDON_BUILD,
  BUILD_LINUX,
  HELPER_BUILD,
  REPO,
  isRoot,
  makeSystemRoot,
  noNativeBuild,
  runSetup,
  sha256,
  tempDir,
} from '../support/installer.js';

const CONFIG = join(REPO, 'build', 'electron-builder.yml');
const DIST = join(REPO, 'build', 'dist.sh');
const RENDERER = join(REPO, 'dist', 'renderer', 'index.html');
const SEVEN_ZIP = '/usr/bin/7zz';
const ADDON_IN_ASAR = 'native/build/Release/berth_native.node';
const HELPER_IN_ASAR = 'native/build/Release/berth-helper';

function whyNot(): string | false {
  if (process.platform !== 'linux') return 'needs Linux: builds the Linux targets';
  const built = noNativeBuild();
  if (built) return built;
  if (!existsSync(RENDERER)) return `${RENDERER} is not built: run npm run build`;
  return false;
}
const skip = whyNot();
const skipTar = skip || (!existsSync(SEVEN_ZIP) && `needs ${SEVEN_ZIP}: apt-get install -y 7zip`);

/** The placeholder Electron runtime (see the header). */
function placeholderElectron(dir: string): string {
  const dist = join(dir, 'electron-placeholder');
  mkdirSync(join(dist, 'resources'), { recursive: true });
  writeFileSync(
    join(dist, 'electron'),
    '#!/bin/sh\necho "placeholder for the Electron runtime (installer layout test), not a real app" >&2\nexit 1\n',
  );
  chmodSync(join(dist, 'electron'), 0o755);
  writeFileSync(join(dist, 'chrome-sandbox'), '');
  writeFileSync(join(dist, 'LICENSE'), 'placeholder\n');
  return dist;
}

function run(command: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, CI: '1', ...env },
  });
}

/** `electron-builder --linux dir` on the repo with the placeholder runtime: the app as Forge should package it. */
function packApp(dir: string): string {
  const output = join(dir, 'builder');
  const result = run('npx', [
    'electron-builder',
    '--config',
    CONFIG,
    '--linux',
    'dir',
    `-c.electronDist=${placeholderElectron(dir)}`,
    `-c.directories.output=${output}`,
    // The addon is already built for this Node; rebuilding it for Electron would download Electron's headers.
    '-c.npmRebuild=false',
    // Only the layout matters here: any file of the app will do as its entry point.
    '-c.extraMetadata.main=dist/app/cli.js',
  ]);
  assert.equal(result.status, 0, result.stdout + result.stderr);
  return join(output, 'linux-unpacked');
}

/** Checks resources/: the addon and the helper unpacked (as forge.config.ts has them), the setup files, the renderer. */
function assertLayout(resources: string): void {
  const mode = (path: string) => (statSync(join(resources, path)).mode & 0o777).toString(8);
  const unpacked = join(resources, 'app.asar.unpacked');
  assert.equal(sha256(join(unpacked, HELPER_IN_ASAR)), sha256(HELPER_BUILD), 'the helper, unpacked');
  assert.equal(mode(join('app.asar.unpacked', HELPER_IN_ASAR)), '755');
  assert.equal(sha256(join(unpacked, ADDON_IN_ASAR)), sha256(ADDON_BUILD), 'the addon, unpacked');
  assert.equal(mode('linux/berth-helper-setup'), '755');
  for (const unit of ['berth-helper.socket', 'berth-helper.service']) {
    assert.equal(sha256(join(resources, 'linux', unit)), sha256(join(BUILD_LINUX, unit)));
    assert.equal(mode(`linux/${unit}`), '644');
  }
  const asar = join(resources, 'app.asar');
  for (const file of [ADDON_IN_ASAR, HELPER_IN_ASAR]) {
    assert.equal(statFile(asar, file).unpacked, true, `app.asar marks ${file} as unpacked`);
  }
  const files = listPackage(asar, { isPack: false });
  assert.ok(files.includes('/dist/renderer/index.html'), 'the renderer is in app.asar');
  assert.ok(files.includes('/dist/app/helper/helper-binder.js'), 'the helper binder is in app.asar');
  assert.ok(files.includes('/dist/app/native/addon.js'), 'the addon loader is in app.asar');
  assert.ok(!files.some((f) => f.endsWith('.map')), 'no source maps shipped');
}

describe('electron-builder: the app layout the installers are made from (placeholder Electron runtime)', () => {
  test(
    '--linux dir: resources hold berth-helper, its units and setup script, the unpacked addon, the renderer',
    { skip, timeout: 240_000 },
    () => {
      const dir = tempDir();
      try {
        const app = packApp(dir.path);
        assertLayout(join(app, 'resources'));
        assert.ok(
          existsSync(join(app, 'berth-desktop')),
          'the placeholder runtime became the app executable',
        );
      } finally {
        dir.remove();
      }
    },
  );

  test(
    'build/dist.sh --prepackaged: adds the installer resources to a Forge-like app, then --linux dir and tar.gz (7zip)',
    { skip: skipTar, timeout: 300_000 },
    () => {
      const dir = tempDir();
      try {
        // A packaged app as Forge makes it: the app, its unpacked addon and helper, none of the installer files.
        const app = join(dir.path, 'Berth-linux-x64');
        cpSync(packApp(dir.path), app, { recursive: true });
        rmSync(join(app, 'resources', 'linux'), { recursive: true });
        const output = join(dir.path, 'installers');

        const asDir = run('sh', [
          DIST,
          '--prepackaged',
          app,
          '--linux',
          'dir',
          `-c.directories.output=${output}`,
        ]);
        assert.equal(asDir.status, 0, asDir.stdout + asDir.stderr);
        assertLayout(join(app, 'resources'));

        const tar = run(
          'sh',
          [DIST, '--prepackaged', app, '--linux', 'tar.gz', `-c.directories.output=${output}`],
          {
            ELECTRON_BUILDER_7ZIP_PATH: SEVEN_ZIP,
          },
        );
        assert.equal(tar.status, 0, tar.stdout + tar.stderr);
        const archive = readdirSync(output).find((name) => name.endsWith('.tar.gz'));
        assert.ok(archive, `no tar.gz in ${readdirSync(output).join(', ')}`);
        const extracted = join(dir.path, 'extracted');
        mkdirSync(extracted);
        const untar = spawnSync('tar', ['-xzf', join(output, archive), '-C', extracted], {
          encoding: 'utf8',
        });
        assert.equal(untar.status, 0, untar.stderr);
        const [top] = readdirSync(extracted);
        const resources = join(extracted, top!, 'resources');
        assertLayout(resources);

        // As after `tar xf` on a user's machine: the archive's setup script installs the helper it carries.
        if (isRoot) {
          const root = join(dir.path, 'root');
          makeSystemRoot(root);
          const setup = runSetup(
            ['install'],
            { DESTDIR: root },
            join(resources, 'linux', 'berth-helper-setup'),
          );
          assert.equal(setup.status, 0, setup.stderr + setup.stdout);
          assert.equal(sha256(join(root, 'usr', 'libexec', 'berth', 'berth-helper')), sha256(HELPER_BUILD));
        }
      } finally {
        dir.remove();
      }
    },
  );

  test(
    'deb and rpm: fpm (a recording stand-in) gets the app at /opt/Berth, the maintainer scripts and the dependencies',
    { skip, timeout: 240_000 },
    () => {
      const dir = tempDir();
      try {
        const app = packApp(dir.path);
        // fpm is a download these machines refuse; CUSTOM_FPM_PATH makes electron-builder run this stand-in, which
        // records its arguments and the maintainer scripts electron-builder rendered, and writes an empty package.
        const stub = join(dir.path, 'fpm-stub');
        mkdirSync(stub);
        writeFileSync(
          join(stub, 'fpm'),
          [
            '#!/bin/sh',
            `: > '${stub}/args'`,
            `for a in "$@"; do printf '%s\\n' "$a" >> '${stub}/args'; done`,
            'prev=',
            'for a in "$@"; do',
            '  case $prev in',
            `    --after-install) cp "$a" '${stub}/after-install' ;;`,
            `    --after-remove) cp "$a" '${stub}/after-remove' ;;`,
            '    --package) : > "$a" ;;',
            '  esac',
            '  prev=$a',
            'done',
            '',
          ].join('\n'),
          { mode: 0o755 },
        );
        for (const [target, dependency] of [
          ['deb', 'passwd'],
          ['rpm', 'shadow-utils'],
        ] as const) {
          const result = run(
            'npx',
            [
              'electron-builder',
              '--config',
              CONFIG,
              '--linux',
              target,
              '--prepackaged',
              app,
              `-c.directories.output=${join(dir.path, 'installers')}`,
              // package.json has no author email or homepage yet (docs/install.md, release machine): stand-ins.
              '-c.linux.maintainer=Berth test <test@berth.invalid>',
              '-c.extraMetadata.homepage=https://berth.invalid/',
            ],
            { CUSTOM_FPM_PATH: join(stub, 'fpm') },
          );
          assert.equal(result.status, 0, result.stdout + result.stderr);
          const args = readFileSync(join(stub, 'args'), 'utf8').split('\n');
          assert.ok(args.includes(`${app}/=/opt/Berth`), `${target}: the app goes to /opt/Berth`);
          const depends = args.flatMap((arg, i) => (args[i - 1] === '-d' ? [arg] : []));
          assert.ok(
            depends.includes(dependency),
            `${target} depends on ${dependency}: ${depends.join(', ')}`,
          );
          const install = readFileSync(join(stub, 'after-install'), 'utf8');
          assert.match(install, /sh '\/opt\/Berth\/resources\/linux\/berth-helper-setup' install "\$@"/);
          assert.match(
            install,
            /'\/opt\/Berth\/berth-desktop'/,
            'the /usr/bin link points at the real executable',
          );
          const remove = readFileSync(join(stub, 'after-remove'), 'utf8');
          assert.match(remove, /\/usr\/libexec\/berth\/berth-helper-setup remove "\$@"/);
          for (const [name, text] of [
            ['after-install', install],
            ['after-remove', remove],
          ]) {
            const parsed = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
            assert.equal(parsed.status, 0, `${target} ${name}: ${parsed.stderr}`);
          }
        }
      } finally {
        dir.remove();
      }
    },
  );

  test(
    'build/dist.sh refuses a packaged app without the unpacked addon, naming what is missing',
    { skip, timeout: 240_000 },
    () => {
      const dir = tempDir();
      try {
        const app = packApp(dir.path);
        rmSync(join(app, 'resources', 'app.asar.unpacked'), { recursive: true });
        const result = run('sh', [DIST, '--prepackaged', app, '--linux', 'dir']);
        assert.equal(result.status, 1, result.stdout + result.stderr);
        assert.match(result.stderr, /berth_native\.node is not unpacked at/);
      } finally {
        dir.remove();
      }
    },
  );
});
