import { describe, expect, it } from 'vitest';
import { escapeSlack, markdownToMrkdwn } from '../../adapters/slack/mrkdwn.js';
import { splitMessage } from '../../src/delivery/split.js';

describe('markdownToMrkdwn', () => {
  it.each([
    // emphasis
    ['**bold**', '*bold*'],
    ['__bold__', '*bold*'],
    ['*italic*', '_italic_'],
    ['_italic_', '_italic_'],
    ['***both***', '*_both_*'],
    ['~~gone~~', '~gone~'],
    ['**bold** and *italic* and `code`', '*bold* and _italic_ and `code`'],
    ['a **bold _mix_** here', 'a *bold _mix_* here'],
    // things that only look like emphasis
    ['2 * 3 * 4', '2 * 3 * 4'],
    ['a*b*c', 'a*b*c'],
    ['snake_case_name', 'snake_case_name'],
    ['file_name.py and __init__.py', 'file_name.py and __init__.py'],
    ['\\*not italic\\*', '*not italic*'],
    // links and images
    ['[OpenAI](https://openai.com)', '<https://openai.com|OpenAI>'],
    ['[**bold label**](https://x.io/a?b=1&c=2)', '<https://x.io/a?b=1&amp;c=2|bold label>'],
    ['![diagram](https://x.io/d.png)', '<https://x.io/d.png|diagram>'],
    ['[Foo](https://en.wikipedia.org/wiki/Foo_(bar))', '<https://en.wikipedia.org/wiki/Foo_(bar)|Foo>'],
    ['[https://a.io](https://a.io)', '<https://a.io>'],
    ['see <https://a.io/x>', 'see <https://a.io/x>'],
    ['plain https://a.io/x_y_z stays', 'plain https://a.io/x_y_z stays'],
    // Slack entities kept, everything else escaped
    ['<@U0ALICE> look', '<@U0ALICE> look'],
    ['<#C0CHAN|general> and <!here>', '<#C0CHAN|general> and <!here>'],
    ['a < b && c > d', 'a &lt; b &amp;&amp; c &gt; d'],
    ['<div>html</div>', '&lt;div&gt;html&lt;/div&gt;'],
    // inline code is verbatim (only escaped)
    ['`**not bold**`', '`**not bold**`'],
    ['`a < b`', '`a &lt; b`'],
    ['``code with ` tick``', '`code with ` tick`'],
    ['`[x](y)` then [x](https://y.io)', '`[x](y)` then <https://y.io|x>'],
    // blocks
    ['# Title', '*Title*'],
    ['### **Step** 2 ###', '*Step 2*'],
    ['- one\n- two', '• one\n• two'],
    ['* star item', '• star item'],
    ['  + nested *em*', '  • nested _em_'],
    ['1. first\n2) second', '1. first\n2. second'],
    ['- [ ] todo\n- [x] done', '• ☐ todo\n• ☑ done'],
    ['> quoted **text**', '> quoted *text*'],
    ['> - quoted item', '> • quoted item'],
    ['---', '──────────'],
    ['***', '──────────'],
  ])('%j', (input, expected) => {
    expect(markdownToMrkdwn(input)).toBe(expected);
  });

  it('keeps code blocks verbatim, drops the info string and escapes only &, <, >', () => {
    const input = ['Here:', '```ts', 'const x = **y** * 2; // <T>', '# not a heading', '- not a list', '```', 'after **bold**'].join('\n');
    expect(markdownToMrkdwn(input)).toBe(
      ['Here:', '```', 'const x = **y** * 2; // &lt;T&gt;', '# not a heading', '- not a list', '```', 'after *bold*'].join('\n'),
    );
  });

  it('handles tilde fences and longer fences with a shorter fence inside', () => {
    expect(markdownToMrkdwn('~~~\n*x*\n~~~')).toBe('```\n*x*\n```');
    expect(markdownToMrkdwn('````md\n```\ninner\n```\n````\n*y*')).toBe('```\n```\ninner\n```\n```\n_y_');
  });

  it('converts each chunk of a split answer with its fences intact', () => {
    const code = Array.from({ length: 120 }, (_, i) => `print("line ${i}")  # **not bold** <${i}>`).join('\n');
    const answer = `## Result\n\nSome **bold** text.\n\n\`\`\`python\n${code}\n\`\`\`\n\nDone, see [docs](https://x.io).`;
    const chunks = splitMessage(answer, 1500).map(markdownToMrkdwn);
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) {
      const fences = chunk.split('\n').filter((l) => l.startsWith('```'));
      expect(fences.length % 2).toBe(0);
      expect(fences.every((f) => f === '```')).toBe(true);
    }
    const all = chunks.join('\n');
    expect(all).toContain('*Result*');
    expect(all).toContain('print("line 119")  # **not bold** &lt;119&gt;');
    expect(all).toContain('<https://x.io|docs>');
  });

  it('never lets private placeholder characters through', () => {
    expect(markdownToMrkdwn('a\uE0000\uE001b `c`')).toBe('a0b `c`');
  });

  it('escapes the three characters Slack reserves', () => {
    expect(escapeSlack('&<>"\'')).toBe('&amp;&lt;&gt;"\'');
  });
});
