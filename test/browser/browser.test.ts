/**
 * blockgrad in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core, which downloads nothing) opens the browser example (examples/browser/, served by
 * scripts/serve-browser-example.mjs on a free port), where the gpu backend runs on WebGL2 and
 * BAdam trains a tiny Llama. Checks that gpu.js really chose WebGL2 (software WebGL here: the
 * browser runs with --disable-gpu), that the loss falls, and that the losses match the same run
 * on the cpu backend in Node; then that the package's browser bundle (dist/browser/blockgrad.mjs,
 * from `npm run build`) loads as an ES module and computes on WebGL2.
 *
 * Without /usr/bin/chromium the tests are skipped with a message, except in CI (CI set), where
 * that is a failure: .ci/run installs chromium.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { setBackend } from '../../src';
import { DEFAULT_STEPS, tinyLlamaRun } from '../../examples/browser/train';

const root = resolve(__dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const BUNDLE = join(root, 'dist/browser/blockgrad.mjs');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What the example page writes into <pre id="status"> (examples/browser/main.ts). */
interface PageStatus {
  done: boolean;
  error: string | null;
  backend: string | null;
  mode: string | null;
  info: { kernelsCompiled: number; precision: string; threads?: number; simd?: boolean; sharedMemory?: boolean; threadsReason?: string } | null;
  steps: number;
  losses: number[];
  blocks: string[];
  activeBlock: string | null;
  elapsedMs: number;
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Starts the example server on a free port (--port 0); resolves to it and its URL. */
function startServer(): Promise<{ server: ChildProcess; url: string }> {
  const server = spawn(process.execPath, [join(root, 'scripts/serve-browser-example.mjs'), '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      server.kill('SIGTERM'); // nothing else holds it: stop it rather than leave it on its port
      fail(new Error(`the example server did not start in 60 s:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer): void => {
      output += chunk;
      const match = /serving (http:\/\/\S+)\n/.exec(output);
      if (match) {
        clearTimeout(timer);
        done({ server, url: match[1] });
      }
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', (chunk: Buffer) => (output += chunk));
    server.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the example server exited with ${code} before serving:\n${output}`));
    });
  });
}

/** A page whose uncaught errors and console errors are collected (GL driver chatter is a warning). */
async function openPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
  });
  return { page, errors };
}

/** Fails (never skips) when the bundle is missing or older than the sources, as test/package.test.ts does. */
function requireBuiltBundle(): void {
  if (!existsSync(BUNDLE)) {
    throw new Error(`${relative(root, BUNDLE)} is missing: run \`npm run build\` first (\`npm test\` builds before running jest)`);
  }
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (statSync(BUNDLE).mtimeMs < newest(join(root, 'src'))) {
    throw new Error(`${relative(root, BUNDLE)} is older than src/: run \`npm run build\` to rebuild it before testing it`);
  }
}

