/**
 * The fine-tuning data: Alpaca files read and tokenized with the model's tokenizer, cut to
 * --max-length (with a count of what was cut), and split into training and evaluation sets.
 * A fingerprint of the files' bytes goes into each checkpoint, so a resume notices changed data.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Generator, encodeDataset, loadAlpacaFile, type AlpacaExample, type EncodedExample, type Tokenizer } from '../../src';
import { UsageError, type FinetuneConfig } from './options';

export interface FinetuneData {
  train: EncodedExample[];
  eval: EncodedExample[];
  /** sha256 over every --data and --eval-data file, in order. */
  fingerprint: string;
  /** One line each: what was read, cut and dropped (printed at the start). */
  notes: string[];
  /** Lines that deserve the user's attention (printed as warnings). */
  warnings: string[];
}

function readFiles(flag: string, files: readonly string[], hash: ReturnType<typeof createHash>): AlpacaExample[] {
  const all: AlpacaExample[] = [];
  for (const file of files) {
    if (!existsSync(file)) throw new UsageError(`${flag}: no such file '${file}'`);
    if (!statSync(file).isFile()) throw new UsageError(`${flag}: '${file}' is not a file`);
    hash.update(readFileSync(file));
    try {
      all.push(...loadAlpacaFile(file));
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message.replace(/^loadAlpacaFile: /, '')}`);
    }
  }
  return all;
}

/** Tokenizes, counts the cuts, and says what it did. */
function encode(what: string, examples: AlpacaExample[], tokenizer: Tokenizer, maxLength: number, data: Pick<FinetuneData, 'notes' | 'warnings'>): EncodedExample[] {
  const enc = encodeDataset(examples, tokenizer, { maxLength });
  const n = examples.length;
  data.notes.push(`${what}: ${n} examples, ${enc.examples.length} kept, ${enc.truncatedCount} cut to --max-length ${maxLength}`);
  if (enc.responseTruncatedCount > 0) {
    data.warnings.push(
      `${enc.responseTruncatedCount} of ${n} ${what} examples lost answer tokens to --max-length ${maxLength}: ` +
        'the model never sees their ends (raise --max-length to keep them)',
    );
  }
  if (enc.dropped.length > 0) {
    data.warnings.push(`${enc.dropped.length} ${what} examples have no answer token left within --max-length ${maxLength} and were dropped`);
  }
  return enc.examples;
}

export function prepareData(config: FinetuneConfig, tokenizer: Tokenizer, maxLength: number): FinetuneData {
  const hash = createHash('sha256');
  const data: FinetuneData = { train: [], eval: [], fingerprint: '', notes: [], warnings: [] };
  const trainExamples = readFiles('--data', config.data, hash);
  const evalExamples = readFiles('--eval-data', config.evalData, hash);
  data.fingerprint = hash.digest('hex');

  let train = encode('training', trainExamples, tokenizer, maxLength, data);
  let held: EncodedExample[] = config.evalData.length > 0 ? encode('evaluation', evalExamples, tokenizer, maxLength, data) : [];
  if (config.valSplit > 0) {
    // a seeded permutation, so the same seed holds out the same examples on every run
    const order = new Generator(config.seed).permutation(train.length);
    const count = Math.max(1, Math.round(train.length * config.valSplit));
    if (count >= train.length) {
      throw new UsageError(`--val-split ${config.valSplit} of ${train.length} examples leaves none for training`);
    }
    const heldOut = new Set(order.slice(0, count));
    held = train.filter((_, i) => heldOut.has(i));
    train = train.filter((_, i) => !heldOut.has(i));
    data.notes.push(`--val-split ${config.valSplit}: ${held.length} examples held out for evaluation, ${train.length} for training`);
  }
  if (train.length === 0) throw new UsageError('no training example is left (see the lines above); check --data and --max-length');
  if (train.length < config.batchSize) {
    data.warnings.push(`${train.length} training examples is fewer than --batch-size ${config.batchSize}: every batch holds all of them`);
  }
  data.train = train;
  data.eval = held;
  return data;
}
