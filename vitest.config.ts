/** Component tests of the React UI: Vitest + Testing Library in jsdom. */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [react()],
  test: {
    environment: 'jsdom',
    include: ['renderer/**/*.test.{ts,tsx}'],
    setupFiles: ['renderer/test/setup.ts'],
    restoreMocks: true,
  },
});
