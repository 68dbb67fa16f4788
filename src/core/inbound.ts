/**
 * The one shape every chat adapter hands to the router. Validated with zod at the edge: an adapter
 * builds it from a platform event, the router parses it again before storing, so a bug in an adapter
 * is refused with a reason instead of corrupting the inbox.
 */
import { z } from 'zod';

export const PlatformSchema = z.enum(['slack', 'discord', 'local']);
export type Platform = z.infer<typeof PlatformSchema>;

export const AttachmentSchema = z.object({
  name: z.string().min(1).max(255),
  /** Where the adapter can fetch it (platform URL); downloading is the adapter's job. */
  url: z.string().min(1),
  mimeType: z.string().default('application/octet-stream'),
  sizeBytes: z.number().int().nonnegative(),
});
export type Attachment = z.infer<typeof AttachmentSchema>;

export const InboundMessageSchema = z.object({
  platform: PlatformSchema,
  /** Chat identity: platform + workspace/guild + channel, e.g. `slack:T0TEAM:C0CHAN`. */
  chatKey: z.string().min(1).max(200),
  /** Thread inside the chat: Slack thread_ts, Discord thread id or DM channel id, `main` for local. */
  threadKey: z.string().min(1).max(200),
  /** Channel id the adapter posts into (for Slack the channel, for Discord the thread channel). */
  channelId: z.string().min(1).max(200),
  userId: z.string().min(1).max(200),
  userName: z.string().max(200).optional(),
  text: z.string().max(100_000),
  attachments: z.array(AttachmentSchema).max(20).default([]),
  /** Platform event id used for deduplication of redeliveries. */
  eventId: z.string().min(1).max(300),
  /**
   * Platform id of this message when it arrived mid-thread: on the thread's first Codex turn the
   * group runtime asks the adapter (`threadContext`) for the earlier messages — after the message
   * is stored, so no slow platform call stands between receiving and storing it.
   */
  contextBefore: z.string().min(1).max(200).optional(),
  /** Earlier messages of the thread, given to Codex as context on the first turn of a thread. */
  threadContext: z.array(z.object({ userName: z.string(), text: z.string() })).max(200).optional(),
});
export type InboundMessage = z.infer<typeof InboundMessageSchema>;
export type InboundMessageInput = z.input<typeof InboundMessageSchema>;

/** Builds the chat key; every adapter uses this so keys stay comparable. */
export function chatKeyOf(platform: Platform, workspace: string, channel: string): string {
  return `${platform}:${workspace}:${channel}`;
}
