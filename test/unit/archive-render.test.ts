import { describe, expect, it } from 'vitest';
import {
  archiveFileName,
  dateOfArchiveFile,
  entryBlock,
  parseArchive,
  sanitizeThreadKey,
} from '../../src/archive/archive-file.js';
import { describeActivity } from '../../src/archive/archive-service.js';
import { hadToolActivity, postAfterExchange, postOnRequest } from '../../src/archive/policy.js';
import { fence, formatDuration, formatTokens, itemsToRender, quote, renderExchange, type RenderableExchange } from '../../src/archive/render.js';
import type { ArchivedItem, ArchivePolicy } from '../../src/db/rows.js';
import { describeChange, diffStat } from '../../src/groups/exchange.js';

const T0 = Date.UTC(2026, 10, 25, 1, 24, 30);

function exchange(over: Partial<RenderableExchange> = {}): RenderableExchange {
  return {
    id: 7,
    threadKey: 't1',
    codexThreadId: 'thr-1',
    codexTurnId: 'turn-1',
    userId: 'U1',
    prompt: 'please write a file',
    items: [],
    answer: 'Done.',
    status: 'completed',
    error: null,
    inputTokens: 10,
    outputTokens: 5,
    totalTokens: 15,
    startedAt: T0,
    completedAt: T0 + 1234,
    durationMs: 1234,
    ...over,
  };
}

const command: ArchivedItem = { type: 'command', id: 'c1', summary: "/bin/bash -lc 'echo hi > a.txt'", detail: 'hi\n', exitCode: 3, durationMs: 12, status: 'failed' };
const files: ArchivedItem = { type: 'fileChange', id: 'f1', summary: 'add /workspace/notes.md (+1 −0)\nupdate /workspace/a.ts (+2 −1)', detail: '@@ -1 +1,2 @@\n-a\n+b\n+c', status: 'completed' };

