/**
 * Electron Forge 7 (Forge 8 needs Node 22): `npm start` (development, through scripts/start.mjs) and
 * `electron-forge package` (the app electron-builder turns into installers with --prepackaged; see build/).
 * Vite builds main, preload and renderer; the fuses turn off every way to run the binary as plain Node or
 * attach an inspector, and make it load only its own integrity-checked app.asar. The addon and berth-helper
 * are copied next to the bundle and unpacked from the asar (a .node file cannot be loaded from inside it,
 * and the helper must be a real file to execute).
 */
import { cp, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoUnpackNativesPlugin } from '@electron-forge/plugin-auto-unpack-natives';
import { FusesPlugin } from '@electron-forge/plugin-fuses';
import { VitePlugin } from '@electron-forge/plugin-vite';
import type { ForgeConfig } from '@electron-forge/shared-types';
import { FuseV1Options, FuseVersion } from '@electron/fuses';

/** The native files the app needs at run time, relative to the project (native/binding.gyp builds them). */
export const NATIVE_FILES = ['native/build/Release/berth_native.node', 'native/build/Release/berth-helper'];

const projectDir = dirname(fileURLToPath(import.meta.url));

const config: ForgeConfig = {
  packagerConfig: {
    name: 'Berth',
    executableName: 'berth-desktop',
    // app/native/addon.ts looks for native/build/Release above its bundle: keep that layout.
    asar: { unpack: '**/native/build/Release/*' },
  },
  rebuildConfig: {},
  makers: [],
  hooks: {
    // The Vite plugin packages only .vite/; the native files are added beside it.
    packageAfterCopy: async (_config, buildPath) => {
      await mkdir(join(buildPath, 'native', 'build', 'Release'), { recursive: true });
      for (const file of NATIVE_FILES) {
        // copyFile keeps the mode: berth-helper stays executable.
        await cp(join(projectDir, file), join(buildPath, file)).catch((err: NodeJS.ErrnoException) => {
          throw new Error(`${file} is missing (${err.code}): run \`npm run build:native\` before packaging.`);
        });
      }
    },
  },
  plugins: [
    new VitePlugin({
      build: [
        { entry: 'main/main.ts', config: 'vite.main.config.ts', target: 'main' },
        { entry: 'main/preload.ts', config: 'vite.preload.config.ts', target: 'preload' },
      ],
      renderer: [{ name: 'main_window', config: 'vite.renderer.config.ts' }],
    }),
    new AutoUnpackNativesPlugin({}),
    new FusesPlugin({
      version: FuseVersion.V1,
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
      [FuseV1Options.EnableNodeCliInspectArguments]: false,
      [FuseV1Options.OnlyLoadAppFromAsar]: true,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
      [FuseV1Options.EnableCookieEncryption]: true,
      // The window loads app://berth/, never file://: file: pages need no extra privileges.
      [FuseV1Options.GrantFileProtocolExtraPrivileges]: false,
    }),
  ],
};

export default config;
