/**
 * Reading the small files of a Hugging Face model directory (config.json, the weights index,
 * tokenizer.json and tokenizer_config.json): a missing or malformed file is a ValueError that
 * names its path. Node only (fs is found at run time; see safetensors/file.ts).
 */
import { ValueError } from '../errors';
import { isPlainObject } from '../util/objects';
import { nodeFs } from './safetensors/file';

/** `dir/file`, with one slash. */
export const join = (dir: string, file: string): string => (dir.endsWith('/') ? dir + file : `${dir}/${file}`);

/** A text file of the directory. */
export function readTextFile(op: string, dir: string, file: string): string {
  const path = join(dir, file);
  try {
    return nodeFs(op).readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValueError(op, `cannot read ${path} (${(err as { code?: string }).code ?? String(err)}): is ${dir} a Hugging Face model directory?`);
  }
}

/** A JSON file of the directory, parsed; it must hold an object. */
export function readJsonFile(op: string, dir: string, file: string): Record<string, unknown> {
  const path = join(dir, file);
  const text = readTextFile(op, dir, file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValueError(op, `${path} is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw new ValueError(op, `${path} must hold a JSON object`);
  return json;
}

/** Whether the directory has this file. */
export function hasFile(op: string, dir: string, file: string): boolean {
  return nodeFs(op).existsSync(join(dir, file));
}
