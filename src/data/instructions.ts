/**
 * A small generated instruction dataset for demos: templated tasks with short, exactly
 * computable answers (arithmetic on small numbers, reversing, capitalising or spelling a word,
 * counting letters or vowels, the alphabet, opposites), in Alpaca format, some with an `input`.
 * A tiny byte-level model can learn them, and a test can check every answer by recomputing it.
 *
 * The word lists and templates are written here; nothing is copied from another dataset. The
 * output is a pure function of (count, seed, tasks): the same options always give the same
 * examples. Every answer ends with a full stop, e.g. "What is 7 plus 5?" -> "12.".
 */
import { ValueError } from '../errors';
import { Generator } from '../tensor/random';
import type { AlpacaExample } from './alpaca';

/** The task families, in the order they are listed. */
export const INSTRUCTION_TASKS = [
  'add',
  'subtract',
  'multiply',
  'larger',
  'reverse',
  'uppercase',
  'spell',
  'length',
  'vowels',
  'alphabet',
  'nextLetter',
  'opposite',
] as const;

export type InstructionTask = (typeof INSTRUCTION_TASKS)[number];

/** An Alpaca example plus the task family that produced it. */
export interface GeneratedInstruction extends AlpacaExample {
  task: InstructionTask;
}

export interface GenerateInstructionOptions {
  /** Number of examples (a non-negative integer). */
  count: number;
  /** Seed of the generator that picks tasks and operands (default 0). */
  seed?: number;
  /** Task families to draw from (default: all of INSTRUCTION_TASKS). */
  tasks?: readonly InstructionTask[];
}

/** Short lowercase words the word tasks draw from. */
export const DEMO_WORDS: readonly string[] = [
  'cat', 'dog', 'sun', 'tree', 'book', 'fish', 'bird', 'milk', 'rain', 'star',
  'lamp', 'ship', 'road', 'cake', 'frog', 'hill', 'moon', 'leaf', 'door', 'bell',
  'apple', 'river', 'stone', 'cloud', 'green', 'plant', 'table', 'chair', 'water', 'house',
  'train', 'bread', 'snow', 'wind', 'salt', 'corn', 'gold', 'ring', 'wolf', 'bear',
  'duck', 'goat', 'rose', 'sand', 'tent', 'wave', 'kite', 'drum', 'pen', 'cup',
];

/** Pairs of opposites; the relation is used both ways. Every word appears once. */
export const OPPOSITE_PAIRS: readonly (readonly [string, string])[] = [
  ['hot', 'cold'], ['big', 'small'], ['up', 'down'], ['day', 'night'], ['fast', 'slow'],
  ['happy', 'sad'], ['left', 'right'], ['wet', 'dry'], ['early', 'late'], ['full', 'empty'],
  ['hard', 'soft'], ['win', 'lose'], ['yes', 'no'], ['in', 'out'], ['push', 'pull'],
  ['open', 'closed'], ['rich', 'poor'], ['young', 'old'], ['first', 'last'], ['black', 'white'],
  ['loud', 'quiet'], ['thick', 'thin'], ['strong', 'weak'], ['above', 'below'],
];

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';
const VOWELS = 'aeiou';

type Maker = (g: Generator) => Omit<GeneratedInstruction, 'task'>;

const pick = <T>(g: Generator, items: readonly T[]): T => items[g.randint(0, items.length)];
const word = (g: Generator): string => pick(g, DEMO_WORDS);
/** One of two phrasings: a question in the instruction, or a fixed instruction with the operands as input. */
const either = (g: Generator, a: () => Omit<GeneratedInstruction, 'task'>, b: () => Omit<GeneratedInstruction, 'task'>) =>
  g.randint(0, 2) === 0 ? a() : b();

