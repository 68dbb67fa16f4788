/**
 * Slack event → what the relay should do with it. Zod schemas for every event shape the adapter
 * reads, and one pure decision function, `mapSlackEvent`, table-tested without bolt or a network.
 *
 * What is addressed to the bot:
 * - `app_mention` in a channel: answered in the mention's thread (`thread_ts`, or the mention's own
 *   `ts` when it starts one). A mention inside an existing thread the bot is not part of yet asks
 *   for the earlier messages as context.
 * - a `message` in a channel thread the bot is part of (no mention needed). A channel message that
 *   mentions the bot is left to its `app_mention` twin, so one message never becomes two.
 * - a `message` in a DM (`channel_type: im`): a DM is its own chat; top-level DMs share one chat
 *   thread (`DM_THREAD_KEY`), a reply thread inside a DM is its own.
 * Everything from a bot (including this one) and every subtype but plain, file shares and thread
 * broadcasts is ignored. Shared files become attachments (their private URLs); they are fetched
 * later, at turn time, by the adapter's `download`.
 *
 * Deduplication key: the message itself (`team/channel/ts`), not the envelope's `event_id`. A
 * redelivery repeats both, and keying on the message also collapses the two events Slack may send
 * for one message (`app_mention` + `message.channels`).
 */
import { z } from 'zod';
import { chatKeyOf, type InboundMessageInput } from '../../src/core/inbound.js';
import { attachmentsOf } from './attachments.js';

/** The chat thread key of top-level DM messages; replies to it go to the DM without `thread_ts`. */
export const DM_THREAD_KEY = 'dm';

export const TsSchema = z.string().regex(/^\d{1,12}\.\d{1,8}$/, 'not a Slack timestamp');
const IdSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'not a Slack id');

/** The `thread_ts` a reply into `threadKey` carries; undefined for the top level of a DM. */
export function threadTsOf(threadKey: string): string | undefined {
  return TsSchema.safeParse(threadKey).success ? threadKey : undefined;
}

export const SlackFileSchema = z.object({
  id: IdSchema,
  name: z.string().max(1000).optional(),
  title: z.string().max(1000).optional(),
  mimetype: z.string().max(200).optional(),
  size: z.number().int().nonnegative().optional(),
  url_private: z.string().max(2000).optional(),
  url_private_download: z.string().max(2000).optional(),
  /** `hosted` for uploads; `tombstone`, `hidden_by_limit`, `external` cannot be downloaded. */
  mode: z.string().optional(),
});
export type SlackFile = z.infer<typeof SlackFileSchema>;

const FilesSchema = z.array(SlackFileSchema).max(20).optional();

export const AppMentionEventSchema = z.object({
  type: z.literal('app_mention'),
  user: IdSchema,
  text: z.string().max(100_000),
  ts: TsSchema,
  channel: IdSchema,
  thread_ts: TsSchema.optional(),
  bot_id: z.string().optional(),
  subtype: z.string().optional(),
  files: FilesSchema,
});

export const MessageEventSchema = z.object({
  type: z.literal('message'),
  subtype: z.string().optional(),
  user: IdSchema.optional(),
  bot_id: z.string().optional(),
  text: z.string().max(100_000).default(''),
  ts: TsSchema,
  channel: IdSchema,
  channel_type: z.string().optional(),
  thread_ts: TsSchema.optional(),
  files: FilesSchema,
});

/** The Events API body (`event_callback`), the same over Socket Mode and HTTP. */
export const EventCallbackSchema = z.object({
  type: z.literal('event_callback'),
  team_id: IdSchema,
  event_id: z.string().min(1).max(200),
  event: z.object({ type: z.string() }).loose(),
});

/** Message subtypes that are a person talking; everything else (edits, joins, bots…) is ignored. */
const TALKING_SUBTYPES = new Set(['file_share', 'thread_broadcast']);

export interface MapContext {
  botUserId: string;
  /** Whether the bot takes part in this chat thread (it answered there, or was mentioned there). */
  isKnownThread(chatKey: string, threadKey: string): boolean;
  /** A cached display name; undefined when not known yet (never a network call). */
  userName(userId: string): string | undefined;
}

export interface SlackInbound {
  kind: 'mention' | 'thread-reply' | 'dm';
  message: InboundMessageInput;
  /** Slack's envelope event id, for logs. */
  slackEventId: string;
  messageTs: string;
  /** The thread a reply goes to; undefined for the top level of a DM. */
  threadTs: string | undefined;
  /** A mention in the middle of a thread the bot has not seen: fetch the earlier messages. */
  wantsContext: boolean;
}

export type MapResult =
  | { kind: 'inbound'; inbound: SlackInbound }
  | { kind: 'ignored'; reason: string }
  | { kind: 'malformed'; reason: string };

