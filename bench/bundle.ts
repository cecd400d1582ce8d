/**
 * Bundles `bench/berth-child.ts` of a repo (this one, or a copy holding a prototype engine) into one plain
 * JavaScript file, so Berth runs under test as it runs for users: plain Node, no TypeScript loader. The
 * bench's own children (targets, stream client) are bundled too: they start in tens of milliseconds.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';

let counter = 0;

/** Bundles the Berth child of the repo at `root` into `outDir`; resolves to the bundle's path. */
export async function bundleBerth(root: string, outDir: string): Promise<string> {
  const entry = join(root, 'bench', 'berth-child.ts');
  if (!existsSync(entry)) {
    // A prototype copy made before the bench existed: give it this harness's child.
    await mkdir(join(root, 'bench'), { recursive: true });
    await copyFile(join(import.meta.dirname, 'berth-child.ts'), entry);
  }
  return bundle(entry, outDir);
}

/** Bundles one TypeScript entry point into `outDir` as plain JavaScript; resolves to its path. */
export async function bundle(entry: string, outDir: string): Promise<string> {
  // esbuild comes with tsx, which the bench already needs.
  const esbuild = await import('esbuild');
  const outfile = join(outDir, `${basename(entry, '.ts')}-${++counter}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    logLevel: 'error',
    // CommonJS dependencies call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  return outfile;
}
