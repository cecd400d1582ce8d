/**
 * Forge's Vite plugin merges this into its preload config. A sandboxed preload must be one CommonJS file
 * that requires nothing but `electron`; .cjs because the package is "type": "module".
 */
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    rollupOptions: { output: { entryFileNames: '[name].cjs' } },
    sourcemap: true,
  },
});
