/**
 * The earlier messages of a Slack thread (`conversations.replies`), given to Codex on the first turn
 * when the bot is mentioned in the middle of a thread it has not seen. Bounded: at most one page of
 * `limit` messages and `timeoutMs`; on any failure the turn goes ahead without context.
 *
 * Error contract: never throws; returns [] when the thread cannot be read.
 */
import type { webApi } from '@slack/bolt';
import { z } from 'zod';
import type { Logger } from '../../src/logger.js';
import { TsSchema } from './events.js';
import type { UserNames } from './user-names.js';

const RepliesSchema = z.object({
  messages: z
    .array(
      z.object({
        ts: TsSchema,
        user: z.string().optional(),
        bot_id: z.string().optional(),
        subtype: z.string().optional(),
        text: z.string().max(100_000).default(''),
      }),
    )
    .default([]),
});

export interface ContextMessage {
  userName: string;
  text: string;
}

export interface ThreadContextRequest {
  channel: string;
  threadTs: string;
  /** Only messages before this one (the mention) are context. */
  beforeTs: string;
  botUserId: string;
}

export async function fetchThreadContext(
  client: webApi.WebClient,
  request: ThreadContextRequest,
  deps: { names: UserNames; log: Logger; limit?: number; timeoutMs?: number },
): Promise<ContextMessage[]> {
  const limit = deps.limit ?? 50;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${deps.timeoutMs ?? 3000} ms`)), deps.timeoutMs ?? 3000);
    });
    const raw = await Promise.race([client.conversations.replies({ channel: request.channel, ts: request.threadTs, limit, inclusive: true }), timeout]);
    const parsed = RepliesSchema.safeParse(raw);
    if (!parsed.success) {
      deps.log.warn({ channel: request.channel }, 'conversations.replies answered in an unexpected shape; no thread context');
      return [];
    }
    return parsed.data.messages
      .filter((m) => Number(m.ts) < Number(request.beforeTs) && m.text.trim() !== '' && (m.subtype === undefined || m.subtype === 'thread_broadcast' || m.subtype === 'file_share' || m.subtype === 'bot_message'))
      .slice(-limit)
      .map((m) => ({
        userName: m.user === request.botUserId ? 'Codex (you)' : m.user ? (deps.names.cached(m.user) ?? m.user) : 'a bot',
        text: m.text,
      }));
  } catch (err) {
    deps.log.warn({ err, channel: request.channel }, 'could not read the thread for context; answering without it');
    return [];
  } finally {
    clearTimeout(timer);
  }
}