/** Pure: decides what an event body means for the relay. Never throws. */
export function mapSlackEvent(body: unknown, ctx: MapContext): MapResult {
  const envelope = EventCallbackSchema.safeParse(body);
  if (!envelope.success) return { kind: 'malformed', reason: describeIssues('event body', envelope.error) };
  const { team_id: team, event_id: slackEventId, event } = envelope.data;

  if (event.type === 'app_mention') {
    const parsed = AppMentionEventSchema.safeParse(event);
    if (!parsed.success) return { kind: 'malformed', reason: describeIssues('app_mention', parsed.error) };
    const e = parsed.data;
    if (e.bot_id || e.user === ctx.botUserId) return { kind: 'ignored', reason: 'from a bot' };
    if (e.subtype && !TALKING_SUBTYPES.has(e.subtype)) return { kind: 'ignored', reason: `subtype ${e.subtype}` };
    const chatKey = chatKeyOf('slack', team, e.channel);
    const threadKey = e.thread_ts ?? e.ts;
    const inThread = e.thread_ts !== undefined && e.thread_ts !== e.ts;
    return {
      kind: 'inbound',
      inbound: {
        kind: 'mention',
        message: inboundMessage(team, chatKey, threadKey, e, cleanText(e.text, ctx.botUserId), ctx),
        slackEventId,
        messageTs: e.ts,
        threadTs: threadKey,
        wantsContext: inThread && !ctx.isKnownThread(chatKey, threadKey),
      },
    };
  }

  if (event.type === 'message') {
    const parsed = MessageEventSchema.safeParse(event);
    if (!parsed.success) return { kind: 'malformed', reason: describeIssues('message', parsed.error) };
    const e = parsed.data;
    if (e.subtype && !TALKING_SUBTYPES.has(e.subtype)) return { kind: 'ignored', reason: `subtype ${e.subtype}` };
    if (e.bot_id || !e.user || e.user === ctx.botUserId) return { kind: 'ignored', reason: 'from a bot' };
    const chatKey = chatKeyOf('slack', team, e.channel);
    const isDm = e.channel_type === 'im' || (e.channel_type === undefined && e.channel.startsWith('D'));
    if (isDm) {
      const threadKey = e.thread_ts ?? DM_THREAD_KEY;
      return {
        kind: 'inbound',
        inbound: {
          kind: 'dm',
          message: inboundMessage(team, chatKey, threadKey, { ...e, user: e.user }, cleanText(e.text, ctx.botUserId), ctx),
          slackEventId,
          messageTs: e.ts,
          threadTs: e.thread_ts,
          wantsContext: false,
        },
      };
    }
    if (mentions(e.text, ctx.botUserId)) return { kind: 'ignored', reason: 'mention (handled by app_mention)' };
    if (e.thread_ts === undefined || e.thread_ts === e.ts) return { kind: 'ignored', reason: 'not in a thread' };
    if (!ctx.isKnownThread(chatKey, e.thread_ts)) return { kind: 'ignored', reason: 'thread without the bot' };
    return {
      kind: 'inbound',
      inbound: {
        kind: 'thread-reply',
        message: inboundMessage(team, chatKey, e.thread_ts, { ...e, user: e.user }, e.text, ctx),
        slackEventId,
        messageTs: e.ts,
        threadTs: e.thread_ts,
        wantsContext: false,
      },
    };
  }

  return { kind: 'ignored', reason: `event type ${event.type}` };
}

function inboundMessage(
  team: string,
  chatKey: string,
  threadKey: string,
  e: { channel: string; user: string; ts: string; files?: SlackFile[] | undefined },
  text: string,
  ctx: MapContext,
): InboundMessageInput {
  const userName = ctx.userName(e.user);
  const { attachments, unavailable } = attachmentsOf(e.files ?? []);
  // Files Slack will not hand out are still worth a word, so Codex does not guess they exist.
  const notes = unavailable.map((name) => `(A shared file, ${name}, is not available for download.)`);
  return {
    platform: 'slack',
    chatKey,
    threadKey,
    channelId: e.channel,
    userId: e.user,
    ...(userName ? { userName } : {}),
    text: [text, ...notes].filter(Boolean).join('\n'),
    attachments,
    eventId: messageEventId(team, e.channel, e.ts),
  };
}

/** The inbox key of a Slack message (see the header for why not `event_id`). */
export function messageEventId(team: string, channel: string, ts: string): string {
  return `${team}/${channel}/${ts}`;
}

function mentionPattern(botUserId: string): RegExp {
  return new RegExp(`<@${botUserId.replace(/[^A-Za-z0-9]/g, '')}(?:\\|[^>]*)?>`, 'g');
}

function mentions(text: string, botUserId: string): boolean {
  return mentionPattern(botUserId).test(text);
}

/** Removes the bot's own mention (it is how the user addressed the bot, not part of the task). */
export function cleanText(text: string, botUserId: string): string {
  return text.replace(mentionPattern(botUserId), '').replace(/^[\s,:]+/, '').trim();
}

export function describeIssues(what: string, error: z.ZodError): string {
  const issues = error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  return `${what}: ${issues.join('; ')}`;
}
