/**
 * gpu.js is an optional peer dependency: without it, blockgrad imports and runs on its other
 * backends, availableGpuModes() is empty, and setBackend('gpu') says what to install. Here its
 * absence is simulated in a fresh module registry (jest.doMock makes `require('gpu.js')` fail as
 * Node does for a package that is not installed); test/package.test.ts shows the same on a real
 * install of the packed package.
 */
test("without gpu.js: the other backends run, no gpu mode is available, and setBackend('gpu') names the package to install", () => {
  jest.isolateModules(() => {
    jest.doMock('gpu.js', () => {
      const err = new Error("Cannot find module 'gpu.js'") as Error & { code: string };
      err.code = 'MODULE_NOT_FOUND';
      throw err;
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bg = require('../../src') as typeof import('../../src');
    expect(bg.availableGpuModes()).toEqual([]);
    for (const options of [undefined, { mode: 'cpu' as const }]) {
      let caught: unknown = null;
      try {
        bg.setBackend('gpu', options);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(bg.BackendError);
      expect((caught as Error).message).toBe(
        'setBackend: the gpu backend needs gpu.js, an optional peer dependency that is not installed: run `npm install gpu.js`',
      );
    }
    bg.setBackend('cpu');
    expect(Array.from(bg.tensor([1, 2, 3]).mul(2).toTypedArray())).toEqual([2, 4, 6]);
  });
});
