/**
 * Forge's Vite plugin merges this into its main-process config (CommonJS, Node built-ins and electron
 * external). The package is "type": "module", so the bundle is named .cjs for Electron to load it as
 * CommonJS; package.json "main" points at .vite/build/main.cjs.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  // Vite 8 (rolldown) leaves `import.meta` empty in CommonJS output instead of polyfilling it as Rollup
  // did; main/main.ts and app/native/addon.ts locate files from import.meta.url.
  define: { 'import.meta.url': 'require("node:url").pathToFileURL(__filename).href' },
  build: {
    lib: { entry: 'main/main.ts', formats: ['cjs'], fileName: () => 'main.cjs' },
    sourcemap: true,
  },
});
