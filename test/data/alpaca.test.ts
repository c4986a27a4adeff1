import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ValueError,
  ByteTokenizer,
  encodeDataset,
  encodeExample,
  formatPrompt,
  loadAlpacaFile,
  parseAlpaca,
  type AlpacaExample,
  type EncodedExample,
} from '../../src';

const tok = new ByteTokenizer();
const NO_INPUT = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.';
const WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.';
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('parseAlpaca', () => {
  test('accepts records with input/history missing, null, empty or filled; copies them', () => {
    const raw = [
      { instruction: 'a', output: 'b' },
      { instruction: 'a', input: null, output: 'b', history: null },
      { instruction: 'a', input: '', output: 'b', history: [] },
      { instruction: 'a', input: 'x', output: 'b', history: [['u', 'v']], system: 'ignored' },
    ];
    const parsed = parseAlpaca(raw);
    expect(parsed).toEqual([
      { instruction: 'a', output: 'b' },
      { instruction: 'a', output: 'b' },
      { instruction: 'a', input: '', output: 'b', history: [] },
      { instruction: 'a', input: 'x', output: 'b', history: [['u', 'v']] },
    ]);
    expect(parsed[3].history).not.toBe(raw[3].history);
    expect(parsed[3].history![0]).not.toBe(raw[3].history![0]);
  });

  test.each([
    [{ notAnArray: true }, /expected a JSON array of records/],
    [[{ instruction: 'a', output: 'b' }, null], /record 1: expected an object/],
    [[['a', 'b']], /record 0: expected an object/],
    [[{ output: 'b' }], /record 0: field 'instruction' must be a string, got undefined/],
    [[{ instruction: 'a', output: 'b' }, { instruction: 'a', output: 'b' }, { instruction: 'a', output: 7 }], /record 2: field 'output' must be a string, got 7/],
    [[{ instruction: 'a', input: 3, output: 'b' }], /record 0: field 'input' must be a string, null or missing/],
    [[{ instruction: 'a', output: 'b', history: 'no' }], /record 0: field 'history' must be an array/],
    [[{ instruction: 'a', output: 'b', history: [['u', 'v'], ['u']] }], /record 0: field 'history\[1\]' must be a \[user, assistant\] pair/],
    [[{ instruction: 'a', output: 'b', history: [['u', 5]] }], /record 0: field 'history\[0\]'/],
  ])('errors name the record and field: %j', (json, message) => {
    expect(() => parseAlpaca(json)).toThrow(ValueError);
    expect(() => parseAlpaca(json)).toThrow(message);
  });
});

describe('loadAlpacaFile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockgrad-alpaca-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('reads a file (with a BOM)', () => {
    const p = path.join(dir, 'ok.json');
    fs.writeFileSync(p, '\ufeff' + JSON.stringify([{ instruction: 'i', input: '', output: 'o' }]));
    expect(loadAlpacaFile(p)).toEqual([{ instruction: 'i', input: '', output: 'o' }]);
  });

  test('errors name the path', () => {
    const missing = path.join(dir, 'missing.json');
    expect(() => loadAlpacaFile(missing)).toThrow(ValueError);
    expect(() => loadAlpacaFile(missing)).toThrow(`cannot read '${missing}'`);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '[{"instruction": "a",');
    expect(() => loadAlpacaFile(bad)).toThrow(`'${bad}' is not valid JSON`);
    const wrong = path.join(dir, 'wrong.json');
    fs.writeFileSync(wrong, JSON.stringify([{ instruction: 'a', output: 'b' }, { instruction: 'a' }]));
    expect(() => loadAlpacaFile(wrong)).toThrow(`'${wrong}': record 1: field 'output' must be a string`);
  });
});