if (!existsSync(CHROMIUM)) {
  const why = `no Chromium at ${CHROMIUM} (install it: apt-get install chromium)`;
  if (process.env.CI) {
    test('Chromium is installed for the browser tests', () => {
      throw new Error(`${why}; .ci/run installs it before npm ci`);
    });
  } else {
    console.warn(`test/browser: skipped, ${why}`);
    test.skip(`browser example: skipped, ${why}`, () => {});
  }
} else {
  describe('in headless Chromium', () => {
    let server: ChildProcess | undefined;
    let url = '';
    let browser: Browser | undefined;

    beforeAll(async () => {
      ({ server, url } = await startServer());
      // launch() runs the browser with a fresh temporary profile (user-data dir) that
      // playwright-core deletes at close
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    }, 120_000);

    afterAll(async () => {
      try {
        await browser?.close();
      } finally {
        if (server && server.exitCode === null) {
          const exited = new Promise((done) => server!.once('exit', done));
          server.kill('SIGTERM');
          await exited;
        }
      }
    });

    it('trains the tiny Llama with BAdam on the gpu backend in WebGL2 mode, and the loss falls as on the cpu backend', async () => {
      const { page, errors } = await openPage(browser!);
      const t0 = Date.now();
      await page.goto(url);
      // the predicate runs in the page; a string keeps the DOM's types out of the Node-side type check
      await page.waitForFunction("JSON.parse(document.getElementById('status').textContent || '{}').done === true", null, {
        timeout: 150_000,
        polling: 250,
      });
      const status = JSON.parse((await page.textContent('#status'))!) as PageStatus;
      console.log(
        `browser example: ${status.losses.length} steps in ${(status.elapsedMs / 1000).toFixed(1)} s on ${status.backend}/${status.mode} ` +
          `(page total ${((Date.now() - t0) / 1000).toFixed(1)} s); loss ${status.losses[0]?.toFixed(3)} -> ${status.losses.at(-1)?.toFixed(3)}`,
      );
      await page.close();

      expect(status.error).toBeNull();
      expect(errors).toEqual([]);
      // what backendInfo() reported in the page: gpu.js chose WebGL2 by itself
      expect(status.backend).toBe('gpu');
      expect(status.mode).toBe('webgl2');
      expect(status.info!.precision).toBe('single');
      expect(status.info!.kernelsCompiled).toBeGreaterThan(0);

      expect(status.losses).toHaveLength(DEFAULT_STEPS);
      for (const loss of status.losses) expect(Number.isFinite(loss)).toBe(true);
      // the untrained model predicts about uniformly over the 259 byte-tokenizer ids
      expect(Math.abs(status.losses[0] - Math.log(259))).toBeLessThan(0.2);
      expect(mean(status.losses.slice(-5))).toBeLessThan(0.8 * mean(status.losses.slice(0, 5)));

      // The same run on the cpu backend, here in Node: same blocks in the same order, same
      // losses up to float32 rounding (WebGL computes in float32, the cpu backend in float64;
      // the runs agree to ~1e-3 over 40 steps, the tolerance leaves room for drift).
      setBackend('cpu');
      const reference = [...tinyLlamaRun(DEFAULT_STEPS).steps];
      expect(status.blocks).toEqual(reference.map((r) => r.block));
      expect(new Set(status.blocks).size).toBe(4); // head, layer 1, layer 0, embedding: every block trained
      status.losses.forEach((loss, i) => {
        const expected = reference[i].loss;
        if (Math.abs(loss - expected) > 2e-2 * Math.abs(expected)) {
          throw new Error(`step ${i}: browser loss ${loss}, cpu backend ${expected} (relative tolerance 2e-2)`);
        }
      });
    }, 180_000);

    // served with COOP/COEP (the example server's default), the page shares memory with Web
    // Workers; without them (?isolated=0, as most sites) it runs one thread on an ordinary memory
    it.each([
      { isolated: true, threads: 2, what: 'cross-origin isolated: two threads, Web Workers over shared memory' },
      { isolated: false, threads: 1, what: 'not isolated: one thread on an ordinary memory' },
    ])('trains the same run on the wasm backend, $what; losses as on the cpu backend', async ({ isolated: wantIsolated, threads }) => {
      const { page, errors } = await openPage(browser!);
      const t0 = Date.now();
      await page.goto(`${url}?backend=wasm&threads=2${wantIsolated ? '' : '&isolated=0'}`);
      await page.waitForFunction("JSON.parse(document.getElementById('status').textContent || '{}').done === true", null, {
        timeout: 150_000,
        polling: 250,
      });
      const status = JSON.parse((await page.textContent('#status'))!) as PageStatus;
      console.log(
        `browser example: ${status.losses.length} steps in ${(status.elapsedMs / 1000).toFixed(1)} s on ${status.backend}/${status.mode} ` +
          `with ${status.info?.threads} threads (page total ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
      const isolated = await page.evaluate('globalThis.crossOriginIsolated');
      await page.close();

      expect(status.error).toBeNull();
      expect(errors).toEqual([]);
      expect(isolated).toBe(wantIsolated); // the example server's COOP/COEP headers, or none
      expect(status.backend).toBe('wasm');
      expect(status.info).toMatchObject({ simd: true, sharedMemory: wantIsolated, threads, precision: 'double' });
      // the page asked for two threads: without isolation, backendInfo says why it got one
      expect(status.info?.threadsReason).toMatch(wantIsolated ? /^$/ : /not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin/);
      expect(status.losses).toHaveLength(DEFAULT_STEPS);

      // wasm matmul sums in float32 lanes, the cpu backend in doubles: the runs agree to float32 rounding
      setBackend('cpu');
      const reference = [...tinyLlamaRun(DEFAULT_STEPS).steps];
      expect(status.blocks).toEqual(reference.map((r) => r.block));
      status.losses.forEach((loss, i) => {
        const expected = reference[i].loss;
        if (Math.abs(loss - expected) > 1e-3 * Math.abs(expected)) {
          throw new Error(`step ${i}: browser wasm loss ${loss}, cpu backend ${expected} (relative tolerance 1e-3)`);
        }
      });
    }, 180_000);

    it("loads the package's browser bundle (dist/browser/blockgrad.mjs) as an ES module and runs a matmul on WebGL2", async () => {
      requireBuiltBundle();
      const { page, errors } = await openPage(browser!);
      // one training step: this test is about the bundle, not a second training run beside it
      await page.goto(`${url}?steps=1`);
      // a string, not a function: ts-jest would compile a function's import() into require()
      const result = (await page.evaluate(`(async () => {
        const bg = await import('/dist/browser/blockgrad.mjs');
        bg.setBackend('gpu');
        const a = bg.tensor([[1, 2], [3, 4]], { requiresGrad: true });
        const y = a.matmul(a).sum();
        y.backward();
        return { info: bg.backendInfo(), y: y.item(), grad: a.grad.toArray() };
      })()`)) as { info: { backend: string; mode: string }; y: number; grad: number[][] };
      await page.close();

      expect(errors).toEqual([]);
      expect(result.info.backend).toBe('gpu');
      expect(result.info.mode).toBe('webgl2');
      // a @ a = [[7, 10], [15, 22]], sum 54; d/da sum(a @ a) = 1 @ a^T + a^T @ 1 = [[7, 11], [9, 13]]
      expect(result.y).toBe(54);
      expect(result.grad).toEqual([
        [7, 11],
        [9, 13],
      ]);
    }, 120_000);
  });
}
