/**
 * The built package, loaded the way a user loads it: by its name, through package.json's
 * `exports` map, from a project that has blockgrad in node_modules (a symlink to this repo).
 * Runs against dist/, so it needs `npm run build` first (`npm test` does that); without a
 * build it fails and says so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const CJS = join(root, 'dist/cjs/index.cjs');
const ESM = join(root, 'dist/esm/index.mjs');
const TYPES = join(root, 'dist/types/index.d.ts');

/** Fails (never skips) when the build output is missing or older than the sources. */
function requireBuilt(file: string): void {
  if (!existsSync(file)) {
    throw new Error(`${relative(root, file)} is missing: run \`npm run build\` first (\`npm test\` builds before running jest)`);
  }
  const newestSrc = newestMtime(join(root, 'src'));
  if (statSync(file).mtimeMs < newestSrc.mtimeMs) {
    throw new Error(
      `${relative(root, file)} is older than ${relative(root, newestSrc.path)}: run \`npm run build\` to rebuild dist/ before testing it`,
    );
  }
}

function newestMtime(dir: string): { path: string; mtimeMs: number } {
  let best = { path: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    const candidate = entry.isDirectory() ? newestMtime(p) : { path: p, mtimeMs: statSync(p).mtimeMs };
    if (candidate.mtimeMs > best.mtimeMs) best = candidate;
  }
  return best;
}

/** A scratch project whose node_modules/blockgrad is a symlink to this repository. */
let project: string;
beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'blockgrad-consumer-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'blockgrad'), 'dir');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
});
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

