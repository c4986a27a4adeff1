/**
 * safetensors' file access: everything that touches the file system, apart from the format.
 *
 * Node's `fs` is looked up at run time (`process.getBuiltinModule`, else CommonJS `require`) so
 * this module bundles for browsers, where passing a path raises a SafetensorsError that says to
 * pass the bytes instead.
 *
 * Reading goes by byte ranges through one open file handle, synchronously (`loadSafetensors`,
 * `parseSafetensors` and `openSafetensors` given a path) or not (`loadSafetensorsFile`), so a
 * file is never in memory whole and may be larger than Node's 2 GiB buffer limit. Writing (`saveSafetensorsFile`) writes a temporary file
 * in the same folder, flushes it and renames it over the target, so a failed save leaves no
 * half-written file (and leaves an existing file at that path untouched). A save killed midway
 * (the process gone, so nothing could clean up) leaves its temporary file; the next save to the
 * same path removes it.
 */
import type * as NodeFs from 'node:fs';
import { SafetensorsError } from './format';

type FsModule = typeof NodeFs;

/** Node's fs, found at run time so that browser bundles never reference it statically (io/pretrained.ts uses it too). */
export function nodeFs(op: string): FsModule {
  const proc = typeof process !== 'undefined' ? (process as { getBuiltinModule?: (id: string) => unknown }) : undefined;
  const viaBuiltin = proc?.getBuiltinModule?.('node:fs') as FsModule | undefined;
  if (viaBuiltin) return viaBuiltin;
  // Node before 20.16 has no getBuiltinModule; CommonJS still has require.
  const req = typeof require === 'function' ? require : undefined;
  if (req) {
    try {
      return req('node:fs') as FsModule;
    } catch {
      // fall through
    }
  }
  throw new SafetensorsError(
    op,
    'reading or writing a file path needs Node.js (its fs module is not available here); in a browser, fetch the file and pass its bytes (a Uint8Array or ArrayBuffer) instead',
  );
}

// ---------------------------------------------------------------------------------------------
// Reading: byte ranges through a file handle
// ---------------------------------------------------------------------------------------------
//
// A reader hands out byte ranges, each a fresh Uint8Array of its own (so a tensor's bytes are
// aligned whatever its offset in the file), and never the whole file: Node cannot read a file
// past 2 GiB into one buffer, and a checkpoint's tensors are wanted one at a time anyway.

/** Byte ranges of a file (or of bytes in memory), read synchronously. */
export interface RangeReader {
  /** Bytes in all. */
  readonly size: number;
  /** A fresh copy of bytes [position, position + length); a range past the end is an error. */
  read(position: number, length: number): Uint8Array;
  close(): void;
}

/** The same, read without blocking (a file only). */
export interface AsyncRangeReader {
  readonly size: number;
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function checkRange(op: string, size: number, position: number, length: number): void {
  if (position + length > size) {
    throw new SafetensorsError(op, `bytes [${position}, ${position + length}) run past the end of the file (${size} bytes; truncated file?)`);
  }
}

/** A read that found the end of the file before the end of its range. */
function shrank(op: string, at: number, position: number, length: number): SafetensorsError {
  return new SafetensorsError(op, `the file ended at byte ${at} while reading bytes [${position}, ${position + length}) (it shrank while being read?)`);
}

/** Ranges of bytes already in memory. */
export function memoryRanges(op: string, bytes: Uint8Array): RangeReader {
  return {
    size: bytes.length,
    read(position, length) {
      checkRange(op, bytes.length, position, length);
      return bytes.slice(position, position + length);
    },
    close() {},
  };
}

/** Ranges of the file at `path`, read with positioned reads on one open handle. Errors from the file system are Node's own. */
export function fileRanges(op: string, path: string): RangeReader {
  const fs = nodeFs(op);
  const fd = fs.openSync(path, 'r');
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return {
    size,
    read(position, length) {
      checkRange(op, size, position, length);
      const out = new Uint8Array(length);
      // a read may return fewer bytes than asked (large ranges, pipes): go on from where it stopped
      for (let done = 0; done < length; ) {
        const n = fs.readSync(fd, out, done, length - done, position + done);
        if (n === 0) throw shrank(op, position + done, position, length);
        done += n;
      }
      return out;
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

/** fileRanges without blocking. */
export async function fileRangesAsync(op: string, path: string): Promise<AsyncRangeReader> {
  const handle = await nodeFs(op).promises.open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  return {
    size,
    async read(position, length) {
      checkRange(op, size, position, length);
      const out = new Uint8Array(length);
      for (let done = 0; done < length; ) {
        const { bytesRead } = await handle.read(out, done, length - done, position + done);
        if (bytesRead === 0) throw shrank(op, position + done, position, length);
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Writing: a temporary file, flushed, renamed over the target
// ---------------------------------------------------------------------------------------------

/** Temporary files this process is writing now (a concurrent save to the same path keeps them). */
const writing = new Set<string>();

/** Whether process `pid` exists (EPERM: it does, but is not ours to signal). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes what saves to `path` killed midway left: the temporary files `<path>.<pid>.<tag>.tmp`
 * whose process is gone (or is this one, but no save of ours is writing them). Best effort: a file
 * that cannot be listed or removed is left for a later save.
 */
async function removeStaleTemps(fs: FsModule['promises'], path: string): Promise<void> {
  const cut = Math.max(path.lastIndexOf('/'), process.platform === 'win32' ? path.lastIndexOf('\\') : -1);
  const folder = path.slice(0, cut + 1); // with its separator, '' for the current folder
  const name = path.slice(cut + 1);
  let entries: string[];
  try {
    entries = await fs.readdir(folder === '' ? '.' : folder);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(`${name}.`)) continue;
    const tag = /^(\d+)\.[0-9a-z]+\.tmp$/.exec(entry.slice(name.length + 1));
    if (!tag) continue;
    const pid = Number(tag[1]);
    const file = folder + entry;
    if (pid === process.pid ? writing.has(file) : processAlive(pid)) continue;
    await fs.rm(file, { force: true }).catch(() => undefined);
  }
}

/**
 * What a file is written from: its bytes, or a function that produces them in chunks, handing
 * each to `write` in order (so that a large file never exists whole in memory).
 */
export type FileContent = Uint8Array | ((write: (chunk: Uint8Array) => Promise<void>) => Promise<void>);

/**
 * Writes `content` to `path` all or nothing: to a temporary file beside `path`, flushed, then
 * renamed over `path`, so a failure at any point (of the file system, or of the function that
 * produces the chunks) leaves no partial file (and an existing file at `path` unchanged).
 * Temporary files that earlier saves to `path` left when their process was killed are removed
 * first. Errors from the file system (missing folder, permissions) are Node's own.
 */
export async function writeFileAtomically(op: string, path: string, content: FileContent): Promise<void> {
  const fs = nodeFs(op).promises;
  await removeStaleTemps(fs, path);
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  writing.add(tmp);
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      if (content instanceof Uint8Array) await handle.writeFile(content);
      else {
        await content(async (chunk) => {
          // a short write is possible in principle: write until the whole chunk is out
          for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
        });
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  } finally {
    writing.delete(tmp);
  }
}
