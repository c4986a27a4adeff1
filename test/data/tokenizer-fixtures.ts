/**
 * Two tiny Hugging Face tokenizer.json files, made here, one of each BPE flavour, small enough
 * that the tests can work out the expected ids of their strings by hand.
 *
 * Byte-level BPE (GPT-2, Llama 3): text is split into words by a regex (a word keeps its leading
 * space), each byte becomes one printable character (space is "Ġ", U+0120), and merges apply in
 * rank order. Sentencepiece-style BPE (Llama 2): spaces become "▁" and one "▁" is prepended,
 * merges apply over the whole string, and a character outside the vocabulary falls back to its
 * UTF-8 bytes, the tokens <0x00>..<0xFF>.
 */

/** Byte-level BPE. Ids: one per character below, then the merges' results, then the special tokens. */
export function byteLevelTokenizerJson(): object {
  const chars = ['h', 'e', 'l', 'o', 'w', 'r', 'd', 'Ġ', '!', 'u', 's', 'a', 'i', 't', 'n', 'Ċ'];
  // ids 0..15 are the characters; each merge's result takes the next id, in rank order
  const merges = [
    ['h', 'e'], // 16 he
    ['l', 'l'], // 17 ll
    ['he', 'll'], // 18 hell
    ['hell', 'o'], // 19 hello
    ['Ġ', 'w'], // 20 Ġw
    ['o', 'r'], // 21 or
    ['Ġw', 'or'], // 22 Ġwor
    ['Ġwor', 'l'], // 23 Ġworl
    ['Ġworl', 'd'], // 24 Ġworld
  ];
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  merges.forEach(([a, b], k) => (vocab[a + b] = chars.length + k));
  const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>']; // 25..29
  const first = chars.length + merges.length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, k) => ({ id: first + k, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: { ...vocab, ...Object.fromEntries(specials.map((s, k) => [s, first + k])) },
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** Sentencepiece-style BPE. Ids: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then "▁" and the letters, then the merges' results. */
export function sentencepieceTokenizerJson(): object {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const pieces = ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd']; // 259..266
  pieces.forEach((p, i) => (vocab[p] = 259 + i));
  const merges = [
    ['▁', 'h'], // 267 ▁h
    ['l', 'l'], // 268 ll
    ['▁h', 'e'], // 269 ▁he
    ['▁he', 'll'], // 270 ▁hell
    ['▁hell', 'o'], // 271 ▁hello
    ['▁', 'w'], // 272 ▁w
    ['o', 'r'], // 273 or
    ['▁w', 'or'], // 274 ▁wor
    ['l', 'd'], // 275 ld
    ['▁wor', 'ld'], // 276 ▁world
  ];
  merges.forEach(([a, b], k) => (vocab[a + b] = 267 + k));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}
