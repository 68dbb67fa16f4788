/**
 * Builds the Codex input for an inbox row: who is speaking, the message, the files shared with it
 * (images as image input, others by path), and — on the first turn of a chat thread — the earlier
 * messages of that thread as context. Pure.
 */
import type { UserInput } from '../codex/generated/v2/UserInput.js';
import type { InboxRow } from '../db/rows.js';
import type { SavedAttachment, SkippedAttachment } from './attachments.js';

const CONTEXT_CAP_CHARS = 20_000;

export interface TurnInputOptions {
  firstTurn: boolean;
  /** Context the adapter fetched for a message that arrived mid-thread (first turn only). */
  context?: Array<{ userName: string; text: string }>;
  files?: { saved: SavedAttachment[]; skipped: SkippedAttachment[] };
}

export function buildTurnInput(row: Pick<InboxRow, 'userId' | 'userName' | 'text' | 'payload'>, options: TurnInputOptions): UserInput[] {
  const speaker = row.userName || row.userId;
  const parts: string[] = [];
  const context = options.firstTurn ? (row.payload.threadContext ?? options.context) : undefined;
  if (context && context.length > 0) {
    let lines = context.map((m) => `${m.userName}: ${m.text}`);
    // Keep the most recent context when the thread is long.
    while (lines.join('\n').length > CONTEXT_CAP_CHARS && lines.length > 1) lines = lines.slice(1);
    parts.push('Earlier messages in this chat thread, for context:', ...lines, '', 'The message to answer:');
  }
  parts.push(`${speaker}: ${row.text}`);
  const saved = options.files?.saved ?? [];
  const skipped = options.files?.skipped ?? [];
  const listed = saved.filter((f) => !f.isImage);
  if (listed.length > 0) parts.push('', 'Files shared with this message (in your workspace):', ...listed.map((f) => `- ${f.containerPath} (${f.mimeType})`));
  if (skipped.length > 0) parts.push('', 'Files that could not be fetched:', ...skipped.map((f) => `- ${f.name}: ${f.reason}`));
  if (!options.files && row.payload.attachments.length > 0) {
    parts.push('', 'Attached files (not downloaded):', ...row.payload.attachments.map((a) => `- ${a.name} (${a.mimeType}, ${a.sizeBytes} bytes)`));
  }
  const images: UserInput[] = saved.filter((f) => f.isImage).map((f) => ({ type: 'localImage', path: f.containerPath }));
  return [{ type: 'text', text: parts.join('\n'), text_elements: [] }, ...images];
}
