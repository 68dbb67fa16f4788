/**
 * ChatAdapter for Discord over discord.js's REST client. Thin: each method is one REST call, errors
 * are mapped in `errors.ts` only.
 *
 * Where a post goes: the thread key. For a DM it is the DM channel, for a server conversation the
 * Discord thread — whose id is also a channel id. Two in-memory notes refine that:
 *   • a thread being opened (a mention was just stored): posts wait for it, and when Discord refuses
 *     the thread (no permission) they go to the parent channel as replies to the mention instead;
 *   • the message a turn answers: the first post after it references it (a Discord reply), so in a
 *     DM or busy thread it is clear which question an answer belongs to.
 * Both are best-effort hints; after a restart delivery still reaches the right channel, and a thread
 * a crash left unopened is opened on the first delivery that finds it missing.
 */
import { Routes, type APIMessage, type REST } from 'discord.js';
import { ChatDeliveryError, type ChatAdapter, type PostedMessage, type ThreadTarget, type UploadFile } from '../../src/chat/adapter.js';
import type { Logger } from '../../src/logger.js';
import type { Attachment } from '../../src/core/inbound.js';
import { downloadLimited } from '../../src/chat/download.js';
import { toDeliveryError } from './errors.js';
import { discordText } from './format.js';

export const DISCORD_MAX_MESSAGE_CHARS = 2000;
/** Bounded memory for the per-thread notes. */
const MAX_NOTES = 2000;

const NO_PINGS = { parse: [] as never[], replied_user: false };

export interface PendingThread {
  /** Starts opening the thread; resolves with the channel posts will go to. */
  open(start: () => Promise<unknown>): Promise<string>;
  cancel(): void;
}

