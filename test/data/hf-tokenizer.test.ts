/**
 * Hugging Face tokenizer.json files through the Tokenizer interface, on the two fixtures of
 * tokenizer-fixtures.ts. Every expected id below is worked out by hand from the fixture's vocabulary
 * and merges (the comments show the pieces); a library that split, merged or fell back differently
 * would give other ids.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Batcher, HuggingFaceTokenizer, IGNORE_INDEX, Tokenizer, ValueError, encodeDataset, encodeExample, formatPrompt } from '../../src';
import { expectError } from '../helpers';
import { byteLevelTokenizerJson, sentencepieceTokenizerJson } from './tokenizer-fixtures';

/** A Llama 3 style chat template: a header per turn, <|eot_id|> after each message. */
const LLAMA3_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const byteLevelConfig = { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', chat_template: LLAMA3_TEMPLATE };
// the AddedToken object form that older transformers versions write, for bos
const sentencepieceConfig = { bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, rstrip: false }, eos_token: '</s>', unk_token: '<unk>' };

describe('byte-level BPE (GPT-2, Llama 3)', () => {
  const tok = Tokenizer.fromJSON(byteLevelTokenizerJson(), byteLevelConfig);

  test('special ids from tokenizer_config.json; no pad token, so batches pad with eos', () => {
    expect(tok.vocabSize).toBe(30);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([25, 26, 26]);
    expect(tok.specialTokens).toEqual({ bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });
  });

  test.each([
    // words keep their leading space (Ġ); merges apply in rank order: h e, l l, he ll, hell o / Ġ w, o r, Ġw or, Ġwor l, Ġworl d
    ['hello world', [19, 24]], // hello Ġworld
    ['hello  world!', [19, 7, 24, 8]], // hello Ġ Ġworld ! (a run of spaces leaves its last one to the next word)
    ['hold', [0, 3, 2, 6]], // h o l d: no merge applies
    ['ell', [1, 17]], // e ll
    ['hello\nworld', [19, 15, 4, 21, 2, 6]], // hello Ċ w or l d ("world" without its space merges only "or")
  ])('%j encodes to %j and decodes back exactly', (text, ids) => {
    expect(tok.encode(text)).toEqual(ids);
    expect(tok.decode(ids)).toBe(text);
  });

  test('bos and eos only when asked; special tokens written in the text are matched', () => {
    expect(tok.encode('hello', { addBos: true, addEos: true })).toEqual([25, 19, 26]);
    expect(tok.encode('<|eot_id|>hello')).toEqual([29, 19]);
    expect(tok.decode([25, 19, 24, 26])).toBe('hello world');
    expect(tok.decode([25, 19, 24, 26], { skipSpecial: false })).toBe('<|begin_of_text|>hello world<|end_of_text|>');
    expect(tok.tokenToId('Ġworld')).toBe(24);
    expect(tok.tokenToId('Ġhello')).toBeNull();
  });

  test('the chat template renders the conversation, and its text encodes to the special ids it spells', () => {
    const messages = [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'world' },
    ];
    const text = tok.applyChatTemplate(messages);
    expect(text).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nworld<|eot_id|>');
    expect(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true })).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    // "\n\nhello" splits as Ċ | Ċ | hello (the whitespace run before a word leaves its last character)
    const user = [9, 10, 1, 5]; // u s e r
    const assistant = [11, 10, 10, 12, 10, 13, 11, 14, 13]; // a s s i s t a n t
    expect(tok.encodeChat(messages)).toEqual([25, 27, ...user, 28, 15, 15, 19, 29, 27, ...assistant, 28, 15, 15, 4, 21, 2, 6, 29]);
    expect(tok.decode(tok.encodeChat(messages), { skipSpecial: false })).toBe(text);
  });
});

