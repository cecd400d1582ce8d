/** Berth's version, read once from package.json (two folders up from here in the build, one in the source). */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'berth' && pkg.version) return pkg.version;
    } catch {
      // Not this folder.
    }
  }
  return '0.0.0';
}

/** The version `berth --version` prints. */
export const VERSION = readVersion();
