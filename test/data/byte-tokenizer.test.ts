import {
  ValueError,
  ByteTokenizer,
} from '../../src';

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  test('ids: bytes then <pad>, <bos>, <eos>', () => {
    expect(tok.vocabSize).toBe(259);
    expect([tok.padId, tok.bosId, tok.eosId]).toEqual([256, 257, 258]);
    expect(tok.specialTokens).toEqual(['<pad>', '<bos>', '<eos>']);
    expect(tok.encode('hi')).toEqual([104, 105]);
    expect(tok.encode('hi', { addBos: true, addEos: true })).toEqual([257, 104, 105, 258]);
    expect(tok.encode('')).toEqual([]);
    expect(tok.encode('', { addBos: true, addEos: true })).toEqual([257, 258]);
  });

  test('multi-byte characters are their UTF-8 bytes', () => {
    expect(tok.encode('ñ')).toEqual([0xc3, 0xb1]); // U+00F1
    expect(tok.encode('n\u0303')).toEqual([0x6e, 0xcc, 0x83]); // n + combining tilde
    expect(tok.encode('中')).toEqual([0xe4, 0xb8, 0xad]);
    expect(tok.encode('😀')).toEqual([0xf0, 0x9f, 0x98, 0x80]);
  });

  test.each([
    ['empty', ''],
    ['ascii', 'Hello, world! 0123 ~`\t\n\r\u0000\u007f'],
    ['chinese', '中文分词测试，你好世界。'],
    ['emoji zwj family', '👩‍👩‍👧'],
    ['emoji with skin tone and flag', '👍🏽 🇫🇷 ❤️'],
    ['n composed', '\u00f1'],
    ['n decomposed', 'n\u0303'],
    ['mixed scripts', 'Ελληνικά русский עברית العربية हिन्दी 日本語 한국어'],
    ['leading BOM char', '\ufeffstarts with a byte order mark'],
    ['astral plane', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈'],
    ['angle-bracket text that looks special', '<eos><bos><pad>'],
  ])('round trip: %s', (_name, s) => {
    const ids = tok.encode(s);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 256)).toBe(true);
    expect(ids.length).toBe(Buffer.byteLength(s, 'utf8'));
    expect(tok.decode(ids)).toBe(s);
    expect(tok.decode(tok.encode(s, { addBos: true, addEos: true }))).toBe(s);
  });

  test('composed and decomposed ñ stay distinct (no normalisation)', () => {
    expect(tok.decode(tok.encode('\u00f1'))).not.toBe(tok.decode(tok.encode('n\u0303')));
    expect(tok.decode(tok.encode('n\u0303')).length).toBe(2);
  });

  test('text that looks like a special token is encoded as bytes', () => {
    expect(tok.encode('<eos>')).toEqual([60, 101, 111, 115, 62]);
  });

  test('lone surrogates become U+FFFD (documented exception)', () => {
    expect(tok.encode('a\ud800b')).toEqual([97, 0xef, 0xbf, 0xbd, 98]);
    expect(tok.decode(tok.encode('a\ud800b'))).toBe('a\ufffdb');
    expect(tok.decode(tok.encode('\udc00'))).toBe('\ufffd');
  });

  test('decode: specials skipped by default, rendered by name on request', () => {
    const ids = [257, 104, 105, 256, 258];
    expect(tok.decode(ids)).toBe('hi');
    expect(tok.decode(ids, { skipSpecial: false })).toBe('<bos>hi<pad><eos>');
    // a special between the bytes of one character splits it: each half is invalid UTF-8
    const split = [0xc3, 258, 0xb1];
    expect(tok.decode(split)).toBe('\ufffd\ufffd');
    expect(tok.decode([0xc3, 0xb1])).toBe('ñ');
  });

  test('decode: invalid ids are ValueErrors naming the position', () => {
    expect(() => tok.decode([104, 259])).toThrow(ValueError);
    expect(() => tok.decode([104, 259])).toThrow(/invalid token id 259 at position 1/);
    expect(() => tok.decode([-1])).toThrow(ValueError);
    expect(() => tok.decode([1.5])).toThrow(ValueError);
    expect(() => tok.decode([NaN])).toThrow(ValueError);
    expect(tok.decode(new Int32Array([104, 105]))).toBe('hi');
  });

  test('extra special tokens get ids after <eos>', () => {
    const t = new ByteTokenizer({ specialTokens: ['<sep>', '<user>'] });
    expect(t.vocabSize).toBe(261);
    expect(t.specialId('<sep>')).toBe(259);
    expect(t.specialId('<user>')).toBe(260);
    expect(t.specialId('<eos>')).toBe(258);
    expect([t.padId, t.bosId, t.eosId]).toEqual([256, 257, 258]);
    expect(t.decode([260, 104, 259], { skipSpecial: false })).toBe('<user>h<sep>');
    expect(t.decode([260, 104, 259])).toBe('h');
    expect(() => t.specialId('<nope>')).toThrow(ValueError);
    expect(() => tok.decode([259])).toThrow(ValueError); // the default tokenizer has no id 259
  });

  test('bad special tokens are rejected', () => {
    expect(() => new ByteTokenizer({ specialTokens: ['<eos>'] })).toThrow(/given twice/);
    expect(() => new ByteTokenizer({ specialTokens: ['<a>', '<a>'] })).toThrow(ValueError);
    expect(() => new ByteTokenizer({ specialTokens: [''] })).toThrow(ValueError);
  });

  test('encode rejects non-strings', () => {
    expect(() => tok.encode(undefined as unknown as string)).toThrow(ValueError);
  });
});
