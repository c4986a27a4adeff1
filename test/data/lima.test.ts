/**
 * End to end on LIMA (../shared/data/lima.json, 1,029 Alpaca records, outside the repository):
 * load, encode with the prompt masked, truncate, batch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Batcher, ByteTokenizer, encodeDataset, encodeExample, formatPrompt, loadAlpacaFile, type AlpacaExample } from '../../src';
import { flat } from '../helpers';

const LIMA = path.resolve(__dirname, '../../../shared/data/lima.json');
const tok = new ByteTokenizer();
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('LIMA end to end', () => {
  test('the data file exists', () => {
    expect(fs.existsSync(LIMA)).toBe(true);
  });

  let data: AlpacaExample[] = [];
  beforeAll(() => {
    if (fs.existsSync(LIMA)) data = loadAlpacaFile(LIMA);
  });

  test('all 1,029 records parse', () => {
    expect(data.length).toBe(1029);
    expect(data.filter((e) => (e.history ?? []).length > 0).length).toBeGreaterThan(0);
  });

  test('untruncated: masked part decodes to the prompt, unmasked part to output + <eos>', () => {
    let withHistory = 0;
    for (const ex of data) {
      const enc = encodeExample(ex, tok)!;
      expect(enc.truncated).toBe(false);
      const prompt = formatPrompt(ex);
      const masked = enc.labels.filter((l) => l === -100).length;
      expect(masked).toBe(1 + bytes(prompt));
      expect(enc.responseStart).toBe(masked);
      expect(enc.labels.length - masked).toBe(bytes(ex.output) + 1);
      expect(enc.labels.slice(0, masked).every((l) => l === -100)).toBe(true);
      expect(enc.labels.slice(masked)).toEqual(enc.inputIds.slice(masked));
      expect(tok.decode(enc.inputIds.slice(0, masked), { skipSpecial: false })).toBe(`<bos>${prompt}`);
      expect(tok.decode(enc.labels.slice(masked), { skipSpecial: false })).toBe(`${ex.output}<eos>`);
      if (ex.history?.length) {
        withHistory++;
        for (const [u, a] of ex.history) expect(prompt).toContain(`### Instruction:\n${u}\n\n### Response:\n${a}\n\n`);
      }
    }
    expect(withHistory).toBeGreaterThan(0);
  });

  test('maxLength 512: lengths, truncation rule and masking counts are consistent', () => {
    const L = 512;
    const res = encodeDataset(data, tok, { maxLength: L });
    expect(res.dropped).toEqual([]);
    expect(res.examples.length).toBe(1029);
    expect(res.truncatedCount).toBeGreaterThan(0);
    res.examples.forEach((enc, k) => {
      const ex = data[res.sourceIndices[k]];
      const prompt = tok.encode(formatPrompt(ex), { addBos: true });
      const response = tok.encode(ex.output, { addEos: true });
      const P = prompt.length;
      const R = response.length;
      expect(enc.inputIds.length).toBe(Math.min(L, P + R));
      expect(enc.truncated).toBe(P + R > L);
      const start = enc.responseStart;
      expect(enc.labels.slice(0, start).every((l) => l === -100)).toBe(true);
      expect(enc.labels.slice(start)).toEqual(enc.inputIds.slice(start));
      if (!enc.truncated) {
        expect(tok.decode(enc.labels.slice(start), { skipSpecial: false })).toBe(`${ex.output}<eos>`);
        return;
      }
      const rKeep = Math.min(R, Math.max(L - P, Math.floor(L / 2)));
      expect(enc.labels.length - start).toBe(rKeep);
      expect(enc.inputIds.slice(start)).toEqual(response.slice(0, rKeep));
      expect(enc.inputIds[0]).toBe(tok.bosId);
      expect(enc.inputIds.slice(1, start)).toEqual(prompt.slice(P - (start - 1)));
    });
  });

  test('batched: masks and label counts add up', () => {
    const res = encodeDataset(data, tok, { maxLength: 256 });
    const batcher = new Batcher(res.examples, { batchSize: 64, shuffle: true, seed: 1, padId: tok.padId });
    let tokens = 0;
    let labelled = 0;
    let rows = 0;
    for (const batch of batcher) {
      const [B, T] = batch.inputIds.shape;
      expect(T).toBeLessThanOrEqual(256);
      const mask = flat(batch.attentionMask);
      const ids = flat(batch.inputIds);
      const labels = flat(batch.labels);
      mask.forEach((m, i) => {
        if (m === 0) {
          expect(ids[i]).toBe(tok.padId);
          expect(labels[i]).toBe(-100);
        }
      });
      tokens += mask.reduce((s, m) => s + m, 0);
      labelled += labels.filter((l) => l !== -100).length;
      rows += B;
      for (const t of [batch.inputIds, batch.labels, batch.attentionMask]) t.dispose();
    }
    expect(rows).toBe(1029);
    expect(tokens).toBe(res.examples.reduce((s, e) => s + e.inputIds.length, 0));
    expect(labelled).toBe(res.examples.reduce((s, e) => s + e.inputIds.length - e.responseStart, 0));
  });
});
