/**
 * Alpaca-format instruction data: parsing and validation, the prompt template, and encoding an
 * example into `inputIds` and `labels` for causal-LM fine-tuning with the prompt masked out.
 *
 * A record is `{ instruction, input?, output, history? }` where `history` lists earlier turns
 * of the conversation as `[user, assistant]` pairs, oldest first (the format LLaMA-Factory
 * reads). Other fields are ignored.
 */
import { ValueError } from '../errors';
import type { Tokenizer } from './tokenizer';
import { describe } from '../util/describe';

export interface AlpacaExample {
  instruction: string;
  input?: string;
  output: string;
  /** Earlier turns, oldest first, as [user, assistant] pairs. */
  history?: [string, string][];
}

/** The label of a position the loss must ignore (PyTorch's and crossEntropy's default ignoreIndex). */
export const IGNORE_INDEX = -100;

function parseRecords(json: unknown, op: string, where: string): AlpacaExample[] {
  if (!Array.isArray(json)) {
    throw new ValueError(op, `${where}expected a JSON array of records ({ instruction, input?, output, history? }), got ${describe(json)}`);
  }
  return json.map((rec: unknown, i: number): AlpacaExample => {
    const fail = (what: string): never => {
      throw new ValueError(op, `${where}record ${i}: ${what}`);
    };
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      fail(`expected an object with 'instruction' and 'output' strings, got ${describe(rec)}`);
    }
    const r = rec as Record<string, unknown>;
    if (typeof r.instruction !== 'string') fail(`field 'instruction' must be a string, got ${describe(r.instruction)}`);
    if (typeof r.output !== 'string') fail(`field 'output' must be a string, got ${describe(r.output)}`);
    if (r.input !== undefined && r.input !== null && typeof r.input !== 'string') {
      fail(`field 'input' must be a string, null or missing, got ${describe(r.input)}`);
    }
    const ex: AlpacaExample = { instruction: r.instruction as string, output: r.output as string };
    if (typeof r.input === 'string') ex.input = r.input;
    if (r.history !== undefined && r.history !== null) {
      if (!Array.isArray(r.history)) fail(`field 'history' must be an array of [user, assistant] string pairs, null or missing, got ${describe(r.history)}`);
      ex.history = (r.history as unknown[]).map((turn, j): [string, string] => {
        if (!Array.isArray(turn) || turn.length !== 2 || typeof turn[0] !== 'string' || typeof turn[1] !== 'string') {
          fail(`field 'history[${j}]' must be a [user, assistant] pair of strings, got ${describe(turn)}`);
        }
        const [user, assistant] = turn as [string, string];
        return [user, assistant];
      });
    }
    return ex;
  });
}

/**
 * Validates parsed JSON as a list of Alpaca records and returns fresh copies. Errors are
 * ValueErrors naming the record index and the field ("record 3: field 'output' must be a
 * string, got number 7"). `input` and `history` may be missing or null (both are then left out
 * of the result); unknown fields are ignored.
 */
export function parseAlpaca(json: unknown): AlpacaExample[] {
  return parseRecords(json, 'parseAlpaca', '');
}

/**
 * Reads and validates an Alpaca JSON file (synchronously, with Node's fs). Errors name the path:
 * an unreadable file, invalid JSON, or an invalid record. A UTF-8 byte order mark is accepted.
 *
 * fs is reached through `process.getBuiltinModule` (Node >= 20.16) rather than a static import,
 * so the library's platform-neutral bundle stays loadable in browsers; there, fetch the file and
 * pass `JSON.parse(text)` to `parseAlpaca`.
 */
export function loadAlpacaFile(path: string): AlpacaExample[] {
  const op = 'loadAlpacaFile';
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs') as typeof import('node:fs') | undefined;
  if (!fs) {
    throw new ValueError(op, `cannot read '${path}': needs Node.js >= 20.16 (process.getBuiltinModule); elsewhere, parse the JSON yourself and call parseAlpaca`);
  }
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValueError(op, `cannot read '${path}': ${(err as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValueError(op, `'${path}' is not valid JSON: ${(err as Error).message}`);
  }
  return parseRecords(json, op, `'${path}': `);
}

/** The Alpaca preamble when the example has no input. */
export const PREAMBLE_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';
/** The Alpaca preamble when the example has a non-empty input. */
export const PREAMBLE_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.';

/**
 * The prompt for an example: everything the model reads before the response. The exact text,
 * with `\n` a newline, is
 *
 * ```
 * {preamble}\n\n
 * ### Instruction:\n{user_1}\n\n### Response:\n{assistant_1}\n\n      (one per history turn, oldest first)
 * ...
 * ### Instruction:\n{instruction}\n\n
 * ### Input:\n{input}\n\n                                            (only when input is non-empty)
 * ### Response:\n
 * ```
 *
 * concatenated without any other separators. `{preamble}` is `PREAMBLE_WITH_INPUT` ("Below is an
 * instruction that describes a task, paired with an input that provides further context. Write a
 * response that appropriately completes the request.") when the current input is a non-empty
 * string, else `PREAMBLE_NO_INPUT` ("Below is an instruction that describes a task. Write a
 * response that appropriately completes the request."). Without history this is the standard
 * Alpaca template. Texts are inserted verbatim (no trimming); an input of "" counts as absent.
 * The response, `output`, follows the prompt directly.
 */
export function formatPrompt(example: AlpacaExample): string {
  const hasInput = typeof example.input === 'string' && example.input.length > 0;
  let s = `${hasInput ? PREAMBLE_WITH_INPUT : PREAMBLE_NO_INPUT}\n\n`;
  for (const [user, assistant] of example.history ?? []) {
    s += `### Instruction:\n${user}\n\n### Response:\n${assistant}\n\n`;
  }
  s += `### Instruction:\n${example.instruction}\n\n`;
  if (hasInput) s += `### Input:\n${example.input}\n\n`;
  s += '### Response:\n';
  return s;
}

