/**
 * Splits a command line into argv the way a person reads it (POSIX-like quotes and backslashes), and joins
 * argv back into such a line. No shell ever runs the result: Berth passes the argv array to the program.
 */

/** The argv of a command line, or the sentence saying what is wrong with it. */
export type SplitResult = { ok: true; argv: string[] } | { ok: false; message: string };

/** `python3 -m "http server" it\'s` → `['python3', '-m', 'http server', "it's"]`. */
export function splitCommandLine(line: string): SplitResult {
  const argv: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1] as string))
        current += line[++i];
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 >= line.length)
        return { ok: false, message: 'ends with a lone backslash: remove it or escape it as \\\\' };
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) argv.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote)
    return {
      ok: false,
      message: `has an unclosed ${quote === '"' ? 'double' : 'single'} quote: close it with ${quote}`,
    };
  if (inWord) argv.push(current);
  return { ok: true, argv };
}

// Arguments made only of these characters read the same without quotes.
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** The inverse of splitCommandLine: quotes only the arguments that need it. */
export function joinCommandLine(argv: readonly string[]): string {
  return argv.map((arg) => (PLAIN.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(' ');
}
