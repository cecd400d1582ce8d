/** Builds the React UI (renderer/) into dist/renderer, which `berth serve` and the Electron window load. */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [react()],
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    // No inline scripts or styles: the server's Content-Security-Policy allows only files from itself.
    assetsInlineLimit: 0,
    sourcemap: true,
  },
});
