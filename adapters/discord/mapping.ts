/**
 * Discord message → InboundMessage. Three steps, the last two pure and table-tested:
 *   1. `readMessageFacts` copies the fields the relay uses out of a discord.js Message and validates
 *      them with zod (discord.js passes malformed gateway payloads through: missing author, numeric
 *      content, …) — invalid facts are refused with a reason, never half-used;
 *   2. `routeMessage` decides where the message belongs (a DM, a mention that opens a thread, a
 *      message in a relay thread) or why it is ignored;
 *   3. `toInbound` builds the InboundMessage for the router.
 *
 * Identity (see ARCHITECTURE "Identity of things"): a DM is its own chat `discord:@me:<dm channel>`
 * with one thread, the DM channel; a server channel is `discord:<guild>:<channel>` and each of its
 * conversations is a Discord thread whose id is the thread key AND the channel delivery posts into.
 * A thread started from a message has that message's id, so a mention's thread key is known before
 * the thread exists — the router stores the message first, the thread is opened afterwards.
 */
import { ChannelType, MessageType, type Message } from 'discord.js';
import { z } from 'zod';
import { chatKeyOf, type InboundMessageInput } from '../../src/core/inbound.js';

export const SnowflakeSchema = z.string().regex(/^\d{1,25}$/, 'not a Discord id');

/** Discord's thread-name limit. */
export const THREAD_NAME_MAX = 100;
/** The router accepts at most this many attachments per message. */
const MAX_ATTACHMENTS = 20;

export const MessageFactsSchema = z.object({
  id: SnowflakeSchema,
  channelId: SnowflakeSchema,
  guildId: SnowflakeSchema.nullable(),
  /** `other`: voice, forum posts' parents, announcement channels, … (not answered). */
  channelKind: z.enum(['dm', 'text', 'thread', 'other']),
  /** For a thread: its parent channel; otherwise null. */
  parentId: SnowflakeSchema.nullable(),
  /** For a thread: who created it (the bot, for threads it opened on a mention). */
  threadOwnerId: SnowflakeSchema.nullable(),
  author: z.object({
    id: SnowflakeSchema,
    name: z.string().min(1).max(200),
    bot: z.boolean(),
  }),
  /**
   * Anything but a plain message or a reply (joins, pins, thread-created notices, a thread's starter
   * message) is never answered; nor are webhooks.
   */
  system: z.boolean(),
  webhook: z.boolean(),
  content: z.string().max(100_000),
  mentionsBot: z.boolean(),
  attachments: z
    .array(
      z.object({
        name: z.string().min(1),
        url: z.string().min(1),
        contentType: z.string().nullable(),
        size: z.number().int().nonnegative(),
      }),
    )
    .max(100),
});
export type MessageFacts = z.infer<typeof MessageFactsSchema>;

export type FactsResult = { ok: true; facts: MessageFacts } | { ok: false; reason: string };

/** Reads and validates what the relay needs from a discord.js Message. Never throws. */
export function readMessageFacts(message: Message, botId: string): FactsResult {
  let raw: unknown;
  try {
    const channel = message.channel as Message['channel'] | null;
    const thread = channel?.isThread() ? channel : null;
    const author = message.author as Message['author'] | null;
    raw = {
      id: message.id,
      channelId: message.channelId,
      guildId: message.guildId ?? null,
      channelKind: channelKindOf(channel?.type),
      parentId: thread?.parentId ?? null,
      threadOwnerId: thread?.ownerId ?? null,
      author: author ? { id: author.id, name: message.member?.displayName ?? author.globalName ?? author.username, bot: author.bot } : undefined,
      system: message.system || !USER_MESSAGE_TYPES.has(message.type),
      webhook: Boolean(message.webhookId),
      content: message.content,
      mentionsBot: mentionsUser(message, botId),
      attachments: [...message.attachments.values()].map((a) => ({ name: a.name, url: a.url, contentType: a.contentType ?? null, size: a.size })),
    };
  } catch (err) {
    return { ok: false, reason: `unreadable message: ${(err as Error).message}` };
  }
  const parsed = MessageFactsSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: parsed.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ') };
  return { ok: true, facts: parsed.data };
}

function channelKindOf(type: ChannelType | undefined): MessageFacts['channelKind'] {
  switch (type) {
    case ChannelType.DM:
      return 'dm';
    case ChannelType.GuildText:
      return 'text';
    case ChannelType.PublicThread:
    case ChannelType.PrivateThread:
      return 'thread';
    default:
      return 'other';
  }
}

