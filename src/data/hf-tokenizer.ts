/**
 * A model's own tokenizer, from the tokenizer.json and tokenizer_config.json of its Hugging Face
 * directory. Encoding and decoding are done by `@huggingface/tokenizers` (Hugging Face's
 * JavaScript implementation of their Rust `tokenizers`: normalizers, pre-tokenizers, BPE with
 * byte-level or sentencepiece-style pieces and byte fallback, decoders); chat templates are
 * rendered by `@huggingface/jinja`. This file adds what blockgrad's data pipeline needs: the
 * `Tokenizer` interface (bos and eos added only when asked, the pad id), special tokens resolved
 * from tokenizer_config.json, and typed errors.
 *
 * Unlike `ByteTokenizer`, text that spells a special token (for example "<|eot_id|>") encodes as
 * that token, as in Hugging Face: a chat template writes its control tokens as text.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer as TokenizerCore } from '@huggingface/tokenizers';
import { ValueError } from '../errors';
import { isPlainObject } from '../util/objects';
import { describe } from '../util/describe';
import { hasFile, readJsonFile, readTextFile } from '../io/directory';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer';

/** One message of a conversation, as chat templates read it. */
export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, for generation (default false). */
  addGenerationPrompt?: boolean;
  /** More variables for the template (some read `tools`, `date_string`, ...). */
  variables?: Record<string, unknown>;
}

/** A tokenizer_config.json field that names a special token. */
export type SpecialTokenField = 'bos_token' | 'eos_token' | 'pad_token' | 'unk_token';
const SPECIAL_FIELDS: readonly SpecialTokenField[] = ['bos_token', 'eos_token', 'pad_token', 'unk_token'];

