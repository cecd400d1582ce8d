/**
 * The one check every request from outside passes, whatever transport brought it: the command name must be
 * one of the contract's, and the request must fit that command's zod schema (app/api/contract.ts).
 */
import type { z } from 'zod';
import { problemsFromIssues } from '../config/problems.js';
import { commands, isCommandName, type CommandName, type ParsedRequest } from './contract.js';
import { ApiError } from './errors.js';

/** The command that `name` (from outside) names; EBADCOMMAND for anything else. */
export function commandName(name: unknown): CommandName {
  if (!isCommandName(name)) throw new ApiError('EBADCOMMAND', `Unknown command ${describe(name)}.`);
  return name;
}

/** Validates a request from outside with its command's schema; EINVAL, with a problem per wrong field. */
export function parseRequest<N extends CommandName>(name: N, request: unknown): ParsedRequest<N> {
  const schema: z.ZodType = commands[name].request;
  const parsed = schema.safeParse(request);
  if (!parsed.success) {
    throw new ApiError('EINVAL', `Invalid ${name} request.`, problemsFromIssues(parsed.error.issues));
  }
  // TypeScript sees a union of schemas for a generic N; the one picked by `name` outputs ParsedRequest<N>.
  return parsed.data as ParsedRequest<N>;
}

// A name from outside is shown short and quoted, whatever it is.
function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : typeof value;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