describe('sentencepiece-style BPE (Llama 2)', () => {
  const tok = Tokenizer.fromJSON(sentencepieceTokenizerJson(), sentencepieceConfig);

  test('special ids, the AddedToken form of bos_token included', () => {
    expect(tok.vocabSize).toBe(277);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([1, 2, 2]);
    expect(tok.specialTokens).toEqual({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
  });

  test.each([
    // spaces become ▁ and one ▁ is prepended; merges: ▁ h, l l, ▁h e, ▁he ll, ▁hell o, ▁ w, o r, ▁w or, l d, ▁wor ld
    ['hello world', [271, 276]], // ▁hello ▁world
    ['world hello', [276, 271]], // ▁world ▁hello
    [' hello', [259, 271]], // ▁ ▁hello
    ['hello  world', [271, 259, 276]], // ▁hello ▁ ▁world
    ['hé', [267, 3 + 0xc3, 3 + 0xa9]], // ▁h, then é by byte fallback: UTF-8 C3 A9 -> <0xC3> <0xA9>
    ['x', [259, 3 + 0x78]], // ▁, then x -> <0x78>
  ])('%j encodes to %j and decodes back exactly', (text, ids) => {
    expect(tok.encode(text)).toEqual(ids);
    expect(tok.decode(ids)).toBe(text);
  });

  test('bos and eos; decoding keeps or skips them', () => {
    const ids = tok.encode('hello world', { addBos: true, addEos: true });
    expect(ids).toEqual([1, 271, 276, 2]);
    expect(tok.decode(ids)).toBe('hello world');
    expect(tok.decode(ids, { skipSpecial: false })).toBe('<s> hello world</s>');
  });

  test('no chat template: a clear error', () => {
    expectError(() => tok.applyChatTemplate([{ role: 'user', content: 'hello' }]), ValueError, 'HuggingFaceTokenizer.applyChatTemplate', 'no chat template');
  });
});

describe('Tokenizer.fromFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blockgrad-tokenizer-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
  const { chat_template: template, ...configWithoutTemplate } = byteLevelConfig;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(configWithoutTemplate));
  // transformers >= 4.43 saves the template in a file of its own
  writeFileSync(join(dir, 'chat_template.jinja'), template);

  test.each([
    ['the directory', dir],
    ['tokenizer.json', join(dir, 'tokenizer.json')],
  ])('from %s: tokenizer_config.json and chat_template.jinja beside it are read', (_, path) => {
    const tok = Tokenizer.fromFile(path);
    expect(tok).toBeInstanceOf(HuggingFaceTokenizer);
    expect(tok.encode('hello world', { addBos: true })).toEqual([25, 19, 24]);
    expect(tok.chatTemplate).toBe(template);
    expect(tok.encodeChat([{ role: 'user', content: 'hello' }])).toEqual([25, 27, 9, 10, 1, 5, 28, 15, 15, 19, 29]);
  });

  test('only tokenizer.json: no special tokens, no template', () => {
    const bare = mkdtempSync(join(tmpdir(), 'blockgrad-tokenizer-'));
    writeFileSync(join(bare, 'tokenizer.json'), JSON.stringify(sentencepieceTokenizerJson()));
    const tok = Tokenizer.fromFile(bare);
    expect([tok.bosId, tok.eosId, tok.padId, tok.chatTemplate]).toEqual([null, null, 0, null]);
    expect(tok.encode('hello world')).toEqual([271, 276]);
    expectError(() => tok.encode('hello', { addBos: true }), ValueError, 'HuggingFaceTokenizer.encode', 'no bos_token', 'addBos: false');
    expectError(() => tok.encode('hello', { addEos: true }), ValueError, 'HuggingFaceTokenizer.encode', 'no eos_token', 'addEos: false');
  });

  test('a missing or malformed file names its path', () => {
    const empty = mkdtempSync(join(tmpdir(), 'blockgrad-tokenizer-'));
    expectError(() => Tokenizer.fromFile(empty), ValueError, 'Tokenizer.fromFile', `cannot read ${empty}/tokenizer.json`, 'ENOENT');
    writeFileSync(join(empty, 'tokenizer.json'), '{ not json');
    expectError(() => Tokenizer.fromFile(empty), ValueError, 'Tokenizer.fromFile', `${empty}/tokenizer.json is not valid JSON`);
  });
});

