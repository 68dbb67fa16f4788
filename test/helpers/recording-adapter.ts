/**
 * A ChatAdapter for tests that records what the relay would show in each thread. It stands in for
 * the platform at the ChatAdapter seam only in core-pipeline tests; the Slack and Discord suites use
 * the real client libraries against wire-level fakes instead.
 */
import type { ChatAdapter, PostedMessage, ThreadTarget, UploadFile } from '../../src/chat/adapter.js';
import type { Attachment, Platform } from '../../src/core/inbound.js';

export interface ThreadMessage {
  id: string;
  text: string;
  edits: string[];
}

export class RecordingAdapter implements ChatAdapter {
  readonly maxMessageChars: number;
  readonly threads = new Map<string, ThreadMessage[]>();
  readonly uploads: Array<{ threadKey: string; file: UploadFile }> = [];
  /** Files the "platform" serves for download, by attachment url. */
  readonly files = new Map<string, Buffer>();
  /** Earlier thread messages the "platform" returns, by the message id they come before. */
  readonly contexts = new Map<string, Array<{ userName: string; text: string }>>();
  readonly contextCalls: string[] = [];
  private nextId = 1;
  private waiters: Array<() => void> = [];

  constructor(
    readonly platform: Platform = 'local',
    maxMessageChars = 4000,
  ) {
    this.maxMessageChars = maxMessageChars;
  }

  async post(target: ThreadTarget, text: string): Promise<PostedMessage> {
    const message = { id: String(this.nextId++), text, edits: [] };
    const list = this.threads.get(target.threadKey) ?? [];
    list.push(message);
    this.threads.set(target.threadKey, list);
    this.notify();
    return { id: message.id };
  }

  async update(target: ThreadTarget, posted: PostedMessage, text: string): Promise<void> {
    const message = this.threads.get(target.threadKey)?.find((m) => m.id === posted.id);
    if (!message) throw new Error(`update of unknown message ${posted.id}`);
    message.edits.push(message.text);
    message.text = text;
    this.notify();
  }

  async upload(target: ThreadTarget, file: UploadFile): Promise<void> {
    this.uploads.push({ threadKey: target.threadKey, file });
    this.notify();
  }

  async threadContext(_target: ThreadTarget, beforeMessageId: string): Promise<Array<{ userName: string; text: string }>> {
    this.contextCalls.push(beforeMessageId);
    return this.contexts.get(beforeMessageId) ?? [];
  }

  async download(attachment: Attachment, maxBytes: number): Promise<Buffer> {
    const bytes = this.files.get(attachment.url);
    if (!bytes) throw new Error(`no file at ${attachment.url}`);
    if (bytes.length > maxBytes) throw new Error('too large');
    return bytes;
  }

  /** Final texts of a thread (progress messages that were replaced show their final text). */
  texts(threadKey: string): string[] {
    return (this.threads.get(threadKey) ?? []).map((m) => m.text);
  }

  /** Waits until `predicate` holds for the thread's texts, or fails after `timeoutMs`. */
  async waitFor(threadKey: string, predicate: (texts: string[]) => boolean, timeoutMs = 60_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const texts = this.texts(threadKey);
      if (predicate(texts)) return texts;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting in thread ${threadKey}; saw: ${JSON.stringify(texts)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** True when a thread's texts hold a final (non-progress) message containing `needle`. */
export function answered(needle: string) {
  return (texts: string[]) => texts.some((t) => !t.startsWith(':hourglass') && t.includes(needle));
}
