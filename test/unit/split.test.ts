import { describe, expect, it } from 'vitest';
import { splitMessage } from '../../src/delivery/split.js';

const fenceBalanced = (chunk: string) => (chunk.match(/^\s*```/gm) ?? []).length % 2 === 0;

describe('splitMessage', () => {
  it.each([
    ['short text stays whole', 'hello', 100, 1],
    ['exactly max stays whole', 'x'.repeat(100), 100, 1],
    ['long prose splits on lines', Array.from({ length: 50 }, (_, i) => `line ${i} of prose`).join('\n'), 120, 8],
  ])('%s', (_name, text, max, expectedMin) => {
    const chunks = splitMessage(text, max);
    expect(chunks.length).toBeGreaterThanOrEqual(expectedMin);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(max);
    expect(chunks.join('\n').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
  });

  it('never leaves a code fence open across chunks and reopens with the language', () => {
    const code = Array.from({ length: 200 }, (_, i) => `const v${i} = ${i};`).join('\n');
    const text = `Here is the file:\n\n\`\`\`ts\n${code}\n\`\`\`\n\nDone.`;
    const chunks = splitMessage(text, 2000);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(c.length).toBeLessThanOrEqual(2000);
      expect(fenceBalanced(c)).toBe(true);
    }
    expect(chunks[1]?.startsWith('```ts')).toBe(true);
    // Every code line survives, in order.
    const joined = chunks.join('\n');
    let at = -1;
    for (let i = 0; i < 200; i += 1) {
      const next = joined.indexOf(`const v${i} = ${i};`, at + 1);
      expect(next).toBeGreaterThan(at);
      at = next;
    }
  });

  it('cuts a single line longer than a chunk', () => {
    const chunks = splitMessage('word '.repeat(1000).trim(), 300);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(300);
    expect(chunks.join(' ').split(' ').filter(Boolean)).toHaveLength(1000);
  });

  it('refuses a max too small to hold a fence', () => {
    expect(() => splitMessage('x', 10)).toThrow(RangeError);
  });
});