/** Runs a script file in the scratch project with Node and returns its parsed JSON output. */
function runNode(file: string, source: string): Record<string, unknown> {
  writeFileSync(join(project, file), source);
  const run = spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 30000 });
  if (run.status !== 0) throw new Error(`node ${file} exited with ${run.status}:\n${run.stderr}${run.stdout}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() as string);
}

/** The same computation in both module formats: d/dx sum(x*x) = 2x, and a typed error. */
const BODY = `
const x = bg.tensor([1, 2, 3], { requiresGrad: true });
const y = x.mul(x).sum();
y.backward();
let errorName = null;
let isShapeError = false;
try {
  bg.tensor([1, 2]).add(bg.tensor([1, 2, 3]));
} catch (e) {
  errorName = e.name;
  isShapeError = e instanceof bg.ShapeError && e instanceof bg.BlockgradError;
}
const noGradY = bg.noGrad(() => x.mul(2));
const out = {
  value: y.item(),
  grad: x.grad.toArray(),
  dtype: x.dtype,
  gradFnOp: y.gradFn && y.gradFn.op,
  noGradRequiresGrad: noGradY.requiresGrad,
  errorName,
  isShapeError,
  exports: Object.keys(bg).sort(),
};
`;

describe('the built package', () => {
  it('require("blockgrad") loads dist/cjs/index.cjs through the exports map and runs backward', () => {
    requireBuilt(CJS);
    const out = runNode(
      'check.cjs',
      `const bg = require('blockgrad');\n${BODY}\nout.resolved = require.resolve('blockgrad');\nconsole.log(JSON.stringify(out));\n`,
    );
    expect(out.resolved).toBe(CJS);
    expect(out.value).toBe(14);
    expect(out.grad).toEqual([2, 4, 6]);
    expect(out.dtype).toBe('float32');
    expect(out.gradFnOp).toBe('sum');
    expect(out.noGradRequiresGrad).toBe(false);
    expect(out.errorName).toBe('ShapeError');
    expect(out.isShapeError).toBe(true);
  });

  it('import("blockgrad") loads dist/esm/index.mjs and exports the same names as the CommonJS build', () => {
    requireBuilt(ESM);
    requireBuilt(CJS);
    const esm = runNode(
      'check.mjs',
      `const bg = await import('blockgrad');\n${BODY}\nout.resolved = new URL(import.meta.resolve('blockgrad')).pathname;\nconsole.log(JSON.stringify(out));\n`,
    );
    expect(esm.resolved).toBe(ESM);
    expect(esm.value).toBe(14);
    expect(esm.grad).toEqual([2, 4, 6]);
    expect(esm.errorName).toBe('ShapeError');
    expect(esm.isShapeError).toBe(true);
    const cjs = runNode('names.cjs', `console.log(JSON.stringify({ exports: Object.keys(require('blockgrad')).sort() }));\n`);
    expect(esm.exports).toEqual(cjs.exports);
    for (const name of ['Tensor', 'tensor', 'randn', 'zeros', 'manualSeed', 'noGrad', 'grad', 'profile', 'gradcheck', 'memory', 'ShapeError']) {
      expect(esm.exports).toContain(name);
    }
  });

  it('keeps dependencies external instead of bundling them', () => {
    requireBuilt(CJS);
    requireBuilt(ESM);
    const cli = readFileSync(join(root, 'dist/cli/blockgrad.cjs'), 'utf8');
    // the command line's own dependency: the library's bundles never load it
    const CLI_ONLY = ['commander'];
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      if (CLI_ONLY.includes(dep)) {
        expect(cli).toContain(`require("${dep}")`);
        expect(readFileSync(CJS, 'utf8')).not.toContain(`require("${dep}")`);
        continue;
      }
      expect(readFileSync(CJS, 'utf8')).toContain(`require("${dep}")`);
      expect(readFileSync(ESM, 'utf8')).toMatch(new RegExp(`from "${dep.replace('/', '\\/')}"`));
    }
    // the command line loads the library from dist/cjs instead of carrying a copy of it
    expect(cli).toContain('require("../cjs/index.cjs")');
    expect(cli).not.toContain('class Tensor');
    expect(existsSync(`${CJS}.map`)).toBe(true);
    expect(existsSync(`${ESM}.map`)).toBe(true);
  });

  it('dist/types/index.d.ts declares Tensor and a TypeScript consumer type-checks against it', () => {
    requireBuilt(TYPES);
    expect(pkg.exports['.'].types).toBe('./dist/types/index.d.ts');
    expect(readFileSync(TYPES, 'utf8')).toMatch(/export \{[^}]*\bTensor\b/);
    const tensorDts = readFileSync(join(root, 'dist/types/tensor/tensor.d.ts'), 'utf8');
    expect(tensorDts).toMatch(/export declare class Tensor\b/);

    // A strict consumer without @types/node or jest: the declarations must stand on their own.
    writeFileSync(
      join(project, 'consumer.ts'),
      [
        "import { tensor, Tensor, ShapeError, profile, type DType } from 'blockgrad';",
        'const x: Tensor = tensor([1, 2, 3], { requiresGrad: true });',
        'const y: Tensor = x.mul(x).sum();',
        'const { report } = profile(() => y.backward());',
        'const runs: number = report.nodesRun;',
        'const g: Tensor | null = x.grad;',
        "const d: DType = x.dtype;",
        'const e: ShapeError | null = null;',
        'export { runs, g, d, e };',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          lib: ['ES2022'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: [],
          skipLibCheck: false,
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const run = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], {
      cwd: project,
      encoding: 'utf8',
      timeout: 60000,
    });
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
    expect(run.status).toBe(0);
  });
});

/**
 * What a user gets from `npm install blockgrad`: the packed package installed into an empty
 * project. gpu.js is an optional peer dependency, so neither it nor its native `gl` module (which
 * would build from source) is installed; both builds load and compute, and setBackend('gpu')
 * names the package to install. Dependencies come from npm's cache where `npm ci` left them.
 */
describe('npm pack, installed in an empty project', () => {
  let consumer: string;
  const npm = (args: string[], cwd: string) => {
    const run = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
    if (run.status !== 0) throw new Error(`npm ${args.join(' ')} exited with ${run.status}:\n${run.stderr}${run.stdout}`);
    return run.stdout;
  };

  beforeAll(() => {
    requireBuilt(CJS);
    requireBuilt(ESM);
    const packDir = mkdtempSync(join(tmpdir(), 'blockgrad-pack-'));
    const [{ filename }] = JSON.parse(npm(['pack', '--json', '--pack-destination', packDir], root)) as { filename: string }[];
    consumer = mkdtempSync(join(tmpdir(), 'blockgrad-installed-'));
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    npm(['install', '--prefer-offline', '--no-package-lock', join(packDir, filename)], consumer);
    rmSync(packDir, { recursive: true, force: true });
  }, 300_000);
  afterAll(() => {
    if (consumer) rmSync(consumer, { recursive: true, force: true });
  });

  test('neither gpu.js nor gl is installed', () => {
    expect(existsSync(join(consumer, 'node_modules', 'blockgrad', 'dist', 'cjs', 'index.cjs'))).toBe(true);
    expect(existsSync(join(consumer, 'node_modules', 'gpu.js'))).toBe(false);
    expect(existsSync(join(consumer, 'node_modules', 'gl'))).toBe(false);
  });

  const script = (load: string) =>
    [
      load,
      'const sum = Array.from(bg.tensor([1, 2, 3]).mul(2).toTypedArray());',
      'let gpuError = null;',
      "try { bg.setBackend('gpu'); } catch (e) { gpuError = `${e.name}: ${e.message}`; }",
      'console.log(JSON.stringify({ backend: bg.getBackendName(), sum, modes: bg.availableGpuModes(), gpuError }));',
    ].join('\n');
  const expected = {
    backend: 'wasm',
    sum: [2, 4, 6],
    modes: [],
    gpuError: 'BackendError: setBackend: the gpu backend needs gpu.js, an optional peer dependency that is not installed: run `npm install gpu.js`',
  };

  test.each([
    ['require (CommonJS)', 'check.cjs', "const bg = require('blockgrad');"],
    ['import (ES module)', 'check.mjs', "import * as bg from 'blockgrad';"],
  ])('%s: computes on the default backend; setBackend("gpu") names the package to install', (_, file, load) => {
    writeFileSync(join(consumer, file), script(load));
    const run = spawnSync(process.execPath, [file], { cwd: consumer, encoding: 'utf8', timeout: 30000 });
    if (run.status !== 0) throw new Error(`node ${file} exited with ${run.status}:\n${run.stderr}${run.stdout}`);
    expect(JSON.parse(run.stdout.trim().split('\n').pop() as string)).toEqual(expected);
  });

  test('the blockgrad command is installed: `npx blockgrad finetune` fine-tunes a fresh model and saves it', () => {
    const data = join(consumer, 'data.json');
    writeFileSync(data, JSON.stringify([{ instruction: 'Say hi.', output: 'hi' }, { instruction: 'Say bye.', output: 'bye' }]));
    const run = spawnSync('npx', ['--no-install', 'blockgrad', 'finetune', '--data', 'data.json', '--steps', '2', '--max-length', '64', '--out', 'run'], {
      cwd: consumer,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (run.status !== 0) throw new Error(`npx blockgrad finetune exited with ${run.status}:\n${run.stderr}${run.stdout}`);
    expect(run.stdout).toMatch(/done: 2 steps, last loss \d+\.\d{4}/);
    expect(existsSync(join(consumer, 'run', 'checkpoint-000002', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(consumer, 'run', 'metrics.jsonl'))).toBe(true);
  });
});
