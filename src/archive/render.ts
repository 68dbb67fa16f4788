/**
 * Markdown for one archived exchange, as people read it in the group's archive folder and in an
 * uploaded transcript: a header line (time, user, status, tokens, duration), the prompt, every item
 * of the turn in order (commands with exit code, duration and trimmed output; file changes with
 * paths and a diff summary; tool calls; reasoning summaries; interim messages), the answer and the
 * error. Pure: no clock, no I/O, so every shape is table-tested.
 *
 * Invariant: text that came from a person or a model is never able to change the structure around
 * it. Fenced blocks use a fence longer than any backtick run inside them, and HTML comment openers
 * are escaped outside fences (they would hide the rest of the transcript in a markdown viewer, and
 * the archive file uses HTML comments as entry delimiters).
 */
import type { ArchivedItem, Exchange } from '../db/rows.js';

export interface RenderOptions {
  /** Display name of the person who asked, when known (the exchange row holds only the user id). */
  userName?: string | null;
  /** Applied to every piece of text before it is placed in the markdown. Default: identity. */
  redact?: (text: string) => string;
}

/** The exchange fields rendering reads: an Exchange row, or anything shaped like one. */
export type RenderableExchange = Pick<
  Exchange,
  | 'id'
  | 'threadKey'
  | 'codexThreadId'
  | 'codexTurnId'
  | 'userId'
  | 'prompt'
  | 'items'
  | 'answer'
  | 'status'
  | 'error'
  | 'inputTokens'
  | 'outputTokens'
  | 'totalTokens'
  | 'startedAt'
  | 'completedAt'
  | 'durationMs'
>;

/** One exchange as markdown (no archive-file delimiters). Ends with a newline. Pure. */
export function renderExchange(e: RenderableExchange, options: RenderOptions = {}): string {
  const redact = options.redact ?? ((t: string) => t);
  const r = (t: string) => redact(t);
  const who = options.userName ? `${r(options.userName)} (${r(e.userId)})` : r(e.userId);
  const out: string[] = [
    `### ${formatTime(e.startedAt)} · ${escapeInline(who)} · ${e.status}`,
    '',
    `Tokens: ${formatTokens(e)} · Duration: ${formatDuration(e.durationMs)}` +
      (e.codexTurnId ? ` · Codex turn \`${e.codexTurnId}\`` : '') +
      (e.codexThreadId ? ` in thread \`${e.codexThreadId}\`` : ''),
    '',
    '**Prompt**',
    '',
    quote(r(e.prompt)),
  ];

  const steps = itemsToRender(e.items, e.answer);
  if (steps.length > 0) {
    out.push('', '**What Codex did**');
    steps.forEach((item, i) => out.push('', ...renderItem(item, i + 1, r)));
  }
  out.push('', '**Answer**', '');
  out.push(e.answer?.trim() ? escapeComments(r(e.answer.trim())) : '_(no written answer)_');
  if (e.error) out.push('', `**Error:** ${escapeComments(r(e.error))}`);
  return `${out.join('\n')}\n`;
}

/**
 * The items worth showing: everything except an agent message that only repeats the final answer
 * (the answer has its own section). Pure.
 */
export function itemsToRender(items: readonly ArchivedItem[], answer: string | null): ArchivedItem[] {
  const lastAgent = items.findLastIndex((i) => i.type === 'agentMessage');
  return items.filter((item, i) => !(i === lastAgent && answer !== null && item.summary.trim() === answer.trim()));
}

function renderItem(item: ArchivedItem, n: number, r: (t: string) => string): string[] {
  const meta = [item.status, item.durationMs != null ? formatDuration(item.durationMs) : undefined].filter((x): x is string => Boolean(x));
  switch (item.type) {
    case 'command': {
      const exit = item.exitCode != null ? `exit code ${item.exitCode}` : 'no exit code';
      const output = item.detail ?? '';
      return [
        `${n}. **Command** · ${[exit, ...meta].join(' · ')}`,
        '',
        fence(r(item.summary), 'sh'),
        '',
        output.trim() ? fence(r(output), 'text') : '_(no output)_',
      ];
    }
    case 'fileChange': {
      const lines = [`${n}. **Files changed**${meta.length ? ` · ${meta.join(' · ')}` : ''}`, ''];
      for (const change of item.summary.split('\n').filter((l) => l.trim())) lines.push(`- ${escapeInline(r(change))}`);
      // Updates carry a unified diff; an added or deleted file carries its content.
      if (item.detail?.trim()) lines.push('', fence(r(item.detail), /^@@ /m.test(item.detail) ? 'diff' : 'text'));
      return lines;
    }
    case 'toolCall':
      return [`${n}. **Tool call** \`${escapeInline(r(item.summary))}\`${meta.length ? ` · ${meta.join(' · ')}` : ''}`];
    case 'reasoning':
      return [`${n}. **Reasoning summary**`, '', quote(r(item.summary))];
    case 'agentMessage':
      return [`${n}. **Codex said**`, '', quote(r(item.summary))];
    default:
      return [`${n}. **${escapeInline(item.type)}**${item.summary && item.summary !== item.type ? ` ${escapeInline(r(item.summary))}` : ''}${meta.length ? ` · ${meta.join(' · ')}` : ''}`];
  }
}

// ---- formatting helpers (exported for tests) --------------------------------------------------

/** `2026-11-25 01:24:30 UTC`. */
export function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** `850 ms`, `12.3 s`, `3 min 12 s`, `2 h 5 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `15 (10 in, 5 out)`; `n/a` when the server reported none. */
export function formatTokens(e: Pick<Exchange, 'inputTokens' | 'outputTokens' | 'totalTokens'>): string {
  if (e.totalTokens === null && e.inputTokens === null && e.outputTokens === null) return 'n/a';
  const total = e.totalTokens ?? (e.inputTokens ?? 0) + (e.outputTokens ?? 0);
  return `${total} (${e.inputTokens ?? '?'} in, ${e.outputTokens ?? '?'} out)`;
}

/** A fenced block whose fence is longer than any backtick run in `text`. */
export function fence(text: string, info = ''): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const bar = '`'.repeat(Math.max(3, longest + 1));
  return `${bar}${info}\n${text.replace(/\n$/, '')}\n${bar}`;
}

/** Every line prefixed with `> ` (empty text gives an explicit placeholder). */
export function quote(text: string): string {
  if (!text.trim()) return '> _(empty)_';
  return escapeComments(text.replace(/\s+$/, ''))
    .split('\n')
    .map((line) => (line ? `> ${line}` : '>'))
    .join('\n');
}

/** `<!--` outside a code block would hide everything after it in a viewer; show it literally. */
export function escapeComments(text: string): string {
  return text.replaceAll('<!--', '&lt;!--');
}

/** Single-line text: newlines folded, comment openers escaped. */
function escapeInline(text: string): string {
  return escapeComments(text.replace(/\s*\n\s*/g, ' '));
}