export class DiscordChatAdapter implements ChatAdapter {
  readonly platform = 'discord' as const;
  readonly maxMessageChars = DISCORD_MAX_MESSAGE_CHARS;
  /** threadKey → channel to post in, while the thread is being opened (or after it was refused). */
  private readonly opening = new Map<string, Promise<string>>();
  /** threadKey → user message the next post answers. */
  private readonly answerTo = new Map<string, string>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly rest: REST,
    private readonly log: Logger,
    /** Hosts attachments may be fetched from (Discord's CDN; a fake's host in tests). */
    private readonly fileHosts: ReadonlySet<string> = discordFileHosts(null),
  ) {}

  /** Fetches an attachment from Discord's CDN (signed URLs, no token needed). Throws ChatDeliveryError. */
  download(attachment: Attachment, maxBytes: number): Promise<Buffer> {
    return downloadLimited(attachment.url, { allowedHosts: this.fileHosts, maxBytes, what: 'Discord attachment' });
  }

  // ── Notes from the inbound side ────────────────────────────────────────────────────────────

  /**
   * Registers a thread about to be opened on a mention (`threadKey` = the mention's message id):
   * from now on posts into it wait. `open(start)` starts it — when that fails, posts go to
   * `parentChannelId` as replies to the mention; `cancel()` drops the note (the message was not
   * accepted). Registered before the router sees the message, so no post can overtake it.
   */
  prepareThread(threadKey: string, parentChannelId: string): PendingThread {
    let begin!: (start: () => Promise<unknown>) => void;
    const gate = new Promise<() => Promise<unknown>>((resolve) => (begin = resolve));
    const opened = gate
      .then((start) => start())
      .then(
        () => {
          this.opening.delete(threadKey);
          return threadKey;
        },
        (err: unknown) => {
          const mapped = toDeliveryError(err, 'start thread');
          this.log.warn({ threadKey, code: mapped.code, err: mapped.message }, 'could not open a thread; answering in the channel');
          this.remember(this.answerTo, threadKey, threadKey);
          return parentChannelId;
        },
      );
    this.remember(this.opening, threadKey, opened);
    return {
      open: (start) => {
        begin(start);
        return opened;
      },
      cancel: () => begin(async () => undefined),
    };
  }

  /** The next post into `threadKey` replies to `messageId`. */
  answerNext(threadKey: string, messageId: string): void {
    this.remember(this.answerTo, threadKey, messageId);
  }

  /** Takes back `answerNext` (the message was not accepted). */
  forgetAnswer(threadKey: string, messageId: string): void {
    if (this.answerTo.get(threadKey) === messageId) this.answerTo.delete(threadKey);
  }

  // ── ChatAdapter ────────────────────────────────────────────────────────────────────────────

  async post(target: ThreadTarget, text: string): Promise<PostedMessage> {
    return this.track(async () => {
      const attempt = async (): Promise<APIMessage> => {
        const channel = await this.channelFor(target);
        const replyTo = this.answerTo.get(target.threadKey);
        this.answerTo.delete(target.threadKey);
        const body = {
          content: discordText(text),
          allowed_mentions: NO_PINGS,
          ...(replyTo ? { message_reference: { message_id: replyTo, fail_if_not_exists: false } } : {}),
        };
        return this.call('post message', () => this.rest.post(Routes.channelMessages(channel), { body }) as Promise<APIMessage>);
      };
      const message = await attempt().catch(async (err: unknown) => {
        if (!(err instanceof ChatDeliveryError) || err.code !== 'not_found' || !(await this.reopenThread(target))) throw err;
        return attempt();
      });
      return { id: message.id };
    });
  }

  async update(target: ThreadTarget, message: PostedMessage, text: string): Promise<void> {
    await this.track(async () => {
      const channel = await this.channelFor(target);
      await this.call('edit message', () => this.rest.patch(Routes.channelMessage(channel, message.id), { body: { content: discordText(text), allowed_mentions: NO_PINGS } }));
    });
  }

  async upload(target: ThreadTarget, file: UploadFile): Promise<void> {
    await this.track(async () => {
      const channel = await this.channelFor(target);
      const data = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content;
      await this.call('upload file', () =>
        this.rest.post(Routes.channelMessages(channel), {
          body: { content: discordText(file.title ?? ''), allowed_mentions: NO_PINGS, attachments: [{ id: 0, filename: file.filename }] },
          files: [{ name: file.filename, data }],
        }),
      );
    });
  }

  /** Never throws: a missing typing indicator is not worth a failure. */
  async typing(target: ThreadTarget): Promise<void> {
    await this.track(async () => {
      const channel = await this.channelFor(target);
      await this.call('typing', () => this.rest.post(Routes.channelTyping(channel)));
    }).catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'typing indicator failed'));
  }

  // ── Also used by the inbound and command sides ─────────────────────────────────────────────

  /** Posts `text` into `channelId` as a reply to `messageId` (refusals, setup hints). Throws ChatDeliveryError. */
  async reply(channelId: string, messageId: string, text: string): Promise<void> {
    await this.track(() =>
      this.call('reply', () =>
        this.rest.post(Routes.channelMessages(channelId), {
          body: { content: discordText(text), allowed_mentions: NO_PINGS, message_reference: { message_id: messageId, fail_if_not_exists: false } },
        }),
      ),
    );
  }

  /** Waits until deliveries in flight have settled, at most `timeoutMs`. Never throws. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.inFlight]), timeout]);
    clearTimeout(timer);
  }

  // ── Internals ──────────────────────────────────────────────────────────────────────────────

  private async channelFor(target: ThreadTarget): Promise<string> {
    return (await this.opening.get(target.threadKey)) ?? target.threadKey;
  }

  /**
   * A server conversation whose thread does not exist (the relay stopped between storing the mention
   * and opening its thread): open it now from the mention, or fall back to the parent channel.
   * False when the target is not such a conversation.
   */
  private async reopenThread(target: ThreadTarget): Promise<boolean> {
    const [, guild, parent] = target.chatKey.split(':');
    if (!guild || guild === '@me' || !parent || parent === target.threadKey || this.opening.has(target.threadKey)) return false;
    await this.prepareThread(target.threadKey, parent).open(() =>
      this.call('start thread', () => this.rest.post(Routes.threads(parent, target.threadKey), { body: { name: 'Codex' } })),
    );
    return true;
  }

  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw toDeliveryError(err, what);
    }
  }

  private track<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    this.inFlight.add(p);
    void p.then(
      () => this.inFlight.delete(p),
      () => this.inFlight.delete(p),
    );
    return p;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_NOTES) map.delete(map.keys().next().value as string);
  }
}

/** Discord's attachment hosts, plus the host of a configured API URL (a fake Discord in tests). */
export function discordFileHosts(apiUrl: string | null): Set<string> {
  const hosts = new Set(['cdn.discordapp.com', 'media.discordapp.net']);
  if (apiUrl) hosts.add(new URL(apiUrl).host);
  return hosts;
}
