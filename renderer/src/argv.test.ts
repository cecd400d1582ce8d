import { describe, expect, it } from 'vitest';
import { joinCommandLine, splitCommandLine } from './argv.js';

describe('splitCommandLine', () => {
  it.each([
    ['python3 -m http.server 8080', ['python3', '-m', 'http.server', '8080']],
    ['  spaced   out  ', ['spaced', 'out']],
    [`node -e "console.log('hi')"`, ['node', '-e', "console.log('hi')"]],
    [`echo 'a "b" c'`, ['echo', 'a "b" c']],
    ['say "a \\"quoted\\" word"', ['say', 'a "quoted" word']],
    ['path\\ with\\ spaces x', ['path with spaces', 'x']],
    ['empty "" arg', ['empty', '', 'arg']],
    ['ab"cd"ef', ['abcdef']],
    ['no $HOME or `expansion` or ; |', ['no', '$HOME', 'or', '`expansion`', 'or', ';', '|']],
    ['', []],
  ])('%s', (line, argv) => {
    expect(splitCommandLine(line)).toEqual({ ok: true, argv });
  });

  it('says what is wrong with an unclosed quote or a trailing backslash', () => {
    expect(splitCommandLine('echo "open')).toEqual({
      ok: false,
      message: 'has an unclosed double quote: close it with "',
    });
    expect(splitCommandLine("echo 'open")).toMatchObject({ ok: false, message: /unclosed single quote/ });
    expect(splitCommandLine('echo \\')).toMatchObject({ ok: false, message: /lone backslash/ });
  });
});

describe('joinCommandLine', () => {
  it('quotes only what needs it, and splits back to the same argv', () => {
    const argv = ['python3', '-m', 'http.server', 'with space', "it's", '', '$HOME'];
    const line = joinCommandLine(argv);
    expect(line).toBe(`python3 -m http.server 'with space' 'it'\\''s' '' '$HOME'`);
    expect(splitCommandLine(line)).toEqual({ ok: true, argv });
  });
});
