/**
 * Choosing a backend: modes that cannot run here fail with a BackendError naming what is missing
 * (and leave the active backend as it was), backendInfo() reports what really runs, and tensors
 * of one backend are refused by the other's kernels with a remedy.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  BackendError,
  GPU_MODES,
  add,
  availableGpuModes,
  backendInfo,
  getBackendName,
  listBackends,
  setBackend,
  tensor,
} from '../../src';
import { valuesOf } from './helpers';

/** The error fn throws (failing the test when it throws nothing). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, none was thrown');
}

afterEach(() => setBackend('cpu'));

describe('gpu modes that cannot run here', () => {
  test("setBackend('gpu', { mode: 'webgl2' }) in Node throws a BackendError naming what is missing, and changes nothing", () => {
    setBackend('gpu', { mode: 'cpu' });
    const x = tensor([1, 2, 3], { dtype: 'float32' });
    const error = thrown(() => setBackend('gpu', { mode: 'webgl2' }));
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toMatch(/gpu mode 'webgl2' is not available: WebGL2 needs a browser.*in Node use headlessgl/);
    // the gpu backend made before still runs, and is still the active one
    expect(getBackendName()).toBe('gpu');
    expect(backendInfo().mode).toBe('cpu');
    expect(valuesOf(add(x, x))).toEqual([2, 4, 6]);
  });

  test("'webgl' too, and an unknown mode lists the valid ones", () => {
    expect(thrown(() => setBackend('gpu', { mode: 'webgl' })).message).toMatch(/gpu mode 'webgl' is not available: WebGL needs a browser/);
    const unknown = thrown(() => setBackend('gpu', { mode: 'metal' }));
    expect(unknown).toBeInstanceOf(BackendError);
    expect(unknown.message).toContain(`unknown gpu mode 'metal'; modes: ${GPU_MODES.join(', ')}`);
    expect(getBackendName()).toBe('cpu');
  });

  // Without a display (or without the native module) headlessgl is missing and the error says
  // which. Jest runs under xvfb-run, so this runs in a child process without DISPLAY, on the built
  // CommonJS bundle (`npm test` builds first, as test/package.test.ts needs too).
  test('headlessgl without a display names the display or the native module', () => {
    const bundle = resolve(__dirname, '../../dist/cjs/index.cjs');
    if (!existsSync(bundle)) throw new Error('dist/cjs/index.cjs is missing: run `npm run build` first');
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DISPLAY;
    const script =
      `const bg = require(${JSON.stringify(bundle)});` +
      "try { bg.setBackend('gpu', { mode: 'headlessgl' }); console.log('no error'); }" +
      ' catch (e) { console.log(`${e.name}: ${e.message}`); }';
    const run = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 60_000 });
    expect(run.stdout.trim()).toMatch(
      /^BackendError: setBackend: gpu mode 'headlessgl' is not available: (no X display for the 'gl' module \(DISPLAY is unset\): run under `xvfb-run -a`|the native 'gl' module is not installed)/,
    );
  });

  test('an unknown backend name is refused with the registered ones', () => {
    expect(listBackends()).toEqual(expect.arrayContaining(['cpu', 'gpu']));
    expect(thrown(() => setBackend('tpu')).message).toMatch(/unknown backend 'tpu'; registered backends: cpu, gpu/);
  });
});

describe('availableGpuModes', () => {
  test('cpu and webasm run anywhere in Node; the browser modes never do', () => {
    const modes = availableGpuModes();
    expect(modes).toEqual(expect.arrayContaining(['cpu', 'webasm']));
    expect(modes).not.toContain('webgl2');
    expect(modes).not.toContain('webgl');
  });

  test("setBackend('gpu', {}) lets gpu.js choose, and reports the best available mode", () => {
    setBackend('gpu', {});
    expect(backendInfo().mode).toBe(availableGpuModes()[0]);
  });
});

describe('backendInfo', () => {
  test.each(availableGpuModes())('gpu mode %s: that mode, precision single, 2^24 elements at most', (mode) => {
    setBackend('gpu', { mode });
    const before = backendInfo();
    const gl = mode === 'headlessgl';
    expect(before).toMatchObject({ backend: 'gpu', mode, precision: 'single', maxElements: 2 ** 24 });
    if (gl) expect(before.maxTextureSize).toBeGreaterThanOrEqual(1024);
    else expect(before.maxTextureSize).toBeNull();
    // a kernel of a new shape is compiled and cached
    const x = tensor([1, 2, 3, 4, 5, 6, 7], { dtype: 'float32' });
    expect(valuesOf(add(x, 1))).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(backendInfo().kernelsCompiled).toBeGreaterThan(before.kernelsCompiled);
  });

  test('cpu: precision double, no element limit; backendInfo(name) asks another backend', () => {
    const cpu = { backend: 'cpu', mode: 'cpu', precision: 'double', maxTextureSize: null, maxElements: null, kernelsCompiled: 0 };
    expect(backendInfo()).toEqual(cpu);
    setBackend('gpu', { mode: 'cpu' });
    expect(backendInfo('cpu')).toEqual(cpu);
    expect(backendInfo('gpu').precision).toBe('single');
  });
});

describe('tensors stay on their backend', () => {
  test('a cpu tensor given to a gpu kernel is refused with a BackendError that says what to do', () => {
    const a = tensor([1, 2], { dtype: 'float32' });
    setBackend('gpu', { mode: 'cpu' });
    const error = thrown(() => add(a, a));
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toMatch(/^add: an operand of shape \[2\] lives on backend 'cpu' but the active backend is 'gpu'; create tensors after setBackend\('gpu'\)/);
  });

  test('a gpu tensor outlives a switch back to cpu: its values are still readable', () => {
    setBackend('gpu', { mode: 'webasm' });
    const a = tensor([1.5, -2, 3], { dtype: 'float32' });
    const b = add(a, a);
    setBackend('cpu');
    expect(b.backend).toBe('gpu');
    expect(valuesOf(b)).toEqual([3, -4, 6]);
  });
});