describe('formatPrompt', () => {
  test('no input: the standard Alpaca template', () => {
    expect(formatPrompt({ instruction: 'Name a colour.', output: 'Red.' })).toBe(
      `${NO_INPUT}\n\n### Instruction:\nName a colour.\n\n### Response:\n`,
    );
    // an empty input is no input
    expect(formatPrompt({ instruction: 'Name a colour.', input: '', output: 'Red.' })).toBe(
      `${NO_INPUT}\n\n### Instruction:\nName a colour.\n\n### Response:\n`,
    );
  });

  test('with input', () => {
    expect(formatPrompt({ instruction: 'Translate to English.', input: 'chat', output: 'cat' })).toBe(
      `${WITH_INPUT}\n\n### Instruction:\nTranslate to English.\n\n### Input:\nchat\n\n### Response:\n`,
    );
  });

  test('history turns come first as Instruction/Response pairs, oldest first', () => {
    const ex: AlpacaExample = {
      instruction: 'And in French?',
      input: 'dog',
      output: 'chien',
      history: [
        ['Hi.', 'Hello!'],
        ['Say dog in German.', 'Hund'],
      ],
    };
    expect(formatPrompt(ex)).toBe(
      `${WITH_INPUT}\n\n` +
        '### Instruction:\nHi.\n\n### Response:\nHello!\n\n' +
        '### Instruction:\nSay dog in German.\n\n### Response:\nHund\n\n' +
        '### Instruction:\nAnd in French?\n\n### Input:\ndog\n\n### Response:\n',
    );
  });
});

/** The masked prefix is -100, the rest equals inputIds; returns the response start. */
function checkMask(enc: EncodedExample): number {
  expect(enc.labels.length).toBe(enc.inputIds.length);
  const start = enc.labels.findIndex((l) => l !== -100);
  expect(start).toBe(enc.responseStart);
  for (let i = 0; i < enc.labels.length; i++) {
    if (i < start) expect(enc.labels[i]).toBe(-100);
    else expect(enc.labels[i]).toBe(enc.inputIds[i]);
  }
  return start;
}

