/**
 * A line budget for the library's sources, as tinygrad keeps its line count: every file under
 * src/ stays small enough for a reader to hold in mind. A file may pass the budget only when it is
 * listed below with the reason; splitting it along its concerns is the usual way back under.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const BUDGET = 450;
/** Files allowed past the budget, with why (none today). */
const EXCEPTIONS: Record<string, string> = {};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    // generated files (the wasm kernels' bytes) are not for reading
    return e.name.endsWith('.ts') && !e.name.endsWith('.generated.ts') ? [path] : [];
  });
}

test(`every file under src/ has at most ${BUDGET} lines, or a written reason`, () => {
  const root = join(__dirname, '..', '..');
  const files = sources(join(root, 'src'));
  expect(files.length).toBeGreaterThan(50);
  const over = files
    .map((f) => ({ file: relative(root, f), lines: readFileSync(f, 'utf8').split('\n').length }))
    .filter((f) => f.lines > BUDGET && !(f.file in EXCEPTIONS))
    .map((f) => `${f.file}: ${f.lines} lines`);
  expect(over).toEqual([]);
  // an exception for a file back under the budget would mislead the next reader
  const stale = Object.keys(EXCEPTIONS).filter((f) => readFileSync(join(root, f), 'utf8').split('\n').length <= BUDGET);
  expect(stale).toEqual([]);
});
