/**
 * A byte-level tokenizer: every UTF-8 byte is a token, so any text has an encoding, there is
 * no vocabulary to train or ship, and a tiny model can learn from the raw bytes.
 *
 * Ids 0..255 are the bytes 0x00..0xFF. Special tokens follow: `<pad>` = 256, `<bos>` = 257,
 * `<eos>` = 258 by default, then any extra specials given to the constructor, in order.
 *
 * Round trip: `decode(encode(s)) === s` for every string that is well-formed UTF-16 (ASCII,
 * CJK, emoji and ZWJ sequences, combining marks, a leading U+FEFF; nothing is normalised, so
 * composed "ñ" and decomposed "n\u0303" stay distinct). The one exception is a lone surrogate
 * (a high surrogate U+D800..U+DBFF not followed by a low one, or a stray low surrogate): UTF-8
 * cannot encode it, so TextEncoder writes U+FFFD (bytes EF BF BD) in its place and decoding
 * gives back "\uFFFD".
 *
 * `encode` never turns text into special tokens: the text "<eos>" encodes as its five bytes,
 * so user data cannot inject control tokens. Specials enter only through `addBos`/`addEos`
 * or by id.
 */
import { ValueError } from '../errors';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer';

export interface ByteTokenizerOptions {
  /** Extra special tokens, given ids 259, 260, ... in order (after `<pad>`, `<bos>`, `<eos>`). */
  specialTokens?: readonly string[];
}

/** Number of byte tokens: ids 0..255. */
export const BYTE_VOCAB_SIZE = 256;
/** The default special tokens, in id order from 256. */
export const DEFAULT_SPECIAL_TOKENS: readonly string[] = ['<pad>', '<bos>', '<eos>'];

export class ByteTokenizer implements Tokenizer {
  /** All special tokens in id order: specialTokens[k] has id 256 + k. */
  readonly specialTokens: readonly string[];
  private readonly specialIds: ReadonlyMap<string, number>;
  private readonly encoder = new TextEncoder();
  // ignoreBOM: keep a leading U+FEFF instead of stripping it, so such strings round-trip.
  // fatal false: invalid byte sequences (e.g. a multi-byte character cut by truncation) decode to U+FFFD.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true, fatal: false });

  constructor(options: ByteTokenizerOptions = {}) {
    const extra = options.specialTokens ?? [];
    if (!Array.isArray(extra)) throw new ValueError('ByteTokenizer', 'specialTokens must be an array of strings');
    const all = [...DEFAULT_SPECIAL_TOKENS, ...extra];
    const ids = new Map<string, number>();
    all.forEach((name, k) => {
      if (typeof name !== 'string' || name.length === 0) {
        throw new ValueError('ByteTokenizer', `special token ${k} must be a non-empty string, got ${JSON.stringify(name)}`);
      }
      if (ids.has(name)) {
        throw new ValueError('ByteTokenizer', `special token '${name}' is given twice (the defaults are ${DEFAULT_SPECIAL_TOKENS.join(', ')})`);
      }
      ids.set(name, BYTE_VOCAB_SIZE + k);
    });
    this.specialTokens = Object.freeze(all);
    this.specialIds = ids;
  }

  /** 256 byte tokens plus the special tokens. */
  get vocabSize(): number {
    return BYTE_VOCAB_SIZE + this.specialTokens.length;
  }

  get padId(): number {
    return BYTE_VOCAB_SIZE;
  }

  get bosId(): number {
    return BYTE_VOCAB_SIZE + 1;
  }

  get eosId(): number {
    return BYTE_VOCAB_SIZE + 2;
  }

  /** The id of a special token by name; ValueError for an unknown name. */
  specialId(name: string): number {
    const id = this.specialIds.get(name);
    if (id === undefined) {
      throw new ValueError('ByteTokenizer.specialId', `unknown special token '${name}'; known: ${this.specialTokens.join(', ')}`);
    }
    return id;
  }

  /** True when `id` is a special token (not a byte). Assumes a valid id. */
  isSpecial(id: number): boolean {
    return id >= BYTE_VOCAB_SIZE;
  }

  /** UTF-8 bytes of `text` as ids, optionally wrapped in `<bos>` ... `<eos>`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new ValueError('ByteTokenizer.encode', `expected a string, got ${text === null ? 'null' : typeof text}`);
    const bytes = this.encoder.encode(text);
    const ids: number[] = new Array(bytes.length + (options.addBos ? 1 : 0) + (options.addEos ? 1 : 0));
    let k = 0;
    if (options.addBos) ids[k++] = this.bosId;
    for (let i = 0; i < bytes.length; i++) ids[k++] = bytes[i];
    if (options.addEos) ids[k++] = this.eosId;
    return ids;
  }

  /**
   * Text from ids. Runs of byte ids are decoded as UTF-8 (an invalid or cut sequence becomes
   * U+FFFD); special tokens are dropped (`skipSpecial`, the default) or written as their names.
   * An id that is not an integer in [0, vocabSize) is a ValueError naming its position.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    const n = ids.length;
    const vocab = this.vocabSize;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new ValueError('ByteTokenizer.decode', `invalid token id ${id} at position ${i}; expected an integer in [0, ${vocab})`);
      }
    }
    let out = '';
    const bytes = new Uint8Array(n);
    let len = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (id < BYTE_VOCAB_SIZE) {
        bytes[len++] = id;
        continue;
      }
      if (len > 0) {
        out += this.decoder.decode(bytes.subarray(0, len)); // decode copies, so the buffer is reused
        len = 0;
      }
      if (!skipSpecial) out += this.specialTokens[id - BYTE_VOCAB_SIZE];
    }
    if (len > 0) out += this.decoder.decode(bytes.subarray(0, len));
    return out;
  }
}
