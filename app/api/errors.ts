/** Errors that cross the API boundary as an envelope `{ name, message, code, problems }` and are rebuilt. */
import type { Problem } from '../config/problems.js';
import type { ErrorEnvelope } from './contract.js';

/** An error with a stable code that every transport carries intact. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly problems?: Problem[],
  ) {
    super(message);
  }
}

/** Turns anything thrown into the envelope; unexpected errors keep their message but not their stack. */
export function toEnvelope(err: unknown): ErrorEnvelope {
  if (err instanceof ApiError) {
    return {
      name: err.name,
      message: err.message,
      code: err.code,
      ...(err.problems ? { problems: err.problems } : {}),
    };
  }
  if (err instanceof Error) {
    // Not NodeJS.ErrnoException: this file is shared with the browser renderer.
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, code: typeof code === 'string' ? code : 'EINTERNAL' };
  }
  return { name: 'Error', message: String(err), code: 'EINTERNAL' };
}

/** Rebuilds the error on the receiving side, so callers can check `code` and show `message`. */
export function fromEnvelope(envelope: ErrorEnvelope): ApiError {
  const err = new ApiError(envelope.code, envelope.message, envelope.problems);
  err.name = envelope.name;
  return err;
}
