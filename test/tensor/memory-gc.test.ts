/**
 * Buffers must be freeable by the garbage collector in the middle of a synchronous loop.
 * Finalization callbacks only run between jobs, so a finalizer must not hold a buffer's data
 * (it holds the buffer's small ledger): otherwise a training loop that never yields keeps every
 * intermediate tensor's storage alive. Runs in a child `node --expose-gc` to control the GC.
 */
import { buildSync } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

test('a synchronous loop of temporary tensors does not retain their storage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blockgrad-gc-'));
  const entry = join(dir, 'loop.ts');
  writeFileSync(
    entry,
    `import { ones, memory } from ${JSON.stringify(resolve(__dirname, '../../src'))};
     const gc = (globalThis as any).gc as () => void;
     gc();
     const before = process.memoryUsage().arrayBuffers;
     let keep = 0;
     for (let i = 0; i < 100; i++) {
       const t = ones([262144]).mul(2); // two 1 MiB float32 buffers per iteration, then dropped
       keep += t.numel;
       if (i % 10 === 9) gc();
     }
     gc();
     const grown = process.memoryUsage().arrayBuffers - before;
     memory.settle().then(() => {
       console.log(JSON.stringify({ grownMiB: grown / 2 ** 20, keep, live: memory.stats().liveBytes / 2 ** 20 }));
     });`,
  );
  const out = join(dir, 'loop.cjs');
  buildSync({ entryPoints: [entry], outfile: out, bundle: true, platform: 'node', format: 'cjs', logLevel: 'silent' });
  const run = spawnSync(process.execPath, ['--expose-gc', out], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  const result = JSON.parse(run.stdout.trim());
  expect(result.keep).toBe(100 * 262144);
  // 200 MiB went through the loop; at most a few buffers may be alive at the last gc()
  expect(result.grownMiB).toBeLessThan(20);
  // and once the finalizers have run, the accounting agrees: nothing of the loop is counted live
  expect(result.live).toBeLessThan(1);
});
