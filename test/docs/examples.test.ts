/**
 * The docs cannot rot: every ```ts code block in README.md and docs/*.md is extracted,
 * type-checked against the sources and run, one test per block, named by file and line.
 *
 * How a block is written (see also docs/getting-started.md, "Reading the examples"):
 * - `import { ... } from 'blockgrad'` resolves to this repository's src/index.ts (esbuild bundles
 *   each block with blockgrad's sources into one ES module; Node runs it in a child process, in a
 *   scratch directory, and the test asserts exit code 0). Top-level `await` works.
 * - `expr; // => value` asserts that `expr` equals `value` (a JavaScript literal: numbers,
 *   strings, booleans, nested arrays, objects); `const x = expr; // => value` asserts x. Numbers
 *   agree within 1e-6 relative (plus 1e-9 absolute), so float32 results may be written as
 *   their decimal values. Anything looser is asserted by the block itself (`if (...) throw`).
 * - A block that is deliberately not runnable (a signature, a fragment, an excerpt of the
 *   sources) is marked, either in the fence's info string (```ts norun) or with an HTML comment on
 *   the line before the fence: `<!-- norun: why -->`. `<!-- excerpt: src/path.ts -->` marks a
 *   block quoted from the sources; it is not run, but it must appear in that file verbatim, so a
 *   change to the code fails the test until the quote is updated.
 *
 * Each block's code keeps its line numbers in the generated file, so a stack trace or a type
 * error points at the line of the markdown file.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import ts from 'typescript';

const root = resolve(__dirname, '../..');
const SOURCES = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const RUN_TIMEOUT_MS = 45_000;

interface Block {
  /** 'docs/badam.md:42', the line of the opening fence. */
  where: string;
  file: string;
  /** 1-based line of the opening fence. */
  fenceLine: number;
  code: string;
  norun: string | null;
  excerptOf: string | null;
}

/** The ```ts blocks of a markdown file, with the markers that apply to them. */
function extractBlocks(file: string): Block[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang, info] = open;
    let end = i + 1;
    const closes = (l: string) => {
      const t = l.trim();
      return t.length >= fence.length && t === fence[0].repeat(t.length);
    };
    while (end < lines.length && !closes(lines[end])) end++;
    if (end >= lines.length) throw new Error(`${file}:${i + 1}: a code fence is never closed`);
    if (lang === 'ts' || lang === 'typescript') {
      const before = i > 0 ? lines[i - 1].trim() : '';
      const norunComment = /^<!--\s*norun:?\s*(.*?)\s*-->$/.exec(before);
      const excerpt = /^<!--\s*excerpt:\s*(\S+)\s*-->$/.exec(before);
      const norunInfo = /\bnorun\b/.test(info);
      const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
      blocks.push({
        where: `${file}:${i + 1}`,
        file,
        fenceLine: i + 1,
        code: body.join('\n'),
        norun: excerpt ? `an excerpt of ${excerpt[1]}` : norunComment ? norunComment[1] || '(no reason given)' : norunInfo ? info.replace(/\bnorun\b/, '').trim() || '(no reason given)' : null,
        excerptOf: excerpt ? excerpt[1] : null,
      });
    }
    i = end;
  }
  return blocks;
}

/**
 * The block as a module whose line n is line n of the markdown file: a first line that imports
 * the assertion helper, blank lines down to the fence, then the code with `// =>` comments
 * turned into assertions.
 */
function moduleSource(block: Block): string {
  const code = block.code.split('\n').map((line, k) => expectations(line, `${block.file}:${block.fenceLine + 1 + k}`));
  const padding = new Array(block.fenceLine - 1).fill('');
  return [`import { __expect } from './__expect';`, ...padding, ...code, 'export {};', ''].join('\n');
}

function expectations(line: string, where: string): string {
  const m = /^(\s*)(\S.*?)\s*\/\/ => (.+)$/.exec(line);
  if (!m || m[2].startsWith('//')) return line;
  const [, indent, code, expected] = m;
  const stmt = code.replace(/;\s*$/, '');
  const decl = /^(?:const|let|var)\s+([A-Za-z_$][\w$]*)\b/.exec(stmt);
  const check = (expr: string) => `__expect(${expr}, (${expected}), ${JSON.stringify(where)});`;
  return decl ? `${indent}${stmt}; ${check(decl[1])}` : `${indent}${check(`(${stmt})`)}`;
}

const EXPECT_HELPER = `
/** Deep equality for the docs' \`// => value\` comments; numbers within 1e-6 relative. */
export function __expect(actual: unknown, expected: unknown, where: string): void {
  const problem = differ(actual, expected, '');
  if (problem !== null) {
    throw new Error(\`\${where}: the doc says \${show(expected)}, the code gives \${show(actual)}\${problem ? \` (at \${problem})\` : ''}\`);
  }
}
function show(x: unknown): string {
  return typeof x === 'string' ? JSON.stringify(x) : JSON.stringify(x, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v)) ?? String(x);
}
function differ(a: unknown, e: unknown, path: string): string | null {
  if (ArrayBuffer.isView(a)) a = Array.from(a as unknown as ArrayLike<number>);
  if (typeof e === 'number' && typeof a === 'number') {
    if (Object.is(a, e) || Math.abs(a - e) <= 1e-9 + 1e-6 * Math.abs(e)) return null;
    return path;
  }
  if (Array.isArray(e)) {
    if (!Array.isArray(a) || a.length !== e.length) return path;
    for (let i = 0; i < e.length; i++) {
      const p = differ(a[i], e[i], \`\${path}[\${i}]\`);
      if (p !== null) return p;
    }
    return null;
  }
  if (e !== null && typeof e === 'object') {
    if (a === null || typeof a !== 'object') return path;
    const ka = Object.keys(a as object).sort();
    const ke = Object.keys(e as object).sort();
    if (ka.join() !== ke.join()) return \`\${path} keys\`;
    for (const k of ke) {
      const p = differ((a as Record<string, unknown>)[k], (e as Record<string, unknown>)[k], \`\${path}.\${k}\`);
      if (p !== null) return p;
    }
    return null;
  }
  return Object.is(a, e) ? null : path;
}
`;

