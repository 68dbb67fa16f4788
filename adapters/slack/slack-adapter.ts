/**
 * ChatAdapter for Slack over one WebClient (bolt's `app.client`, so every call shares its request
 * queue and its rate-limit pause). Text from the core is markdown and is converted to mrkdwn here;
 * the `*Mrkdwn` methods send text the adapter wrote itself, already in mrkdwn.
 *
 * Every Web API call goes through `call`, which maps failures with `toDeliveryError` — the one place
 * SDK errors become ChatDeliveryError. 429s are retried inside the WebClient (Retry-After honoured,
 * bounded by its `retryConfig`) before anything reaches `call`.
 *
 * `download` fetches a shared file with the bot token (attachments.ts) when the group runtime
 * prepares a turn — after the message was stored, never on the way in.
 *
 * No `typing`: Slack has no typing indicator for bots; the progress message shows activity instead.
 */
import type { webApi } from '@slack/bolt';
import { z } from 'zod';
import type { ChatAdapter, PostedMessage, ThreadTarget, UploadFile } from '../../src/chat/adapter.js';
import { ChatDeliveryError } from '../../src/chat/adapter.js';
import type { Attachment } from '../../src/core/inbound.js';
import { downloadSlackFile } from './attachments.js';
import { toDeliveryError } from './errors.js';
import { threadTsOf } from './events.js';
import { markdownToMrkdwn } from './mrkdwn.js';
import { fetchThreadContext, type ContextMessage } from './thread-context.js';
import type { UserNames } from './user-names.js';
import type { Logger } from '../../src/logger.js';

/** Well under Slack's 40,000-character truncation, and readable as one message. */
export const SLACK_MAX_MESSAGE_CHARS = 3500;

const PostedSchema = z.object({ ts: z.string().min(1) });

export class SlackChatAdapter implements ChatAdapter {
  readonly platform = 'slack' as const;
  readonly maxMessageChars = SLACK_MAX_MESSAGE_CHARS;

  constructor(
    private readonly client: webApi.WebClient,
    private readonly files: { botToken: string; allowedHosts: ReadonlySet<string>; timeoutMs?: number },
    private readonly context?: { names: UserNames; botUserId: string; log: Logger; timeoutMs: number },
  ) {}

  post(target: ThreadTarget, text: string): Promise<PostedMessage> {
    return this.postMrkdwn(target, markdownToMrkdwn(text));
  }

  async update(target: ThreadTarget, message: PostedMessage, text: string): Promise<void> {
    await this.call('chat.update', () => this.client.chat.update({ channel: target.channelId, ts: message.id, text: markdownToMrkdwn(text) }));
  }

  async upload(target: ThreadTarget, file: UploadFile): Promise<void> {
    const threadTs = threadTsOf(target.threadKey);
    const content = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content;
    const base = { channel_id: target.channelId, file: content, filename: file.filename, title: file.title ?? file.filename };
    await this.call('files.uploadV2', () =>
      threadTs ? this.client.filesUploadV2({ ...base, thread_ts: threadTs }) : this.client.filesUploadV2(base),
    );
  }

  /** Earlier messages of the thread `target` is in, before `beforeTs`. Never throws. */
  async threadContext(target: ThreadTarget, beforeTs: string): Promise<ContextMessage[]> {
    const threadTs = threadTsOf(target.threadKey);
    if (!this.context || !threadTs) return [];
    const { names, botUserId, log, timeoutMs } = this.context;
    return fetchThreadContext(this.client, { channel: target.channelId, threadTs, beforeTs, botUserId }, { names, log, timeoutMs });
  }

  download(attachment: Attachment, maxBytes: number): Promise<Buffer> {
    return downloadSlackFile(attachment.url, { ...this.files, maxBytes });
  }

  /** Posts text that is already mrkdwn. Throws ChatDeliveryError. */
  async postMrkdwn(target: ThreadTarget, text: string): Promise<PostedMessage> {
    const threadTs = threadTsOf(target.threadKey);
    const result = await this.call('chat.postMessage', () =>
      this.client.chat.postMessage({
        channel: target.channelId,
        ...(threadTs ? { thread_ts: threadTs } : {}),
        text,
        unfurl_links: false,
        unfurl_media: false,
      }),
    );
    const posted = PostedSchema.safeParse(result);
    if (!posted.success) throw new ChatDeliveryError('unknown', 'Slack chat.postMessage answered without a message ts');
    return { id: posted.data.ts };
  }

  /** A message only `userId` sees, in the thread when given. Throws ChatDeliveryError. */
  async postEphemeralMrkdwn(target: ThreadTarget, userId: string, text: string): Promise<void> {
    const threadTs = threadTsOf(target.threadKey);
    await this.call('chat.postEphemeral', () =>
      this.client.chat.postEphemeral({ channel: target.channelId, user: userId, ...(threadTs ? { thread_ts: threadTs } : {}), text }),
    );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toDeliveryError(err, what);
    }
  }
}