describe('renderExchange', () => {
  it('has the header, prompt, items in order, answer', () => {
    const md = renderExchange(exchange({ items: [command, files, { type: 'toolCall', id: 't', summary: 'srv/lookup', status: 'completed', durationMs: 40 }, { type: 'reasoning', id: 'r', summary: 'Thinking hard' }] }), { userName: 'alice' });
    expect(md).toContain('### 2026-11-25 01:24:30 UTC · alice (U1) · completed');
    expect(md).toContain('Tokens: 15 (10 in, 5 out) · Duration: 1.2 s · Codex turn `turn-1` in thread `thr-1`');
    expect(md).toContain('> please write a file');
    expect(md).toContain('1. **Command** · exit code 3 · failed · 12 ms');
    expect(md).toContain("```sh\n/bin/bash -lc 'echo hi > a.txt'\n```");
    expect(md).toContain('```text\nhi\n```');
    expect(md).toContain('2. **Files changed** · completed');
    expect(md).toContain('- add /workspace/notes.md (+1 −0)\n- update /workspace/a.ts (+2 −1)');
    expect(md).toContain('```diff\n@@ -1 +1,2 @@');
    expect(md).toContain('3. **Tool call** `srv/lookup` · completed · 40 ms');
    expect(md).toContain('4. **Reasoning summary**\n\n> Thinking hard');
    expect(md).toMatch(/\*\*Answer\*\*\n\nDone\.\n$/);
    expect(md.indexOf('**Command**')).toBeLessThan(md.indexOf('**Files changed**'));
  });

  it.each([
    ['failed with error', exchange({ status: 'failed', answer: '', error: 'mock 400', totalTokens: null, inputTokens: null, outputTokens: null }), ['· failed', 'Tokens: n/a', '_(no written answer)_', '**Error:** mock 400']],
    ['interrupted', exchange({ status: 'interrupted' }), ['· interrupted']],
    ['command without output or exit code', exchange({ items: [{ type: 'command', id: 'c', summary: 'sleep 99', detail: '', exitCode: null, status: 'inProgress' }] }), ['no exit code · inProgress', '_(no output)_']],
    ['added file content is not labelled a diff', exchange({ items: [{ type: 'fileChange', id: 'f', summary: 'add /w/n.md (+1 −0)', detail: 'hello\n', status: 'completed' }] }), ['- add /w/n.md (+1 −0)', '```text\nhello\n```']],
    ['unknown item kind', exchange({ items: [{ type: 'webSearch', id: 'w', summary: 'webSearch' }] }), ['1. **webSearch**']],
    ['empty prompt', exchange({ prompt: '' }), ['> _(empty)_']],
    ['no user name', exchange(), ['· U1 · completed']],
  ])('%s', (_name, e, needles) => {
    const md = renderExchange(e);
    for (const needle of needles) expect(md).toContain(needle);
  });

  it('applies redact to every text it places', () => {
    const redact = (t: string) => t.replaceAll('SECRET', '[redacted]');
    const md = renderExchange(
      exchange({ prompt: 'p SECRET', answer: 'a SECRET', error: 'e SECRET', items: [{ ...command, summary: 'echo SECRET', detail: 'SECRET out' }] }),
      { redact, userName: 'SECRET' },
    );
    expect(md).not.toContain('SECRET');
    expect(md.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(6);
  });

  it('keeps hostile text from changing the structure', () => {
    const md = renderExchange(exchange({ prompt: 'x <!-- hide', items: [{ ...command, detail: 'a ``` b ```` c' }] }));
    expect(md).toContain('&lt;!-- hide');
    expect(md).not.toContain('<!--');
    expect(md).toContain('`````text\na ``` b ```` c\n`````');
  });

  it('leaves out an agent message that only repeats the answer', () => {
    const items: ArchivedItem[] = [{ type: 'agentMessage', id: 'm1', summary: 'Looking…' }, command, { type: 'agentMessage', id: 'm2', summary: 'Done.' }];
    expect(itemsToRender(items, 'Done.').map((i) => i.id)).toEqual(['m1', 'c1']);
    expect(itemsToRender(items, 'Other').map((i) => i.id)).toEqual(['m1', 'c1', 'm2']);
  });
});

describe('format helpers', () => {
  it.each([
    [0, '0 ms'],
    [999, '999 ms'],
    [1234, '1.2 s'],
    [59_949, '59.9 s'],
    [192_000, '3 min 12 s'],
    [7_500_000, '2 h 5 min'],
  ])('formatDuration(%d) = %s', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it.each([
    [{ inputTokens: 10, outputTokens: 5, totalTokens: 15 }, '15 (10 in, 5 out)'],
    [{ inputTokens: 10, outputTokens: 5, totalTokens: null }, '15 (10 in, 5 out)'],
    [{ inputTokens: null, outputTokens: null, totalTokens: null }, 'n/a'],
  ])('formatTokens(%j) = %s', (e, text) => expect(formatTokens(e)).toBe(text));

  it.each([
    ['plain', 'sh', '```sh\nplain\n```'],
    ['has ``` inside', '', '````\nhas ``` inside\n````'],
    ['trailing newline\n', '', '```\ntrailing newline\n```'],
  ])('fence(%j)', (text, info, out) => expect(fence(text, info)).toBe(out));

  it('quote prefixes every line', () => expect(quote('a\n\nb\n')).toBe('> a\n>\n> b'));
});

describe('archive entries', () => {
  const a = entryBlock({ id: 1, completedAt: 100 }, 'first body\n');
  const b = entryBlock({ id: 2, completedAt: 200 }, 'second\n<!-- codex-relay:exchange:end id=2 -->\nstill second\n');
  const header = '# Codex Relay archive\n\n';

  it('parses complete entries, even with a fake end marker inside one', () => {
    const parsed = parseArchive(header + a + b);
    expect(parsed.problems).toEqual([]);
    expect(parsed.header).toBe(header);
    expect(parsed.entries.map((e) => [e.id, e.completedAt])).toEqual([[1, 100], [2, 200]]);
    expect(parsed.entries[1]?.body).toContain('still second');
    expect(parsed.entries.map((e) => e.raw).join('')).toBe(a + b);
  });

  it('reports a file cut anywhere inside an entry', () => {
    const full = header + a + b;
    for (let cut = header.length + a.length + 1; cut < full.length; cut += 7) {
      const parsed = parseArchive(full.slice(0, cut));
      expect(parsed.problems.length, `cut at ${cut}`).toBe(1);
      expect(parsed.entries).toHaveLength(1);
    }
  });

  it('accepts a header-only file', () => {
    expect(parseArchive(header)).toEqual({ header, entries: [], problems: [] });
  });

  it.each([
    ['1700000000.123456', '1700000000.123456'],
    ['main', 'main'],
    ['a/b', /^a_b-[0-9a-f]{8}$/],
    ['a_b', 'a_b'],
    ['../../etc', /^_\._\.\._etc-[0-9a-f]{8}$/],
    ['x'.repeat(100), /^x{80}-[0-9a-f]{8}$/],
  ])('sanitizeThreadKey(%j)', (key, want) => {
    const got = sanitizeThreadKey(key);
    if (typeof want === 'string') expect(got).toBe(want);
    else expect(got).toMatch(want);
    expect(got).not.toContain('/');
    expect(got.startsWith('.')).toBe(false);
  });

  it('names files by UTC day and thread', () => {
    expect(archiveFileName(T0, 'a/b')).toMatch(/^2026-11-25-a_b-[0-9a-f]{8}\.md$/);
    expect(dateOfArchiveFile('2026-11-25-t1.md')).toBe('2026-11-25');
    expect(dateOfArchiveFile('2026-11-25-t1.md.tmp-1-2')).toBeUndefined();
    expect(dateOfArchiveFile('notes.md')).toBeUndefined();
  });
});

describe('posting policy', () => {
  const tools = [{ type: 'agentMessage' }, { type: 'command' }];
  const patch = [{ type: 'fileChange' }];
  const talk = [{ type: 'agentMessage' }, { type: 'reasoning' }];
  it.each<[ArchivePolicy, Array<{ type: string }>, boolean]>([
    ['off', tools, false],
    ['on-request', tools, false],
    ['tool-activity', tools, true],
    ['tool-activity', patch, true],
    ['tool-activity', talk, false],
    ['tool-activity', [], false],
    ['always', talk, true],
    ['always', [], true],
  ])('%s after %j → %s', (policy, items, want) => expect(postAfterExchange(policy, items)).toBe(want));

  it('on request: everything but off', () => {
    expect(postOnRequest('off')).toBe(false);
    expect(postOnRequest('on-request')).toBe(true);
    expect(postOnRequest('tool-activity')).toBe(true);
    expect(postOnRequest('always')).toBe(true);
  });

  it('describes activity', () => {
    expect(hadToolActivity(talk)).toBe(false);
    expect(describeActivity([{ items: [] }])).toBe('1 exchange');
    expect(describeActivity([{ items: [command, files] }, { items: [command] }])).toBe('2 exchanges, 2 commands, 2 file changes');
  });
});

describe('file change summary', () => {
  it.each([
    [{ path: '/w/a', kind: { type: 'add' as const }, diff: 'x\ny\n' }, { added: 2, removed: 0 }, 'add /w/a (+2 −0)'],
    [{ path: '/w/a', kind: { type: 'delete' as const }, diff: 'x\n' }, { added: 0, removed: 1 }, 'delete /w/a (+0 −1)'],
    [{ path: '/w/a', kind: { type: 'update' as const, move_path: '/w/b' }, diff: '--- a\n+++ b\n@@ -1 +1,2 @@\n-x\n+y\n+z\n' }, { added: 2, removed: 1 }, 'update /w/a → /w/b (+2 −1)'],
  ])('%j', (change, stat, text) => {
    expect(diffStat(change)).toEqual(stat);
    expect(describeChange(change)).toBe(text);
  });
});
