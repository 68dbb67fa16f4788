/**
 * Turns a finished Codex turn into an archived exchange: the prompt, a bounded summary of every item
 * (commands with exit code and trimmed output, file changes, tool calls, reasoning summaries), the
 * answer, tokens and timing. Secrets are redacted here, before anything is stored. Pure.
 */
import type { TurnOutcome } from '../codex/client.js';
import type { FileUpdateChange } from '../codex/generated/v2/FileUpdateChange.js';
import type { ThreadItem } from '../codex/generated/v2/ThreadItem.js';
import type { ArchivedItem, Group, InboxRow, NewExchange } from '../db/rows.js';

const OUTPUT_CAP = 4000;

export function trimOutput(text: string, cap = OUTPUT_CAP): string {
  if (text.length <= cap) return text;
  const half = Math.floor((cap - 40) / 2);
  return `${text.slice(0, half)}\n… [${text.length - 2 * half} characters trimmed] …\n${text.slice(-half)}`;
}

/** Lines added and removed by one file change: `add` counts its content, `delete` the old content, `update` its unified diff. Pure. */
export function diffStat(change: FileUpdateChange): { added: number; removed: number } {
  const lines = change.diff.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (change.kind.type === 'add') return { added: lines.length, removed: 0 };
  if (change.kind.type === 'delete') return { added: 0, removed: lines.length };
  return {
    added: lines.filter((l) => l.startsWith('+') && !l.startsWith('+++')).length,
    removed: lines.filter((l) => l.startsWith('-') && !l.startsWith('---')).length,
  };
}

/** `update src/a.ts → src/b.ts (+3 −1)`: one line per changed file in the archive. Pure. */
export function describeChange(change: FileUpdateChange): string {
  const { added, removed } = diffStat(change);
  const moved = change.kind.type === 'update' && change.kind.move_path ? ` → ${change.kind.move_path}` : '';
  return `${change.kind.type} ${change.path}${moved} (+${added} −${removed})`;
}

export function archiveItem(item: ThreadItem, redact: (t: string) => string): ArchivedItem | undefined {
  switch (item.type) {
    case 'commandExecution':
      return {
        type: 'command',
        id: item.id,
        summary: redact(item.command),
        detail: redact(trimOutput(item.aggregatedOutput ?? '')),
        exitCode: item.exitCode ?? null,
        durationMs: item.durationMs ?? null,
        status: item.status,
      };
    case 'fileChange':
      return {
        type: 'fileChange',
        id: item.id,
        summary: redact(item.changes.map(describeChange).join('\n')),
        detail: redact(trimOutput(item.changes.map((c) => c.diff).join('\n'))),
        status: item.status,
      };
    case 'mcpToolCall':
      return { type: 'toolCall', id: item.id, summary: `${item.server}/${item.tool}`, status: item.status, durationMs: item.durationMs ?? null };
    case 'reasoning':
      return item.summary.length ? { type: 'reasoning', id: item.id, summary: redact(item.summary.join('\n')) } : undefined;
    case 'agentMessage':
      return { type: 'agentMessage', id: item.id, summary: redact(trimOutput(item.text)) };
    case 'userMessage':
      return undefined;
    default:
      return { type: item.type, id: item.id, summary: item.type };
  }
}

export function exchangeFromOutcome(input: {
  group: Group;
  row: InboxRow;
  rows: InboxRow[];
  outcome: TurnOutcome;
  threadId: string;
  redact?: (text: string) => string;
}): NewExchange {
  const redact = input.redact ?? ((t: string) => t);
  const { outcome } = input;
  const usage = outcome.usage;
  return {
    groupSlug: input.group.slug,
    threadKey: input.row.threadKey,
    inboxId: input.row.id,
    codexThreadId: input.threadId,
    codexTurnId: outcome.turn.id,
    platform: input.row.platform,
    userId: input.row.userId,
    prompt: redact(input.rows.map((r) => r.text).join('\n\n')),
    items: outcome.items.map((item) => archiveItem(item, redact)).filter((i): i is ArchivedItem => i !== undefined),
    answer: redact(outcome.finalText),
    status: outcome.turn.status === 'inProgress' ? 'failed' : outcome.turn.status,
    error: outcome.turn.error ? redact(outcome.turn.error.message) : null,
    inputTokens: usage?.inputTokens ?? null,
    outputTokens: usage?.outputTokens ?? null,
    totalTokens: usage?.totalTokens ?? null,
    startedAt: outcome.startedAtMs,
    completedAt: outcome.completedAtMs,
  };
}
