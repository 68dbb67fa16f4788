/**
 * Files shared with a message: downloaded by the adapter (platform credentials stay on the host),
 * saved into the group workspace under `.chat-attachments/<inbox id>/`, and handed to Codex by
 * their container path — images as image input, other files named in the prompt.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChatAdapter } from '../chat/adapter.js';
import type { Attachment } from '../core/inbound.js';
import type { Logger } from '../logger.js';
import { CONTAINER_WORKSPACE } from './group-home.js';

export const MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024;
const ATTACHMENT_DIR = '.chat-attachments';

export interface SavedAttachment {
  name: string;
  mimeType: string;
  /** Path inside the container. */
  containerPath: string;
  isImage: boolean;
}

export interface SkippedAttachment {
  name: string;
  reason: string;
}

/** A file name that cannot leave its folder or hide: no separators, no leading dots. */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[/\\\0]/g, '_').replace(/^\.+/, '').trim();
  return (cleaned || 'file').slice(0, 120);
}

/** Saves what can be saved; never throws (each failure becomes a skipped entry). */
export async function saveAttachments(input: {
  attachments: Attachment[];
  inboxId: number;
  workspaceDir: string;
  adapter: ChatAdapter | undefined;
  log: Logger;
}): Promise<{ saved: SavedAttachment[]; skipped: SkippedAttachment[] }> {
  const saved: SavedAttachment[] = [];
  const skipped: SkippedAttachment[] = [];
  if (input.attachments.length === 0) return { saved, skipped };
  const download = input.adapter?.download?.bind(input.adapter);
  const relDir = join(ATTACHMENT_DIR, String(input.inboxId));
  for (const attachment of input.attachments) {
    if (!download) {
      skipped.push({ name: attachment.name, reason: 'this chat cannot download files' });
      continue;
    }
    if (attachment.sizeBytes > MAX_ATTACHMENT_BYTES) {
      skipped.push({ name: attachment.name, reason: `larger than ${MAX_ATTACHMENT_BYTES / 1024 / 1024} MB` });
      continue;
    }
    try {
      const bytes = await download(attachment, MAX_ATTACHMENT_BYTES);
      const fileName = safeFileName(attachment.name);
      mkdirSync(join(input.workspaceDir, relDir), { recursive: true });
      writeFileSync(join(input.workspaceDir, relDir, fileName), bytes);
      saved.push({
        name: attachment.name,
        mimeType: attachment.mimeType,
        containerPath: `${CONTAINER_WORKSPACE}/${relDir}/${fileName}`,
        isImage: /^image\/(png|jpe?g|gif|webp)$/i.test(attachment.mimeType),
      });
    } catch (err) {
      input.log.warn({ err, attachment: attachment.name }, 'attachment download failed');
      skipped.push({ name: attachment.name, reason: 'download failed' });
    }
  }
  return { saved, skipped };
}
