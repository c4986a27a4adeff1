/**
 * saveSafetensorsFile (and savePretrained's shards) stream: the file is written a tensor at a
 * time, so the largest write is one tensor's bytes, never the whole file; the bytes are those
 * of saveSafetensors; a failure part-way leaves no file.
 */
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, randn, saveSafetensors, saveSafetensorsFile, tensor, type Tensor } from '../../src';

/** Runs fn with every FileHandle.write recorded (its byte count). */
async function recordingWrites(fn: () => Promise<void>): Promise<number[]> {
  const writes: number[] = [];
  const realOpen = fs.promises.open;
  const spy = jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof realOpen>) => {
    const handle = await realOpen(...args);
    const realWrite = handle.write.bind(handle) as (b: Uint8Array, o?: number, l?: number) => Promise<{ bytesWritten: number }>;
    (handle as unknown as { write: typeof realWrite }).write = async (b, o, l) => {
      writes.push(l ?? b.length);
      return realWrite(b, o, l);
    };
    return handle;
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return writes;
}

const dir = mkdtempSync(join(tmpdir(), 'blockgrad-stream-'));
const generator = new Generator(3);
const tensors: Record<string, Tensor> = {
  big: randn([64, 64], { generator }), // 16 KiB, the largest
  small: randn([3, 5], { generator, dtype: 'float64' }),
  ids: tensor([1, 2, 3], { dtype: 'int32' }),
};

test('one write for the head, then one per tensor; the largest is one tensor; the bytes are saveSafetensors\'s', async () => {
  const path = join(dir, 'a.safetensors');
  const writes = await recordingWrites(() => saveSafetensorsFile(path, tensors, { format: 'pt' }));
  expect(writes.length).toBe(4);
  expect(Math.max(...writes)).toBe(64 * 64 * 4);
  expect(new Uint8Array(readFileSync(path))).toEqual(saveSafetensors(tensors, { format: 'pt' }));
});

test('a tensor that fails part-way (disposed after the plan checked it) leaves no file and no temporary', async () => {
  const path = join(dir, 'b.safetensors');
  const doomed = randn([4, 4], { generator });
  const save = saveSafetensorsFile(path, { a: randn([8, 8], { generator }), z: doomed });
  doomed.dispose(); // the plan has checked it; encoding it, later, fails
  await expect(save).rejects.toThrow();
  expect(readdirSync(dir).filter((f) => f.startsWith('b.safetensors'))).toEqual([]);
});