function mentionsUser(message: Message, userId: string): boolean {
  if (message.mentions?.users?.has(userId)) return true;
  return typeof message.content === 'string' && mentionPattern(userId).test(message.content);
}

const USER_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set([MessageType.Default, MessageType.Reply]);

const mentionPattern = (userId: string) => new RegExp(`<@!?${userId}>`);

// ── Routing (pure) ─────────────────────────────────────────────────────────────────────────────

export type MessageRoute =
  | { kind: 'ignore'; reason: 'self' | 'bot' | 'system' | 'unsupported-channel' | 'not-addressed' }
  | { kind: 'dm'; chatKey: string; threadKey: string; channelId: string }
  /** A mention in a server channel: the thread to open has the message's id. */
  | { kind: 'mention'; chatKey: string; threadKey: string; channelId: string; parentChannelId: string; threadName: string }
  /** A message in a thread under a server channel (a relay thread, or a mention in any thread). */
  | { kind: 'thread'; chatKey: string; threadKey: string; channelId: string };

export interface RouteContext {
  botId: string;
  /**
   * Whether the relay already converses in this thread: it opened it, or the store has a chat thread
   * for it under the parent channel's group. Called only for un-mentioned thread messages.
   */
  isRelayThread: (chatKey: string, threadKey: string, threadOwnerId: string | null) => boolean;
}

export const dmChatKey = (channelId: string): string => chatKeyOf('discord', '@me', channelId);
export const guildChatKey = (guildId: string, channelId: string): string => chatKeyOf('discord', guildId, channelId);

export function routeMessage(facts: MessageFacts, ctx: RouteContext): MessageRoute {
  if (facts.author.id === ctx.botId) return { kind: 'ignore', reason: 'self' };
  if (facts.author.bot || facts.webhook) return { kind: 'ignore', reason: 'bot' };
  if (facts.system) return { kind: 'ignore', reason: 'system' };
  if (facts.channelKind === 'dm' && facts.guildId === null) {
    return { kind: 'dm', chatKey: dmChatKey(facts.channelId), threadKey: facts.channelId, channelId: facts.channelId };
  }
  if (facts.guildId === null) return { kind: 'ignore', reason: 'unsupported-channel' };
  if (facts.channelKind === 'text') {
    if (!facts.mentionsBot) return { kind: 'ignore', reason: 'not-addressed' };
    return {
      kind: 'mention',
      chatKey: guildChatKey(facts.guildId, facts.channelId),
      threadKey: facts.id,
      channelId: facts.id,
      parentChannelId: facts.channelId,
      threadName: threadNameFor(cleanText(facts.content, ctx.botId), facts.author.name),
    };
  }
  if (facts.channelKind === 'thread' && facts.parentId) {
    const chatKey = guildChatKey(facts.guildId, facts.parentId);
    if (!facts.mentionsBot && !ctx.isRelayThread(chatKey, facts.channelId, facts.threadOwnerId)) return { kind: 'ignore', reason: 'not-addressed' };
    return { kind: 'thread', chatKey, threadKey: facts.channelId, channelId: facts.channelId };
  }
  return { kind: 'ignore', reason: 'unsupported-channel' };
}

/** The message text without the bot's own mention(s). Pure. */
export function cleanText(content: string, botId: string): string {
  return content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ').replace(/[ \t]{2,}/g, ' ').trim();
}

/** A thread name from the question's first line, within Discord's limit. Pure. */
export function threadNameFor(text: string, userName: string): string {
  const firstLine = text.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
  const base = firstLine || `Codex for ${userName}`;
  return base.length > THREAD_NAME_MAX ? `${base.slice(0, THREAD_NAME_MAX - 1)}…` : base;
}

/** The InboundMessage for a routed message. Pure. */
export function toInbound(facts: MessageFacts, route: Exclude<MessageRoute, { kind: 'ignore' }>, botId: string): InboundMessageInput {
  return {
    platform: 'discord',
    chatKey: route.chatKey,
    threadKey: route.threadKey,
    channelId: route.channelId,
    userId: facts.author.id,
    userName: facts.author.name,
    text: cleanText(facts.content, botId),
    attachments: facts.attachments.slice(0, MAX_ATTACHMENTS).map((a) => ({
      name: a.name.length > 255 ? a.name.slice(0, 255) : a.name,
      url: a.url,
      mimeType: a.contentType ?? 'application/octet-stream',
      sizeBytes: a.size,
    })),
    eventId: facts.id,
  };
}
