/** bfloat16 bits: decoding is exact for every pattern, and encoding agrees for float32 and double sources. */
import { decodeBFloat16, encodeBFloat16, float32BitsToBFloat16Bits, numberToBFloat16Bits } from '../../src/tensor/bfloat16';

describe('bfloat16', () => {
  test('decoding every pattern gives the float32 whose high half it is', () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const values = decodeBFloat16(bits);
    const view = new DataView(new ArrayBuffer(4));
    const wrong: number[] = [];
    for (let b = 0; b < 65536; b++) {
      view.setUint32(0, b * 65536);
      if (!Object.is(values[b], view.getFloat32(0)) && !(Number.isNaN(values[b]) && Number.isNaN(view.getFloat32(0)))) wrong.push(b);
    }
    expect(wrong).toEqual([]);
  });

  test('decoding then encoding gives back every pattern, a NaN made quiet', () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const again = encodeBFloat16(decodeBFloat16(bits));
    const wrong: number[] = [];
    for (let b = 0; b < 65536; b++) {
      const nan = (b & 0x7fff) > 0x7f80; // a NaN keeps its sign and payload, with the quiet bit set
      if (again[b] !== (nan ? b | 0x0040 : b)) wrong.push(b);
    }
    expect(wrong).toEqual([]);
  });

  test('a Float32Array (read as bits) and its values as doubles encode alike', () => {
    const f32 = new Float32Array([0, -0, 1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, -Infinity, 1e-40, Math.PI]);
    const fromBits = encodeBFloat16(f32);
    expect(Array.from(fromBits)).toEqual(Array.from(encodeBFloat16(Array.from(f32))));
    const u32 = new Uint32Array(f32.buffer);
    expect(Array.from(fromBits)).toEqual(Array.from(u32, (u) => float32BitsToBFloat16Bits(u)));
    expect(fromBits[3]).toBe(0x3f80); // a tie rounds to even (down)
    expect(fromBits[4]).toBe(0x3f82); // a tie rounds to even (up)
    expect(numberToBFloat16Bits(1 + 2 ** -8 + 2 ** -30)).toBe(0x3f81); // a double rounds once
  });
});
