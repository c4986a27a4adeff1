#!/usr/bin/env node
// Builds the package (`npm run build`):
//   1. type checks: `tsc -p tsconfig.build.json` emits declarations into dist/types, and
//      `tsc -p tsconfig.json --noEmit` checks tests, benchmarks and examples too;
//   2. bundles src/index.ts with esbuild, as ESM (dist/esm/index.mjs) and CommonJS
//      (dist/cjs/index.cjs), with source maps and every package dependency left external.
// The two tsc runs and the bundling run in parallel; any type error fails the build.
// The bundles target platform 'neutral' (no Node built-ins are assumed), because the same
// code must later run in browsers.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const tscBin = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const started = performance.now();

const dist = join(root, 'dist');
for (const sub of ['types', 'esm', 'cjs']) rmSync(join(dist, sub), { recursive: true, force: true });
mkdirSync(join(root, '.tmp'), { recursive: true });

/** Runs the local tsc with args; resolves to { ok, output, ms }. */
function tsc(label, args) {
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [tscBin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => done({ label, ok: false, output: String(err), ms: performance.now() - t0 }));
    child.on('close', (code) => done({ label, ok: code === 0, output, ms: performance.now() - t0 }));
  });
}

// A library does not bundle its dependencies (today only @petamoriken/float16).
const external = [
  ...Object.keys(pkg.dependencies ?? {}),
  ...Object.keys(pkg.peerDependencies ?? {}),
  ...Object.keys(pkg.optionalDependencies ?? {}),
];
const common = {
  absWorkingDir: root,
  entryPoints: ['src/index.ts'],
  bundle: true,
  platform: 'neutral',
  target: 'es2022',
  external,
  sourcemap: true,
  logLevel: 'silent',
  metafile: false,
};

async function bundle(label, options) {
  const t0 = performance.now();
  try {
    const result = await build({ ...common, ...options });
    const warnings = result.warnings.map((w) => `warning: ${w.text}`).join('\n');
    return { label, ok: true, output: warnings, ms: performance.now() - t0 };
  } catch (err) {
    const text = err.errors ? err.errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('\n') : String(err);
    return { label, ok: false, output: text, ms: performance.now() - t0 };
  }
}

const steps = await Promise.all([
  tsc('tsc -p tsconfig.build.json (declarations -> dist/types)', ['-p', 'tsconfig.build.json', '--pretty', 'false']),
  tsc('tsc -p tsconfig.json --noEmit (src, test, bench, examples)', [
    '-p', 'tsconfig.json', '--noEmit', '--pretty', 'false',
    '--incremental', '--tsBuildInfoFile', join('.tmp', 'typecheck.tsbuildinfo'),
  ]),
  bundle('esbuild -> dist/esm/index.mjs', { format: 'esm', outfile: 'dist/esm/index.mjs' }),
  bundle('esbuild -> dist/cjs/index.cjs', { format: 'cjs', outfile: 'dist/cjs/index.cjs' }),
]);

let failed = false;
for (const s of steps) {
  console.log(`${s.ok ? 'ok  ' : 'FAIL'} ${s.label} (${(s.ms / 1000).toFixed(1)} s)`);
  if (s.output.trim()) console[s.ok ? 'log' : 'error'](s.output.trim().replace(/^/gm, '     '));
  failed ||= !s.ok;
}
if (failed) {
  console.error('build failed: fix the errors above (dist/ is incomplete or stale until the build passes)');
  process.exit(1);
}
console.log(`build done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
