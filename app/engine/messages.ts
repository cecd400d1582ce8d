/** Sentences a person can act on, for the error codes a forward meets. */
import { isIP } from 'node:net';
import { describeListen, describeTarget, type Forward, type Target } from '../config/schema.js';

/** A forward's problem as the API carries it. */
export interface ForwardProblem {
  code: string;
  message: string;
}

/** Why a listener could not be opened, and what to do about it. */
export function listenProblem(forward: Forward, err: NodeJS.ErrnoException): ForwardProblem {
  const where = describeListen(forward);
  const { address, port } = forward.listen;
  const code = err.code ?? 'EUNKNOWN';
  // berth-helper's own failures (absent, refused, timed out) already carry a full sentence with the fix.
  if (code.startsWith('EHELPER')) return { code, message: err.message };
  switch (code) {
    case 'EADDRINUSE':
      return {
        code,
        message:
          `${where} is already in use by another program. Stop that program ` +
          `(\`ss -${forward.protocol === 'udp' ? 'u' : 't'}lnp 'sport = :${port}'\` shows which) or choose another listen port.`,
      };
    case 'EADDRNOTAVAIL':
      return {
        code,
        message: `${address} is not an address of this machine, so ${where} cannot be opened. Listen on 127.0.0.1, ::1 or an address that \`ip addr\` lists.`,
      };
    case 'EAFNOSUPPORT':
      return {
        code,
        message: `This machine has no ${isIP(address) === 6 ? 'IPv6' : 'IPv4'} support for ${where}. Choose an address of the other family.`,
      };
    case 'EACCES':
    case 'EPERM':
      return {
        code,
        message: `Port ${port} is below 1024, so ${where} needs berth-helper, which is not configured. Install and start berth-helper (see the README) or choose a port of 1024 or above.`,
      };
    default:
      return { code, message: `${where} could not be opened: ${err.message}` };
  }
}

/** Why a connection to the target failed, and what to do about it. */
export function targetProblem(target: Target, err: NodeJS.ErrnoException): ForwardProblem {
  const where = describeTarget(target);
  const code = err.code ?? 'EUNKNOWN';
  switch (code) {
    case 'ECONNREFUSED':
      return {
        code,
        message: `Nothing is listening on the target ${where} (connection refused). Start the service or fix the target.`,
      };
    case 'ETIMEDOUT':
      return {
        code,
        message: `The target ${where} did not answer in time. Check that the host is up and reachable.`,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return {
        code,
        message: `The target host of ${where} does not resolve. Check the name or use an IP address.`,
      };
    case 'ENOENT':
      return {
        code,
        message: `There is no socket at the target ${where}. Start the service that creates it.`,
      };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return {
        code,
        message: `The target ${where} cannot be reached from this machine. Check the address and routes.`,
      };
    case 'ECONNRESET':
      return { code, message: `The target ${where} reset the connection.` };
    case 'EMFILE':
    case 'ENFILE':
      return { code, message: fdLimitMessage };
    default:
      return { code, message: `Connecting to the target ${where} failed: ${err.message}` };
  }
}

/**
 * A UDP forward dropped datagrams from a new client: it already had `max` sessions, or `perSource` from the
 * client's address, and none of them was idle enough to make room.
 */
export function maxSessionsProblem(max: number, perSource: number): ForwardProblem {
  return {
    code: 'EMAXSESSIONS',
    message:
      `More than ${max} UDP clients at once, or ${perSource} from one address, all active: ` +
      'datagrams from a new one were dropped.',
  };
}

/** A TCP forward closed a new client because it already has `max` connections. */
export function maxConnectionsProblem(max: number): ForwardProblem {
  return {
    code: 'EMAXCONN',
    message: `More than ${max} connections at once: a new one was closed.`,
  };
}

/** accept() failed on a TCP listener (which stays up): EMFILE, ENFILE, ENOBUFS. */
export function acceptProblem(err: NodeJS.ErrnoException): ForwardProblem {
  const code = err.code ?? 'EUNKNOWN';
  if (code === 'EMFILE' || code === 'ENFILE') return { code, message: fdLimitMessage };
  return { code, message: `Accepting a connection failed: ${err.message}` };
}

/** Berth itself ran out of file descriptors. */
export const fdLimitMessage =
  'Berth ran out of file descriptors, so new connections are refused until some close. Raise the limit (`ulimit -n`) or lower the number of connections.';
