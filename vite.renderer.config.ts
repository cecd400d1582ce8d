/**
 * Forge's Vite plugin builds the window's UI with this: the same React app as vite.config.ts (which builds
 * it to dist/renderer for `berth serve`), output where the main process serves it from app://berth/.
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [react()],
  build: {
    outDir: '../.vite/renderer/main_window',
    emptyOutDir: true,
    // No inline scripts or styles: the window's Content-Security-Policy allows only files from app://berth.
    assetsInlineLimit: 0,
    sourcemap: true,
  },
});
