/**
 * What a failed berth-helper request means to a user: `HelperError`s whose `EHELPER*` messages are whole sentences
 * naming the port, the socket path and the fix, while a bind the helper itself could not do keeps its Node errno
 * code (EADDRINUSE, ...) for the engine to explain. Codes and stages: docs/helper-protocol.md.
 */
import type { AddonBuild } from '../native/addon.js';
import type { HelperFailure } from '../native/helper-request.js';
import { installedHelperAccessHint, installedHelperStartHint } from './installed.js';

/** A failed helper request, with Node-style `code`, `errno` and `syscall`. */
export class HelperError extends Error {
  override readonly name = 'HelperError';
  constructor(
    message: string,
    readonly code: string,
    readonly errno?: number,
    readonly syscall?: string,
  ) {
    super(message);
  }
}

/** The addon is not built, so no request can be made (EHELPERNOADDON). */
export function addonMissing(build: AddonBuild): HelperError {
  return new HelperError(
    `Berth's native addon ${build}.node is not built, so privileged ports cannot be requested from berth-helper. Run \`npm ci\` (or \`npm run build:native\`) in Berth's folder.`,
    'EHELPERNOADDON',
  );
}

/** What the sentence of a failed request needs to know about it. */
export interface FailedRequest {
  socketPath: string;
  /** "TCP 127.0.0.1:80", or "a ping". */
  what: string;
  /** 0 for a ping. */
  port: number;
  timeoutMs: number;
}

/** Turns the addon's technical failure into a sentence that names the port, the socket path and the fix. */
export function explainHelperFailure(err: HelperFailure, request: FailedRequest): HelperError {
  const { socketPath, what, port, timeoutMs } = request;
  const at = `berth-helper at ${socketPath}`;
  const needs = port > 0 ? `${what} needs privileges to bind, so Berth asked berth-helper, but ` : '';
  const uid = process.getuid?.() ?? 0;
  const start = `sudo native/build/Release/berth-helper --socket ${socketPath} --allow-uid ${uid}`;
  const detail = err.message;
  const code = err.code ?? 'EHELPERFAILED';
  const packaged = installedHelperAccessHint(socketPath);
  if (err.stage === 'connect') {
    if (code === 'EACCES' || code === 'EPERM') {
      return new HelperError(
        packaged
          ? `${needs}this user may not connect to ${socketPath}. ${packaged}`
          : `${needs}this user (uid ${uid}) may not connect to ${socketPath}. Restart berth-helper with \`--socket-group\` naming a group of this user and \`--socket-mode 0660\`, or with \`--socket-mode 0666 --allow-uid ${uid}\`.`,
        'EHELPERDENIED',
        err.errno,
        err.syscall,
      );
    }
    const startIt = installedHelperStartHint(socketPath);
    return new HelperError(
      startIt
        ? `${needs}no berth-helper answers at ${socketPath} (${detail}). ${startIt}`
        : `${needs}no berth-helper answers at ${socketPath} (${detail}). Start it as root, for example \`${start}\`, or set "helper": { "socket": ... } in the config to where it listens.`,
      'EHELPERUNAVAILABLE',
      err.errno,
      err.syscall,
    );
  }
  if (code === 'ETIMEDOUT') {
    return new HelperError(
      `${needs}${at} did not answer within ${timeoutMs / 1000} s. Check that berth-helper is running (its log is on its stderr) and restart it: \`${start}\`.`,
      'EHELPERTIMEOUT',
      err.errno,
      err.syscall,
    );
  }
  if (err.helperStatus === 'denied') {
    const fix = detail.includes('--ports')
      ? `To allow it, restart it with a \`--ports\` range that includes ${port}.`
      : (packaged ?? `To allow it, restart it with \`--allow-uid ${uid}\`.`);
    return new HelperError(`${needs}${at} refused: ${detail}. ${fix}`, 'EHELPERDENIED', err.errno);
  }
  if (err.helperStatus === 'failed') {
    // The helper tried and the system call failed: keep the errno code so the engine can explain it.
    return new HelperError(`berth-helper: ${detail}`, code, err.errno, err.syscall);
  }
  if (
    err.stage === 'helper' ||
    err.stage === 'reply' ||
    err.stage === 'verify' ||
    code === 'EHELPERBADREPLY'
  ) {
    return new HelperError(
      `${needs}${at} gave an unusable answer: ${detail}. Make sure the program listening on ${socketPath} is the berth-helper of this Berth version, and restart it: \`${start}\`.`,
      err.helperStatus === 'bad-request' ? 'EHELPERPROTOCOL' : 'EHELPERBADREPLY',
      err.errno,
      err.syscall,
    );
  }
  return new HelperError(
    `${needs}talking to ${at} failed: ${detail}. Restart berth-helper: \`${start}\`.`,
    code.startsWith('EHELPER') ? code : 'EHELPERFAILED',
    err.errno,
    err.syscall,
  );
}
