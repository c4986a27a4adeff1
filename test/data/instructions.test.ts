import {
  ValueError,
  ByteTokenizer,
  DEMO_WORDS,
  INSTRUCTION_TASKS,
  OPPOSITE_PAIRS,
  encodeExample,
  generateInstructionDataset,
  parseAlpaca,
  type GeneratedInstruction,
} from '../../src';

/** Independent solver: reads the question back from the text and computes the answer. */
function solve(ex: GeneratedInstruction): string {
  const text = `${ex.instruction}${ex.input !== undefined ? `\n${ex.input}` : ''}`;
  let m: RegExpMatchArray | null;
  if ((m = text.match(/^What is (\d+) plus (\d+)\?$/)) || (m = text.match(/^Add the two numbers\.\n(\d+) and (\d+)$/))) {
    return `${Number(m[1]) + Number(m[2])}`;
  }
  if ((m = text.match(/^What is (\d+) minus (\d+)\?$/)) || (m = text.match(/^Subtract the second number from the first\.\n(\d+) and (\d+)$/))) {
    return `${Number(m[1]) - Number(m[2])}`;
  }
  if ((m = text.match(/^What is (\d+) times (\d+)\?$/))) return `${Number(m[1]) * Number(m[2])}`;
  if ((m = text.match(/^Which is larger, (\d+) or (\d+)\?$/)) || (m = text.match(/^Which number is larger\?\n(\d+) or (\d+)$/))) {
    return `${Number(m[1]) > Number(m[2]) ? m[1] : m[2]}`;
  }
  if ((m = text.match(/^Write the word (\w+) backwards\.$/)) || (m = text.match(/^Reverse the letters of the word\.\n(\w+)$/))) {
    let r = '';
    for (let i = m[1].length - 1; i >= 0; i--) r += m[1][i];
    return r;
  }
  if ((m = text.match(/^Write the word in capital letters\.\n(\w+)$/))) return m[1].toUpperCase();
  if ((m = text.match(/^Spell the word with a dash between the letters\.\n(\w+)$/))) return m[1].split('').join('-');
  if ((m = text.match(/^How many letters are in the word (\w+)\?$/)) || (m = text.match(/^Count the letters in the word\.\n(\w+)$/))) {
    return `${m[1].length}`;
  }
  if ((m = text.match(/^How many vowels \(a, e, i, o, u\) are in the word\?\n(\w+)$/))) return `${m[1].replace(/[^aeiou]/g, '').length}`;
  if ((m = text.match(/^List the first (\d+) letters of the alphabet\.$/))) {
    return Array.from({ length: Number(m[1]) }, (_, i) => String.fromCharCode(97 + i)).join(', ');
  }
  if ((m = text.match(/^Which letter comes after ([a-y])\?$/))) return String.fromCharCode(m[1].charCodeAt(0) + 1);
  if ((m = text.match(/^What is the opposite of (\w+)\?$/)) || (m = text.match(/^Give the opposite of the word\.\n(\w+)$/))) {
    const pair = OPPOSITE_PAIRS.find((p) => p.includes(m![1]))!;
    return pair[0] === m[1] ? pair[1] : pair[0];
  }
  throw new Error(`unrecognised example: ${JSON.stringify(ex)}`);
}

describe('generateInstructionDataset', () => {
  const data = generateInstructionDataset({ count: 600, seed: 3 });

  test('deterministic in the seed', () => {
    expect(generateInstructionDataset({ count: 600, seed: 3 })).toEqual(data);
    expect(generateInstructionDataset({ count: 50, seed: 3 })).toEqual(data.slice(0, 50));
    expect(generateInstructionDataset({ count: 600, seed: 4 })).not.toEqual(data);
    expect(generateInstructionDataset({ count: 0, seed: 3 })).toEqual([]);
  });

  test('every answer is correct (recomputed from the question) and ends with a full stop', () => {
    for (const ex of data) {
      expect(ex.output.endsWith('.')).toBe(true);
      expect(ex.output.slice(0, -1)).toBe(solve(ex));
    }
    // spot checks of the exact wording
    const add = data.find((e) => e.task === 'add' && e.input === undefined)!;
    const [, a, b] = add.instruction.match(/^What is (\d+) plus (\d+)\?$/)!;
    expect(add.output).toBe(`${Number(a) + Number(b)}.`);
  });

  test('balanced over the tasks, some with input, short answers, valid Alpaca', () => {
    const k = INSTRUCTION_TASKS.length;
    const counts = new Map<string, number>();
    for (const ex of data) counts.set(ex.task, (counts.get(ex.task) ?? 0) + 1);
    expect(counts.size).toBe(k);
    for (const c of counts.values()) expect(c).toBe(600 / k);
    const withInput = data.filter((e) => e.input !== undefined).length;
    expect(withInput).toBeGreaterThan(100);
    expect(withInput).toBeLessThan(500);
    expect(Math.max(...data.map((e) => e.output.length))).toBeLessThanOrEqual(30);
    expect(parseAlpaca(JSON.parse(JSON.stringify(data))).length).toBe(600);
    // not one example repeated: a fair amount of variety
    expect(new Set(data.map((e) => `${e.instruction}|${e.input}`)).size).toBeGreaterThan(400);
    // byte-level encodings stay short: the Alpaca preamble (105 or 159 bytes) is most of each sequence
    const tok = new ByteTokenizer();
    const lengths = data.map((ex) => encodeExample(ex, tok)!.inputIds.length);
    expect(Math.max(...lengths)).toBeLessThan(300);
  });

  test('task subsets and word lists', () => {
    const only = generateInstructionDataset({ count: 40, seed: 1, tasks: ['opposite', 'alphabet'] });
    expect(new Set(only.map((e) => e.task))).toEqual(new Set(['opposite', 'alphabet']));
    for (const ex of only) expect(ex.output.slice(0, -1)).toBe(solve(ex));
    const words = OPPOSITE_PAIRS.flat();
    expect(new Set(words).size).toBe(words.length);
    expect(DEMO_WORDS.every((w) => /^[a-z]+$/.test(w))).toBe(true);
  });

  test('bad options', () => {
    expect(() => generateInstructionDataset({ count: -1 })).toThrow(ValueError);
    expect(() => generateInstructionDataset({ count: 2.5 })).toThrow(ValueError);
    expect(() => generateInstructionDataset({ count: 2, seed: 0.5 })).toThrow(ValueError);
    expect(() => generateInstructionDataset({ count: 2, tasks: [] })).toThrow(ValueError);
    expect(() => generateInstructionDataset({ count: 2, tasks: ['dance' as 'add'] })).toThrow(/unknown task 'dance'/);
  });
});
