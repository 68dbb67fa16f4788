/**
 * Builds the Codex input for an inbox row: who is speaking, the message, and — on the first turn of
 * a chat thread — the earlier messages of that thread as context. Pure.
 */
import type { UserInput } from '../codex/generated/v2/UserInput.js';
import type { InboxRow } from '../db/rows.js';

const CONTEXT_CAP_CHARS = 20_000;

export function buildTurnInput(row: Pick<InboxRow, 'userId' | 'userName' | 'text' | 'payload'>, options: { firstTurn: boolean }): UserInput[] {
  const speaker = row.userName || row.userId;
  const parts: string[] = [];
  const context = options.firstTurn ? row.payload.threadContext : undefined;
  if (context && context.length > 0) {
    let lines = context.map((m) => `${m.userName}: ${m.text}`);
    // Keep the most recent context when the thread is long.
    while (lines.join('\n').length > CONTEXT_CAP_CHARS && lines.length > 1) lines = lines.slice(1);
    parts.push('Earlier messages in this chat thread, for context:', ...lines, '', 'The message to answer:');
  }
  parts.push(`${speaker}: ${row.text}`);
  const attachments = row.payload.attachments;
  if (attachments.length > 0) {
    parts.push('', 'Attached files:', ...attachments.map((a) => `- ${a.name} (${a.mimeType}, ${a.sizeBytes} bytes)`));
  }
  return [{ type: 'text', text: parts.join('\n'), text_elements: [] }];
}
