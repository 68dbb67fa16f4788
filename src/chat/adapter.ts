/**
 * ChatAdapter: the only way the core talks back to a chat platform. Adapters are thin: they map
 * platform SDK calls and errors, nothing else. Optional capabilities are marked `?`; when missing,
 * delivery falls back (no upload → transcript posted as text, no typing → nothing).
 */
import type { Attachment, Platform } from '../core/inbound.js';

/** Where a reply goes: the thread the question came from. */
export interface ThreadTarget {
  chatKey: string;
  channelId: string;
  threadKey: string;
}

export interface PostedMessage {
  /** Platform message id (Slack ts, Discord message id), needed for update(). */
  id: string;
}

export interface UploadFile {
  filename: string;
  title?: string;
  content: string | Buffer;
}

export interface ChatAdapter {
  readonly platform: Platform;
  /** Largest text one post may carry; delivery splits longer answers below this. */
  readonly maxMessageChars: number;
  /** Posts a new message into the thread. Throws ChatDeliveryError on a final failure. */
  post(target: ThreadTarget, text: string): Promise<PostedMessage>;
  /** Replaces the text of an earlier post (progress message). Throws ChatDeliveryError. */
  update(target: ThreadTarget, message: PostedMessage, text: string): Promise<void>;
  /** Uploads a file into the thread. Missing: delivery posts the content as text instead. */
  upload?(target: ThreadTarget, file: UploadFile): Promise<void>;
  /**
   * Fetches an attachment with the platform's credentials, refusing more than `maxBytes`.
   * Missing: attachments are only named in the prompt. Throws ChatDeliveryError.
   */
  download?(attachment: Attachment, maxBytes: number): Promise<Buffer>;
  /**
   * Earlier messages of a thread, before `beforeMessageId`, as context for a first Codex turn.
   * Missing: no context. Never throws; [] when the thread cannot be read.
   */
  threadContext?(target: ThreadTarget, beforeMessageId: string): Promise<Array<{ userName: string; text: string }>>;
  /** Shows a typing indicator. Missing: nothing is shown. Never throws (errors are logged). */
  typing?(target: ThreadTarget): Promise<void>;
}

/** One error type for every adapter, with a stable code so callers never parse messages. */
export class ChatDeliveryError extends Error {
  constructor(
    readonly code: 'rate_limited' | 'not_found' | 'forbidden' | 'too_large' | 'transient' | 'unknown',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ChatDeliveryError';
  }
}