describe('errors name the op, the value and the fix', () => {
  const tok = Tokenizer.fromJSON(byteLevelTokenizerJson(), byteLevelConfig);

  test('bad ids, text and messages', () => {
    expectError(() => tok.decode([19, 30]), ValueError, 'HuggingFaceTokenizer.decode', 'invalid token id 30 at position 1', '[0, 30)');
    expectError(() => tok.decode([1.5]), ValueError, 'HuggingFaceTokenizer.decode', 'invalid token id 1.5 at position 0');
    expectError(() => tok.encode(7 as unknown as string), ValueError, 'HuggingFaceTokenizer.encode', 'expected a string, got 7');
    expectError(() => tok.applyChatTemplate([{ role: 'user' }] as never), ValueError, 'HuggingFaceTokenizer.applyChatTemplate', 'message 0 must be { role: string, content: string }');
  });

  test('bad files', () => {
    expectError(() => Tokenizer.fromJSON({ version: '1.0' }), ValueError, 'HuggingFaceTokenizer', 'must be an object with a "model" object');
    expectError(() => Tokenizer.fromJSON(byteLevelTokenizerJson(), { eos_token: '<eos>' }), ValueError, 'HuggingFaceTokenizer', "eos_token is '<eos>', which is not in tokenizer.json's vocabulary");
    expectError(() => Tokenizer.fromJSON(byteLevelTokenizerJson(), { bos_token: 3 }), ValueError, 'HuggingFaceTokenizer', 'bos_token must be a string or { content: string }, got 3');
    expectError(() => Tokenizer.fromJSON(byteLevelTokenizerJson(), { chat_template: 5 }), ValueError, 'HuggingFaceTokenizer', 'chat_template must be a string');
    const broken = Tokenizer.fromJSON(byteLevelTokenizerJson(), { chat_template: '{% for m in messages %}' });
    expectError(() => broken.applyChatTemplate([]), ValueError, 'HuggingFaceTokenizer.applyChatTemplate', 'the chat template failed');
  });
});

describe('the data pipeline takes any Tokenizer', () => {
  const tok = Tokenizer.fromJSON(sentencepieceTokenizerJson(), sentencepieceConfig);
  const example = { instruction: 'hello', output: 'world' };

  test('encodeExample: bos + prompt masked, response + eos trained on', () => {
    const prompt = tok.encode(formatPrompt(example));
    const enc = encodeExample(example, tok);
    expect(enc).not.toBeNull();
    expect(enc?.inputIds).toEqual([1, ...prompt, 276, 2]); // "world" alone is ▁world
    expect(enc?.labels).toEqual([...new Array(prompt.length + 1).fill(IGNORE_INDEX), 276, 2]);
    expect(enc?.responseStart).toBe(prompt.length + 1);
  });

  test('a tokenizer without bos and eos adds neither by default', () => {
    const bare = Tokenizer.fromJSON(sentencepieceTokenizerJson());
    const enc = encodeExample(example, bare);
    expect(enc?.inputIds).toEqual([...bare.encode(formatPrompt(example)), 276]);
  });

  test('batches pad with padId (eos here), masked out of the labels', () => {
    const data = encodeDataset([example, { instruction: 'hello', output: 'hello world' }], tok);
    const batch = new Batcher(data.examples, { batchSize: 2, padId: tok.padId, shuffle: false })[Symbol.iterator]().next().value;
    const [short, long] = data.examples;
    const width = long.inputIds.length;
    expect(batch?.inputIds.shape).toEqual([2, width]);
    const ids = Array.from(batch?.inputIds.toTypedArray() ?? []);
    const labels = Array.from(batch?.labels.toTypedArray() ?? []);
    expect(ids.slice(0, width)).toEqual([...short.inputIds, ...new Array(width - short.inputIds.length).fill(2)]);
    expect(labels.slice(0, width)).toEqual([...short.labels, ...new Array(width - short.labels.length).fill(IGNORE_INDEX)]);
  });
});
