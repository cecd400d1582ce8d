#!/usr/bin/env node
/**
 * Builds .vite/ (main.cjs, preload.cjs, the window's UI) exactly as `electron-forge package` would, with
 * the Vite plugin's own config generator and forge.config.ts, but without Electron: so the bundles can be
 * built and checked on machines where the Electron runtime cannot be obtained. Not needed where Forge runs.
 */
import { createRequire } from 'node:module';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const require = createRequire(import.meta.url);
const projectDir = fileURLToPath(new URL('..', import.meta.url));
const { createJiti } = require('jiti');
const forge = await createJiti(import.meta.url).import('../forge.config.ts', { default: true });
const vite = forge.plugins.find((plugin) => plugin.name === 'vite');
if (!vite) throw new Error('forge.config.ts has no Vite plugin');
const ViteConfigGenerator = require('@electron-forge/plugin-vite/dist/ViteConfig.js').default;
const generator = new ViteConfigGenerator(vite.config, projectDir, true);

await rm(new URL('../.vite', import.meta.url), { recursive: true, force: true });
for (const config of [...(await generator.getBuildConfigs()), ...(await generator.getRendererConfig())]) {
  await build({ configFile: false, logLevel: 'warn', ...config });
}
console.log('Built .vite/build/main.cjs, .vite/build/preload.cjs and .vite/renderer/main_window/');
