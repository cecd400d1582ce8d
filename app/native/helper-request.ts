/**
 * The addon's berth-helper client (native/src/helper_client.h): one request to the helper's Unix socket, whose
 * reply fd arrives close-on-exec and verified. Its types, and `requestHelper`, which checks every option before
 * the addon sees it (the C++ checks again, and throws TypeError rather than crash). What a failure means to a
 * user is app/helper/helper-errors.ts's business.
 */
import { isIP } from 'node:net';

/** How received fds get close-on-exec: atomically in recvmsg (Linux), or by fcntl right after (macOS). */
export type ReceivePath = 'msg-cmsg-cloexec' | 'fcntl';

/** What every request names: where the helper listens, how long it may take, how its fd is received. */
interface RequestBase {
  socketPath: string;
  /** Connect to reply, 1-600000 ms. */
  timeoutMs: number;
  receivePath: ReceivePath;
}

/** A ping: is the helper there, and does it serve this user? */
export interface HelperPingRequest extends RequestBase {
  op: 'ping';
}

/** A bind: a socket bound (and for TCP listening) on `address` and `port`. */
export interface HelperBindRequest extends RequestBase {
  op: 'bind';
  protocol: 'tcp' | 'udp';
  /** An IPv4 or IPv6 literal without a zone. */
  address: string;
  port: number;
}

/** One request to berth-helper. */
export type HelperRequest = HelperPingRequest | HelperBindRequest;

/** What berth-helper answered to a ping. */
export interface HelperPing {
  version: number;
  message: string;
}

/**
 * How the addon rejects a request: Node-style `code` / `errno` / `syscall`, plus where it failed (`stage`:
 * connect | send | receive | reply | verify | helper) and, for stage helper, what the helper said (`helperStatus`:
 * denied | bad-request | failed).
 */
export interface HelperFailure extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  stage?: string;
  helperStatus?: string;
}

/** The addon's helper exports (native/src/helper_napi.cc). */
export interface HelperRequestExports {
  /** Resolves to the bound fd (bind) or the helper's answer (ping); rejects with a `HelperFailure`. */
  request(request: HelperRequest): Promise<number | HelperPing>;
  readonly receivePaths: { native: ReceivePath; available: ReceivePath[] };
  readonly protocolVersion: number;
  /** Only in the berth_native_test build: leaves received fds without close-on-exec (negative tests). */
  testLeaveCloexecOff?: (on: boolean) => void;
}

/** The longest path a Unix socket address holds (sun_path is 104 bytes on macOS, 108 on Linux). */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;

/** Sends `request` to berth-helper through the addon, its options checked first. */
export function requestHelper(
  native: Pick<HelperRequestExports, 'request'>,
  request: HelperRequest,
): Promise<number | HelperPing> {
  const { socketPath, timeoutMs, receivePath } = request;
  if (typeof socketPath !== 'string' || socketPath.length === 0) {
    throw new TypeError(`socketPath must be a non-empty string, got ${String(socketPath)}`);
  }
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH || socketPath.includes('\0')) {
    throw new TypeError(`socketPath does not fit a Unix socket address: ${socketPath}`);
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new TypeError(`timeoutMs must be an integer 1-600000, got ${timeoutMs}`);
  }
  if (receivePath !== 'msg-cmsg-cloexec' && receivePath !== 'fcntl') {
    throw new TypeError(`receivePath must be 'msg-cmsg-cloexec' or 'fcntl', got ${String(receivePath)}`);
  }
  if (request.op === 'bind') {
    const { protocol, address, port } = request;
    if (protocol !== 'tcp' && protocol !== 'udp') throw new TypeError(`protocol must be tcp or udp`);
    if (isIP(address) === 0 || address.includes('%')) {
      throw new TypeError(`address must be an IPv4 or IPv6 literal without a zone, got ${address}`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`port must be an integer 1-65535, got ${port}`);
    }
    return native.request({ socketPath, op: 'bind', protocol, address, port, timeoutMs, receivePath });
  }
  if (request.op !== 'ping') throw new TypeError(`op must be ping or bind`);
  return native.request({ socketPath, op: 'ping', timeoutMs, receivePath });
}