describe('encodeExample', () => {
  test('prompt and history are masked, response and <eos> are labelled', () => {
    const ex: AlpacaExample = { instruction: 'Greet me.', output: '¡Hola, señor! 👋', history: [['Who are you?', 'A model.']] };
    const enc = encodeExample(ex, tok)!;
    const prompt = formatPrompt(ex);
    expect(enc.truncated).toBe(false);
    expect(enc.inputIds).toEqual([257, ...Buffer.from(prompt, 'utf8'), ...Buffer.from(ex.output, 'utf8'), 258]);
    const start = checkMask(enc);
    expect(start).toBe(1 + bytes(prompt));
    // the history's assistant turn is in the prompt, so it is masked
    expect(tok.decode(enc.inputIds.slice(0, start))).toBe(prompt);
    expect(tok.decode(enc.labels.slice(start), { skipSpecial: false })).toBe(`${ex.output}<eos>`);
    expect(enc.labels.filter((l) => l !== -100).length).toBe(bytes(ex.output) + 1);
  });

  test('addBos / addEos false', () => {
    const ex = { instruction: 'x', output: 'y' };
    const enc = encodeExample(ex, tok, { addBos: false, addEos: false })!;
    expect(enc.inputIds).toEqual([...Buffer.from(formatPrompt(ex)), 121]);
    expect(enc.labels).toEqual([...new Array(bytes(formatPrompt(ex))).fill(-100), 121]);
  });

  describe('truncation', () => {
    const shortEx = { instruction: 'Tell a long story.', output: 'ab'.repeat(500) }; // P = 1 + prompt, R = 1001
    const P = 1 + bytes(formatPrompt(shortEx));

    test('exact fit is not truncated', () => {
      const ex = { instruction: 'x', output: 'hello' };
      const full = 1 + bytes(formatPrompt(ex)) + 6;
      const enc = encodeExample(ex, tok, { maxLength: full })!;
      expect(enc.truncated).toBe(false);
      expect(enc.inputIds.length).toBe(full);
      expect(encodeExample(ex, tok, { maxLength: full - 1 })!.truncated).toBe(true);
    });

    test('short prompt: kept whole, the response end (and <eos>) cut', () => {
      const L = 400;
      expect(P).toBeLessThanOrEqual(L / 2);
      const enc = encodeExample(shortEx, tok, { maxLength: L })!;
      expect(enc.truncated).toBe(true);
      expect(enc.inputIds.length).toBe(L);
      expect(checkMask(enc)).toBe(P);
      expect(tok.decode(enc.inputIds.slice(0, P))).toBe(formatPrompt(shortEx));
      expect(tok.decode(enc.labels.slice(P), { skipSpecial: false })).toBe(shortEx.output.slice(0, L - P));
      expect(enc.inputIds).not.toContain(tok.eosId);
    });

    test('long prompt, short response: the prompt loses its start, <bos> stays', () => {
      const ex = { instruction: 'word '.repeat(300) + 'END', output: 'OK.' };
      const L = 200;
      const enc = encodeExample(ex, tok, { maxLength: L })!;
      expect(enc.truncated).toBe(true);
      expect(enc.inputIds.length).toBe(L);
      const start = checkMask(enc);
      expect(start).toBe(L - 4);
      expect(enc.inputIds[0]).toBe(tok.bosId);
      const prompt = formatPrompt(ex);
      expect(tok.decode(enc.inputIds.slice(1, start))).toBe(prompt.slice(prompt.length - (L - 5)));
      expect(tok.decode(enc.inputIds.slice(1, start)).endsWith('END\n\n### Response:\n')).toBe(true);
      expect(tok.decode(enc.labels.slice(start), { skipSpecial: false })).toBe('OK.<eos>');
    });

    test('both long: half the window each', () => {
      const ex = { instruction: 'q'.repeat(1000), output: 'r'.repeat(1000) };
      const enc = encodeExample(ex, tok, { maxLength: 101 })!;
      expect(enc.inputIds.length).toBe(101);
      expect(checkMask(enc)).toBe(51); // <bos> + 50 prompt tokens
      expect(enc.inputIds[0]).toBe(tok.bosId);
      expect(tok.decode(enc.inputIds.slice(1, 51))).toBe(('q'.repeat(1000) + '\n\n### Response:\n').slice(-50));
      expect(tok.decode(enc.labels.slice(51))).toBe('r'.repeat(50));
    });

    test('without <bos> the prompt is cut from the left too', () => {
      const ex = { instruction: 'q'.repeat(1000), output: 'r'.repeat(1000) };
      const enc = encodeExample(ex, tok, { maxLength: 100, addBos: false })!;
      expect(checkMask(enc)).toBe(50);
      expect(tok.decode(enc.inputIds.slice(0, 50))).toBe(('q'.repeat(1000) + '\n\n### Response:\n').slice(-50));
    });

    test('examples that would teach nothing are dropped (null)', () => {
      expect(encodeExample(shortEx, tok, { maxLength: 1 })).toBeNull();
      const two = encodeExample(shortEx, tok, { maxLength: 2 })!;
      expect(two.inputIds).toEqual([tok.bosId, 97]);
      expect(two.labels).toEqual([-100, 97]);
      expect(encodeExample({ instruction: 'x', output: '' }, tok, { addEos: false })).toBeNull();
      const eosOnly = encodeExample({ instruction: 'x', output: '' }, tok)!;
      expect(eosOnly.labels.filter((l) => l !== -100)).toEqual([tok.eosId]);
    });

    test('bad maxLength', () => {
      expect(() => encodeExample(shortEx, tok, { maxLength: 0 })).toThrow(ValueError);
      expect(() => encodeExample(shortEx, tok, { maxLength: 2.5 })).toThrow(ValueError);
    });
  });

  test('encodeDataset keeps, reports dropped and truncated', () => {
    const exs = [
      { instruction: 'a', output: 'b' },
      { instruction: 'a', output: '' },
      { instruction: 'a', output: 'c'.repeat(500) },
    ];
    const res = encodeDataset(exs, tok, { maxLength: 200, addEos: false });
    expect(res.sourceIndices).toEqual([0, 2]);
    expect(res.dropped).toEqual([1]);
    expect(res.truncatedCount).toBe(1);
    expect(res.examples.map((e) => e.truncated)).toEqual([false, true]);
    // the 500-byte answer keeps 200 - (prompt) of its bytes: its labels were cut
    expect(res.responseTruncatedCount).toBe(1);
    expect(res.examples.map((e) => e.responseTruncated)).toEqual([false, true]);
    // a long prompt with a short answer loses prompt tokens only: truncated, no label cut
    const longPrompt = encodeDataset([{ instruction: 'p'.repeat(500), output: 'short' }], tok, { maxLength: 100 });
    expect(longPrompt.truncatedCount).toBe(1);
    expect(longPrompt.responseTruncatedCount).toBe(0);
  });
});