export interface EncodeExampleOptions {
  /** Longest sequence to produce, in tokens (default: no limit). See encodeExample for the truncation rule. */
  maxLength?: number;
  /** Start with the bos token (default: true where the tokenizer has one). It belongs to the prompt, so its label is -100. */
  addBos?: boolean;
  /** End the response with the eos token (default: true where the tokenizer has one). It is trained on: the model learns to stop. */
  addEos?: boolean;
}

export interface EncodedExample {
  /** Token ids: [<bos>] prompt response [<eos>]. */
  inputIds: number[];
  /**
   * Same length as inputIds: -100 on the prompt (with <bos> and any history), the token id itself
   * on the response (with <eos>). Labels are not shifted: as in Hugging Face causal-LM training, the
   * loss compares the logits at position t with labels[t + 1].
   */
  labels: number[];
  /** Index of the first response token = the number of -100 labels, all at the start. */
  responseStart: number;
  /** True when maxLength cut the prompt, the response, or both. */
  truncated: boolean;
  /** True when maxLength cut the response: some of its labels (and its <eos>) are not trained on. */
  responseTruncated: boolean;
}

/**
 * Tokenizes `[<bos>] formatPrompt(example)` as the prompt and `output [<eos>]` as the response,
 * and masks the prompt's labels with -100.
 *
 * Truncation, with P prompt tokens (counting <bos>), R response tokens (counting <eos>) and
 * L = maxLength, when P + R > L:
 * - the response keeps its first min(R, max(L - P, floor(L / 2))) tokens: all of the room the
 *   prompt leaves, and never less than half the window when it is that long; its end is cut
 *   (so a cut response has no <eos>, as the answer is unfinished);
 * - the prompt fills the rest of the window with its last tokens, i.e. it loses its start (the
 *   preamble, then the oldest history), keeping "### Response:\n" and the text nearest to the
 *   answer; <bos>, when present, is kept at position 0.
 * So a short prompt is never cut, a short response is never cut, and when both are long each
 * gets half. Cuts are at token boundaries; with ByteTokenizer those are bytes, and a cut can split
 * a multi-byte character, which then decodes to U+FFFD.
 *
 * Returns null when the example would teach nothing: no response token survives (L < 2 with
 * <bos>, or an empty output with addEos false).
 */
export function encodeExample(example: AlpacaExample, tokenizer: Tokenizer, options: EncodeExampleOptions = {}): EncodedExample | null {
  const op = 'encodeExample';
  const { maxLength = Infinity, addBos = tokenizer.bosId !== null, addEos = tokenizer.eosId !== null } = options;
  if (maxLength !== Infinity && (!Number.isInteger(maxLength) || maxLength < 1)) {
    throw new ValueError(op, `maxLength must be a positive integer, got ${maxLength}`);
  }
  const prompt = tokenizer.encode(formatPrompt(example), { addBos });
  const response = tokenizer.encode(example.output, { addEos });
  const P = prompt.length;
  const R = response.length;
  const L = maxLength;
  let keptPrompt = prompt;
  let keptResponse = response;
  const truncated = P + R > L;
  if (truncated) {
    const rKeep = Math.min(R, Math.max(L - P, Math.floor(L / 2)));
    const pKeep = L - rKeep; // <= P by the choice of rKeep
    keptResponse = response.slice(0, rKeep);
    if (addBos && pKeep > 0) keptPrompt = [prompt[0], ...prompt.slice(P - (pKeep - 1))];
    else keptPrompt = pKeep > 0 ? prompt.slice(P - pKeep) : [];
  }
  if (keptResponse.length === 0) return null;
  const inputIds = keptPrompt.concat(keptResponse);
  const labels = new Array<number>(keptPrompt.length).fill(IGNORE_INDEX).concat(keptResponse);
  return { inputIds, labels, responseStart: keptPrompt.length, truncated, responseTruncated: keptResponse.length < R };
}

export interface EncodedDataset {
  /** The encoded examples that were kept, in order. */
  examples: EncodedExample[];
  /** For each kept example, its index in the input list. */
  sourceIndices: number[];
  /** Indices (in the input list) of the examples dropped because no response token survived. */
  dropped: number[];
  /** How many kept examples were truncated. */
  truncatedCount: number;
  /** How many kept examples lost response tokens (labels) to truncation. */
  responseTruncatedCount: number;
}

/** encodeExample over a list, keeping the examples that teach something and reporting the rest. */
export function encodeDataset(examples: readonly AlpacaExample[], tokenizer: Tokenizer, options: EncodeExampleOptions = {}): EncodedDataset {
  const out: EncodedDataset = { examples: [], sourceIndices: [], dropped: [], truncatedCount: 0, responseTruncatedCount: 0 };
  examples.forEach((ex, i) => {
    const enc = encodeExample(ex, tokenizer, options);
    if (enc === null) {
      out.dropped.push(i);
      return;
    }
    out.examples.push(enc);
    out.sourceIndices.push(i);
    if (enc.truncated) out.truncatedCount++;
    if (enc.responseTruncated) out.responseTruncatedCount++;
  });
  return out;
}