export class HuggingFaceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number;
  /** The special tokens by their tokenizer_config.json field (absent where it names none). */
  readonly specialTokens: Readonly<Partial<Record<SpecialTokenField, string>>>;
  /** The chat template (Jinja), or null where the files have none. */
  readonly chatTemplate: string | null;
  private readonly core: TokenizerCore;
  private compiledTemplate: Template | null = null;

  /**
   * From a tokenizer.json path, or the directory that holds one; tokenizer_config.json and
   * chat_template.jinja (where transformers saves the template since 4.43) are read from the same
   * directory when they are there.
   */
  static fromFile(path: string): HuggingFaceTokenizer {
    const op = 'Tokenizer.fromFile';
    if (typeof path !== 'string' || path === '') throw new ValueError(op, `expected a path to tokenizer.json or to its directory, got ${describe(path)}`);
    const isFile = path.endsWith('.json');
    const cut = path.lastIndexOf('/');
    const dir = isFile ? (cut >= 0 ? path.slice(0, cut) || '/' : '.') : path;
    const file = isFile ? path.slice(cut + 1) : 'tokenizer.json';
    const json = readJsonFile(op, dir, file);
    const config: Record<string, unknown> = hasFile(op, dir, 'tokenizer_config.json') ? readJsonFile(op, dir, 'tokenizer_config.json') : {};
    if (config.chat_template === undefined && hasFile(op, dir, 'chat_template.jinja')) {
      config.chat_template = readTextFile(op, dir, 'chat_template.jinja');
    }
    return new HuggingFaceTokenizer(json, config, op);
  }

  /** From the parsed tokenizer.json and (optionally) tokenizer_config.json. */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, op = 'HuggingFaceTokenizer') {
    if (!isPlainObject(tokenizerJson) || !isPlainObject(tokenizerJson.model)) {
      throw new ValueError(op, `tokenizer.json must be an object with a "model" object (a Hugging Face tokenizers file), got ${describe(tokenizerJson)}`);
    }
    if (!isPlainObject(tokenizerConfig)) throw new ValueError(op, `tokenizer_config.json must be an object, got ${describe(tokenizerConfig)}`);
    try {
      this.core = new TokenizerCore(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new ValueError(op, `tokenizer.json could not be read (model type ${describe(tokenizerJson.model.type)}): ${(err as Error).message}`);
    }
    let largest = -1;
    for (const id of this.core.get_vocab(true).values()) largest = Math.max(largest, id);
    this.vocabSize = largest + 1;

    const specials: Partial<Record<SpecialTokenField, string>> = {};
    const ids: Partial<Record<SpecialTokenField, number>> = {};
    for (const field of SPECIAL_FIELDS) {
      const token = specialTokenName(op, field, tokenizerConfig[field]);
      if (token === null) continue;
      const id = this.core.token_to_id(token);
      if (id === undefined) throw new ValueError(op, `tokenizer_config.json's ${field} is '${token}', which is not in tokenizer.json's vocabulary`);
      specials[field] = token;
      ids[field] = id;
    }
    this.specialTokens = Object.freeze(specials);
    this.bosId = ids.bos_token ?? null;
    this.eosId = ids.eos_token ?? null;
    // padded positions are masked out of the loss: without pad and eos tokens any id serves
    this.padId = ids.pad_token ?? ids.eos_token ?? 0;
    this.chatTemplate = chatTemplateOf(op, tokenizerConfig.chat_template);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const op = 'HuggingFaceTokenizer.encode';
    if (typeof text !== 'string') throw new ValueError(op, `expected a string, got ${describe(text)}`);
    // the post-processor's own special tokens are left out: bos and eos come from the options
    const ids = this.core.encode(text, { add_special_tokens: false }).ids;
    if (options.addBos) ids.unshift(this.required(op, 'bos_token', this.bosId));
    if (options.addEos) ids.push(this.required(op, 'eos_token', this.eosId));
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const op = 'HuggingFaceTokenizer.decode';
    const list = Array.from(ids);
    list.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ValueError(op, `invalid token id ${id} at position ${i}; expected an integer in [0, ${this.vocabSize})`);
      }
    });
    return this.core.decode(list, { skip_special_tokens: options.skipSpecial ?? true });
  }

  /** The id of a token (special or not) by its text, or null where the vocabulary has no such token. */
  tokenToId(token: string): number | null {
    return this.core.token_to_id(token) ?? null;
  }

  /** The text of a conversation as the model was trained to read it, by its chat template. */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const op = 'HuggingFaceTokenizer.applyChatTemplate';
    if (this.chatTemplate === null) {
      throw new ValueError(op, 'this tokenizer has no chat template (tokenizer_config.json has no chat_template, and there is no chat_template.jinja); format the prompt yourself');
    }
    if (!Array.isArray(messages)) throw new ValueError(op, `messages must be an array of { role, content }, got ${describe(messages)}`);
    messages.forEach((m, i) => {
      if (!isPlainObject(m) || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new ValueError(op, `message ${i} must be { role: string, content: string }, got ${describe(m)}`);
      }
    });
    try {
      this.compiledTemplate ??= new Template(this.chatTemplate);
      return this.compiledTemplate.render({
        ...this.specialTokens,
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
      });
    } catch (err) {
      throw new ValueError(op, `the chat template failed: ${(err as Error).message}`);
    }
  }

  /** The ids of a conversation: its chat template's text, encoded (the template writes its own special tokens). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options));
  }

  private required(op: string, field: SpecialTokenField, id: number | null): number {
    if (id === null) throw new ValueError(op, `this tokenizer has no ${field} (tokenizer_config.json names none); pass ${field === 'bos_token' ? 'addBos' : 'addEos'}: false`);
    return id;
  }
}

/** A special token field of tokenizer_config.json: a string, an AddedToken object { content }, or null. */
function specialTokenName(op: string, field: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (isPlainObject(value) && typeof value.content === 'string') return value.content;
  throw new ValueError(op, `tokenizer_config.json's ${field} must be a string or { content: string }, got ${describe(value)}`);
}

/** tokenizer_config.json's chat_template: one template, or a list of named ones (the one named "default" is used). */
function chatTemplateOf(op: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => isPlainObject(t) && t.name === 'default');
    if (isPlainObject(named) && typeof named.template === 'string') return named.template;
  }
  throw new ValueError(op, `tokenizer_config.json's chat_template must be a string or a list with a { name: "default", template } entry, got ${describe(value)}`);
}
