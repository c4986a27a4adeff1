/**
 * safetensors' file access: everything that touches the file system, apart from the format.
 *
 * Node's `fs` is looked up at run time (`process.getBuiltinModule`, else CommonJS `require`) so
 * this module bundles for browsers, where passing a path raises a SafetensorsError that says to
 * pass the bytes instead.
 *
 * Reading takes the whole file, synchronously (`loadSafetensors` and `parseSafetensors` given a
 * path) or not (`loadSafetensorsFile`). Writing (`saveSafetensorsFile`) writes a temporary file
 * in the same folder, flushes it and renames it over the target, so a failed save leaves no
 * half-written file (and leaves an existing file at that path untouched). A save killed midway
 * (the process gone, so nothing could clean up) leaves its temporary file; the next save to the
 * same path removes it.
 */
import type * as NodeFs from 'node:fs';
import { SafetensorsError } from './format';

type FsModule = typeof NodeFs;

/** Node's fs, found at run time so that browser bundles never reference it statically. */
function nodeFs(op: string): FsModule {
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
// Reading
// ---------------------------------------------------------------------------------------------

/** The whole file's bytes, read synchronously. Errors from the file system are Node's own. */
export function readWholeFile(op: string, path: string): Uint8Array {
  return nodeFs(op).readFileSync(path);
}

/** The whole file's bytes, read without blocking. Errors from the file system are Node's own. */
export function readWholeFileAsync(op: string, path: string): Promise<Uint8Array> {
  return nodeFs(op).promises.readFile(path);
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
 * Writes `bytes` to `path` all or nothing: to a temporary file beside `path`, flushed, then
 * renamed over `path`, so a failure at any point leaves no partial file (and an existing file at
 * `path` unchanged). Temporary files that earlier saves to `path` left when their process was
 * killed are removed first. Errors from the file system (missing folder, permissions) are Node's
 * own.
 */
export async function writeFileAtomically(op: string, path: string, bytes: Uint8Array): Promise<void> {
  const fs = nodeFs(op).promises;
  await removeStaleTemps(fs, path);
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  writing.add(tmp);
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      await handle.writeFile(bytes);
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
