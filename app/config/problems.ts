/** Turns zod issues into problems a person can act on: a JSON path and a sentence. */
import type { z } from 'zod';

/** One problem in a config or request, e.g. `forwards[2].listen.port: must be 1-65535`. */
export interface Problem {
  path: string;
  message: string;
}

/** `['forwards', 2, 'listen', 'port']` → `forwards[2].listen.port`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Flattens zod issues into problems; union failures report the branch the input was closest to. */
export function problemsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: PropertyKey[] = [],
): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        problems.push({ path: formatPath([...path, key]), message: 'unknown key' });
    } else if (issue.code === 'invalid_union' && matchingBranch(issue.errors)) {
      problems.push(...problemsFromIssues(matchingBranch(issue.errors) ?? [], path));
    } else {
      problems.push({ path: formatPath(path), message: issue.message });
    }
  }
  return problems;
}

/** "path: message" lines, one per problem. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('\n');
}

// The one union branch whose shape the input has (no unknown keys, failures only below the union), so the
// problem names the field to fix. When no branch or several fit, the union's own "must be ..." is clearer.
function matchingBranch(branches: readonly (readonly z.core.$ZodIssue[])[]): z.core.$ZodIssue[] | undefined {
  const fitting = branches.filter((branch) => branch.every((issue) => issue.path.length > 0));
  return fitting.length === 1 && fitting[0] ? [...fitting[0]] : undefined;
}