const MAKERS: Record<InstructionTask, Maker> = {
  add: (g) => {
    const a = g.randint(0, 21);
    const b = g.randint(0, 21);
    return either(
      g,
      () => ({ instruction: `What is ${a} plus ${b}?`, output: `${a + b}.` }),
      () => ({ instruction: 'Add the two numbers.', input: `${a} and ${b}`, output: `${a + b}.` }),
    );
  },
  subtract: (g) => {
    const a = g.randint(0, 21);
    const b = g.randint(0, a + 1);
    return either(
      g,
      () => ({ instruction: `What is ${a} minus ${b}?`, output: `${a - b}.` }),
      () => ({ instruction: 'Subtract the second number from the first.', input: `${a} and ${b}`, output: `${a - b}.` }),
    );
  },
  multiply: (g) => {
    const a = g.randint(0, 10);
    const b = g.randint(0, 10);
    return { instruction: `What is ${a} times ${b}?`, output: `${a * b}.` };
  },
  larger: (g) => {
    const a = g.randint(0, 100);
    let b = g.randint(0, 99);
    if (b >= a) b++; // distinct from a, uniform over the rest
    return either(
      g,
      () => ({ instruction: `Which is larger, ${a} or ${b}?`, output: `${Math.max(a, b)}.` }),
      () => ({ instruction: 'Which number is larger?', input: `${a} or ${b}`, output: `${Math.max(a, b)}.` }),
    );
  },
  reverse: (g) => {
    const w = word(g);
    const r = [...w].reverse().join('');
    return either(
      g,
      () => ({ instruction: `Write the word ${w} backwards.`, output: `${r}.` }),
      () => ({ instruction: 'Reverse the letters of the word.', input: w, output: `${r}.` }),
    );
  },
  uppercase: (g) => {
    const w = word(g);
    return { instruction: 'Write the word in capital letters.', input: w, output: `${w.toUpperCase()}.` };
  },
  spell: (g) => {
    const w = word(g);
    return { instruction: 'Spell the word with a dash between the letters.', input: w, output: `${[...w].join('-')}.` };
  },
  length: (g) => {
    const w = word(g);
    return either(
      g,
      () => ({ instruction: `How many letters are in the word ${w}?`, output: `${w.length}.` }),
      () => ({ instruction: 'Count the letters in the word.', input: w, output: `${w.length}.` }),
    );
  },
  vowels: (g) => {
    const w = word(g);
    const n = [...w].filter((c) => VOWELS.includes(c)).length;
    return { instruction: 'How many vowels (a, e, i, o, u) are in the word?', input: w, output: `${n}.` };
  },
  alphabet: (g) => {
    const n = g.randint(1, 11);
    return { instruction: `List the first ${n} letters of the alphabet.`, output: `${[...ALPHABET.slice(0, n)].join(', ')}.` };
  },
  nextLetter: (g) => {
    const i = g.randint(0, 25);
    return { instruction: `Which letter comes after ${ALPHABET[i]}?`, output: `${ALPHABET[i + 1]}.` };
  },
  opposite: (g) => {
    const pair = pick(g, OPPOSITE_PAIRS);
    const k = g.randint(0, 2);
    const [w, o] = [pair[k], pair[1 - k]];
    return either(
      g,
      () => ({ instruction: `What is the opposite of ${w}?`, output: `${o}.` }),
      () => ({ instruction: 'Give the opposite of the word.', input: w, output: `${o}.` }),
    );
  },
};

/**
 * `count` examples drawn from the task families, balanced: the tasks are dealt in rounds, each
 * round a fresh seeded shuffle of all the families, so every family appears within one of
 * every other's count. Deterministic in (count, seed, tasks).
 */
export function generateInstructionDataset(options: GenerateInstructionOptions): GeneratedInstruction[] {
  const op = 'generateInstructionDataset';
  const { count, seed = 0, tasks = INSTRUCTION_TASKS } = options ?? ({} as GenerateInstructionOptions);
  if (!Number.isInteger(count) || count < 0) throw new ValueError(op, `count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(seed)) throw new ValueError(op, `seed must be an integer, got ${seed}`);
  if (!Array.isArray(tasks) || tasks.length === 0) throw new ValueError(op, 'tasks must be a non-empty array of task names');
  for (const t of tasks) {
    if (!(INSTRUCTION_TASKS as readonly string[]).includes(t)) {
      throw new ValueError(op, `unknown task '${String(t)}'; known tasks: ${INSTRUCTION_TASKS.join(', ')}`);
    }
  }
  const g = new Generator(seed);
  const out: GeneratedInstruction[] = [];
  let round: number[] = [];
  for (let i = 0; i < count; i++) {
    if (round.length === 0) round = g.permutation(tasks.length);
    const task: InstructionTask = tasks[round.pop() as number];
    out.push({ ...MAKERS[task](g), task });
  }
  return out;
}
