/**
 * Reading safetensors by byte ranges: a file past 2 GiB (made sparse here, so it takes no disk
 * and no time to write) opens and gives up the tensor at its far end without the file ever being
 * in memory whole; `openSafetensors` reads the header only and loads tensors when asked; a file
 * that shrinks under an open reader fails with a SafetensorsError.
 */
import { closeSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError, loadSafetensors, openSafetensors, saveSafetensors, tensor } from '../../src';
import { flat } from '../helpers';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'blockgrad-ranges-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A header (8-byte length, then JSON padded with spaces to a multiple of 8) for the given entries. */
function headerBytes(entries: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>): Uint8Array {
  let json = JSON.stringify({ __metadata__: { format: 'pt' }, ...entries });
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  return out;
}

test('a file past 2 GiB opens, and its last tensor loads without the file being read whole', () => {
  const zeros = 2 ** 29 + 2 ** 20; // float32: 2 GiB + 4 MiB of zeros, left as a hole in the file
  const tail = Float32Array.from([1.5, -2, 3.25, 7]);
  const header = headerBytes({
    zeros: { dtype: 'F32', shape: [zeros], data_offsets: [0, 4 * zeros] },
    tail: { dtype: 'F32', shape: [4], data_offsets: [4 * zeros, 4 * zeros + 16] },
  });
  const path = join(dir, 'large.safetensors');
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header, 0, header.length, 0);
    writeSync(fd, new Uint8Array(tail.buffer), 0, 16, header.length + 4 * zeros);
  } finally {
    closeSync(fd);
  }
  expect(statSync(path).size).toBeGreaterThan(2 ** 31); // past what Node reads into one buffer

  const before = process.memoryUsage().arrayBuffers;
  const reader = openSafetensors(path);
  try {
    expect(reader.names).toEqual(['zeros', 'tail']);
    expect(reader.metadata).toEqual({ format: 'pt' });
    expect(reader.info('zeros')).toEqual({ dtype: 'F32', shape: [zeros] });
    const t = reader.load('tail');
    expect(t.dtype).toBe('float32');
    expect(flat(t)).toEqual([1.5, -2, 3.25, 7]);
  } finally {
    reader.close();
  }
  // the header and 16 bytes of data were read, not 2 GiB
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
});

describe('openSafetensors', () => {
  const bytes = saveSafetensors({ a: tensor([[1, 2], [3, 4]], { dtype: 'float32' }), b: tensor([5, 6, 7], { dtype: 'int32' }) }, { note: 'x' });

  it('gives the header without reading data, then each tensor as asked, equal to what loadSafetensors gives', () => {
    const reader = openSafetensors(bytes);
    expect(reader.names).toEqual(['a', 'b']);
    expect(reader.metadata).toEqual({ note: 'x' });
    expect(reader.info('b')).toEqual({ dtype: 'I32', shape: [3] });
    const all = loadSafetensors(bytes);
    expect(flat(reader.load('b'))).toEqual(flat(all.b));
    expect(reader.load('a').toArray()).toEqual(all.a.toArray());
    reader.close();
  });

  it('an unknown name and a load after close() are SafetensorsErrors that say so', () => {
    const reader = openSafetensors(bytes);
    expect(() => reader.load('c')).toThrow(SafetensorsError);
    expect(() => reader.info('c')).toThrow(/has no tensor "c"; it has 2 \("a", "b"\)/);
    reader.close();
    expect(() => reader.load('a')).toThrow(/after close\(\)/);
  });

  it('a file that shrinks under an open reader fails with a SafetensorsError, not a short tensor', () => {
    const path = join(dir, 'shrinks.safetensors');
    const fd = openSync(path, 'w');
    writeSync(fd, bytes);
    closeSync(fd);
    const reader = openSafetensors(path);
    try {
      truncateSync(path, bytes.length - 4);
      expect(() => reader.load('b')).toThrow(/the file ended at byte/);
    } finally {
      reader.close();
    }
  });
});