/** esbuild: the specifier 'blockgrad' is this repository's src/index.ts. */
const blockgradAlias: Plugin = {
  name: 'blockgrad-alias',
  setup(b) {
    b.onResolve({ filter: /^blockgrad$/ }, () => ({ path: join(root, 'src/index.ts') }));
  },
};

const blocks = SOURCES.flatMap(extractBlocks);
const runnable = blocks.filter((b) => b.norun === null);
const skipped = blocks.filter((b) => b.norun !== null);

let work = '';
const moduleFile = (b: Block) => join(work, 'blocks', `${b.file.replace(/[/\\]/g, '__')}@${b.fenceLine}.ts`);
const bundleFile = (b: Block) => join(work, 'out', `${b.file.replace(/[/\\]/g, '__')}@${b.fenceLine}.mjs`);
let typeErrors = new Map<string, string[]>();
let buildErrors = new Map<string, string[]>();

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'blockgrad-docs-'));
  mkdirSync(join(work, 'blocks'));
  mkdirSync(join(work, 'run'));
  writeFileSync(join(work, 'blocks', '__expect.ts'), EXPECT_HELPER);
  for (const b of runnable) writeFileSync(moduleFile(b), moduleSource(b));

  // type-check every block against the sources, as a user's strict project would
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    typeRoots: [join(root, 'node_modules/@types')],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    esModuleInterop: true,
    isolatedModules: true,
    paths: { blockgrad: [join(root, 'src/index.ts')] },
  };
  const program = ts.createProgram(runnable.map(moduleFile), options);
  typeErrors = new Map(runnable.map((b) => [moduleFile(b), [] as string[]]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const name = d.file?.fileName ?? '';
    const list = typeErrors.get(resolve(name));
    // errors in the sources themselves are `npx tsc`'s business; here only the blocks are checked
    if (!list) continue;
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    list.push(`line ${line}: ${message}`);
  }

  // bundle every block with blockgrad's sources
  buildErrors = new Map(runnable.map((b) => [moduleFile(b), [] as string[]]));
  const result = await build({
    entryPoints: runnable.map(moduleFile),
    outdir: join(work, 'out'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [blockgradAlias],
    // CommonJS dependencies bundled into an ES module may call require()
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  }).catch((e: { errors?: { text: string; location?: { file: string; line: number } | null }[] }) => {
    for (const err of e.errors ?? []) {
      const file = err.location ? resolve(work, err.location.file) : '';
      const list = buildErrors.get(file);
      const text = `${err.location ? `line ${err.location.line}: ` : ''}${err.text}`;
      if (list) list.push(text);
      else for (const l of buildErrors.values()) l.push(text);
    }
    if (!e.errors) throw e;
    return null;
  });
  if (result && result.errors.length > 0) throw new Error(result.errors.map((e) => e.text).join('\n'));
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function runNode(file: string): Promise<{ code: number | null; signal: string | null; output: string; ms: number }> {
  return new Promise((done) => {
    const start = Date.now();
    const child = spawn(process.execPath, ['--enable-source-maps', file], { cwd: join(work, 'run'), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, output, ms: Date.now() - start });
    });
  });
}

test('the docs have code blocks, and the extractor finds them', () => {
  expect(SOURCES).toEqual(expect.arrayContaining(['README.md', 'docs/getting-started.md', 'docs/autodiff.md', 'docs/badam.md']));
  const count = (file: string) => runnable.filter((b) => b.file === file).length;
  expect(count('README.md')).toBeGreaterThanOrEqual(1);
  expect(count('docs/getting-started.md')).toBeGreaterThanOrEqual(5);
  expect(count('docs/autodiff.md')).toBeGreaterThanOrEqual(1);
  expect(count('docs/badam.md')).toBeGreaterThanOrEqual(1);
});

for (const block of runnable) {
  test(`${block.where} type-checks and runs (exit code 0)`, async () => {
    const where = `${block.where} (line numbers below are lines of ${block.file})`;
    const build = buildErrors.get(moduleFile(block)) ?? [];
    if (build.length > 0) throw new Error(`${where}: esbuild could not bundle it:\n${build.join('\n')}`);
    const types = typeErrors.get(moduleFile(block)) ?? [];
    if (types.length > 0) throw new Error(`${where}: type errors:\n${types.join('\n')}`);
    const run = await runNode(bundleFile(block));
    if (run.code !== 0) {
      const why = run.signal ? `was killed (${run.signal}${run.signal === 'SIGKILL' ? `, over ${RUN_TIMEOUT_MS / 1000} s` : ''})` : `exited with code ${run.code}`;
      throw new Error(`${where} ${why} after ${run.ms} ms:\n${run.output.slice(-4000)}`);
    }
  });
}

for (const block of skipped) {
  test(`${block.where} is marked norun: ${block.norun}`, () => {
    expect(block.norun).not.toBe('(no reason given)');
    if (block.excerptOf) {
      const source = readFileSync(join(root, block.excerptOf), 'utf8');
      if (!source.includes(block.code)) {
        const missing = block.code.split('\n').find((l) => !source.includes(l));
        throw new Error(`${block.where}: the excerpt no longer matches ${block.excerptOf}${missing !== undefined ? `; first line not found: ${JSON.stringify(missing)}` : ''}`);
      }
    }
  });
}
