/**
 * Slack files shared with a message. Two halves, matching the core's attachment seam:
 * - `attachmentsOf` (pure, on the way in): Slack `files[]` → InboundMessage attachments (Slack's
 *   private URL, name, type, size). Nothing is fetched before the message is stored.
 * - `downloadSlackFile` (at turn time, via `SlackChatAdapter.download`): fetches one file with the
 *   bot token; the group runtime saves it into the workspace and hands it to Codex.
 *
 * The bot token is only sent to Slack's file host (or the configured API host in tests); a URL
 * elsewhere is refused, so a crafted event cannot collect the token. Redirects are followed by
 * hand and keep the token only while they stay on an allowed host. The size limit is enforced on
 * the bytes received, not on the size Slack declared.
 */
import type { Attachment } from '../../src/core/inbound.js';
import { downloadLimited } from '../../src/chat/download.js';
import type { SlackFile } from './events.js';

/** Slack's file host, plus the host of a configured API URL (a fake Slack in tests). */
export function allowedFileHosts(apiUrl: string | null): Set<string> {
  const hosts = new Set(['files.slack.com']);
  if (apiUrl) hosts.add(new URL(apiUrl).host);
  return hosts;
}

/** Pure: the files Slack offers for download, and the names of those it does not (deleted, over the plan's limit, external). */
export function attachmentsOf(files: readonly SlackFile[]): { attachments: Attachment[]; unavailable: string[] } {
  const attachments: Attachment[] = [];
  const unavailable: string[] = [];
  for (const file of files) {
    const name = (file.name || file.title || file.id).slice(0, 255);
    const url = file.url_private_download ?? file.url_private;
    if (!url || (file.mode !== undefined && file.mode !== 'hosted' && file.mode !== 'snippet')) {
      unavailable.push(name);
      continue;
    }
    attachments.push({ name, url, mimeType: file.mimetype || 'application/octet-stream', sizeBytes: file.size ?? 0 });
  }
  return { attachments, unavailable };
}

export interface DownloadOptions {
  botToken: string;
  allowedHosts: ReadonlySet<string>;
  maxBytes: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Fetches one Slack file with the bot token. Throws ChatDeliveryError (forbidden, not_found, too_large, transient, …). */
export function downloadSlackFile(url: string, o: DownloadOptions): Promise<Buffer> {
  const { botToken, ...rest } = o;
  return downloadLimited(url, { ...rest, authorization: `Bearer ${botToken}`, what: 'Slack file' });
}
