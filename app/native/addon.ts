/**
 * Berth's native addon (native/src/addon.cc): what it exports, and where to load it from. This folder is the one
 * way app/ reaches native/: the engine's relays go through ./relays.ts, berth-helper requests through
 * ./helper-request.ts, the backend supervisor's calls on Berth's own process through ./process.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HelperRequestExports } from './helper-request.js';
import type { ProcessExports } from './process.js';
import type { TcpRelayExports, UdpRelayExports } from './relays.js';

/**
 * The addon's exports. Off Linux the relays and the process calls are missing, and `tcpRelayAvailable`,
 * `udpRelayAvailable` and `childSubreaperAvailable` are false.
 */
export type BerthNative = HelperRequestExports & TcpRelayExports & UdpRelayExports & ProcessExports;

/** Which build of the addon to load: Berth always uses `berth_native`; tests may load the test twin. */
export type AddonBuild = 'berth_native' | 'berth_native_test';

/** The addon is not built (`code` ENOADDON): `npm ci` or `npm run build:native` builds it. */
export class AddonMissingError extends Error {
  override readonly name = 'AddonMissingError';
  readonly code = 'ENOADDON';
  constructor(readonly build: AddonBuild) {
    super(
      `Berth's native addon ${build}.node is not built: run \`npm ci\` (or \`npm run build:native\`) in Berth's folder.`,
    );
  }
}

/**
 * Finds `native/build/Release/<build>.node` above this file (it runs from app/ under tsx and from dist/app/).
 * `BERTH_NATIVE_ADDON` names another `berth_native` build to load instead: a bundle run from elsewhere (the
 * benchmark's), or a sanitizer build (scripts/native-asan.sh).
 */
export function addonPath(build: AddonBuild = 'berth_native'): string | undefined {
  const override = build === 'berth_native' ? process.env.BERTH_NATIVE_ADDON : undefined;
  if (override) return existsSync(override) ? override : undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    const candidate = join(dir, 'native', 'build', 'Release', `${build}.node`);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/** Loads the addon; throws an AddonMissingError when it is not built. */
export function loadBerthNative(build: AddonBuild = 'berth_native'): BerthNative {
  const file = addonPath(build);
  if (!file) throw new AddonMissingError(build);
  return createRequire(import.meta.url)(file) as BerthNative;
}
