/**
 * `/codex …` in Slack → the shared CommandHandler. The command is acked at once (Slack wants an
 * answer within 3 s; a setup or a status read can take longer when the disk is busy), then the
 * handler's reply goes to `response_url`: `ephemeral` when only the caller should see it,
 * `in_channel` when it changed shared state. An `upload` reply (the archive) goes through the
 * adapter's upload into its thread.
 *
 * Slash commands carry no `thread_ts`: `reset`, `stop` and `archive` act on the whole channel (the
 * handler's threadless behaviour: every thread, or the most recent one for `archive`).
 * Handler replies are written in Slack mrkdwn already and are sent as they are.
 */
import type { App } from '@slack/bolt';
import { z } from 'zod';
import type { CommandContext, CommandHandler } from '../../src/commands/handler.js';
import { chatKeyOf } from '../../src/core/inbound.js';
import type { Logger } from '../../src/logger.js';
import { describeIssues } from './events.js';
import type { SlackChatAdapter } from './slack-adapter.js';

export const SLASH_COMMAND = '/codex';

export const SlashCommandSchema = z.object({
  command: z.string().min(1),
  text: z.string().max(10_000).default(''),
  team_id: z.string().min(1).max(64),
  channel_id: z.string().min(1).max(64),
  channel_name: z.string().max(200).optional(),
  user_id: z.string().min(1).max(64),
  user_name: z.string().max(200).optional(),
});
export type SlashCommand = z.infer<typeof SlashCommandSchema>;

/** Pure: the handler's view of a slash command. */
export function commandContext(c: SlashCommand): CommandContext {
  const isDm = c.channel_id.startsWith('D') || c.channel_name === 'directmessage';
  const chatName = isDm ? `DM ${c.user_name ?? c.user_id}` : c.channel_name && c.channel_name !== 'privategroup' ? c.channel_name : undefined;
  return {
    platform: 'slack',
    chatKey: chatKeyOf('slack', c.team_id, c.channel_id),
    channelId: c.channel_id,
    threadKey: null,
    userId: c.user_id,
    ...(c.user_name ? { userName: c.user_name } : {}),
    ...(chatName ? { chatName } : {}),
  };
}

export interface SlashCommandDeps {
  handler: Pick<CommandHandler, 'handle'>;
  adapter: SlackChatAdapter;
  log: Logger;
}

export function registerSlashCommand(app: App, deps: SlashCommandDeps): void {
  app.command(SLASH_COMMAND, async ({ command, ack, respond }) => {
    await ack();
    const parsed = SlashCommandSchema.safeParse(command);
    // bolt only provides `respond` when the payload has a response_url (a malformed one may not).
    const say = async (text: string, ephemeral: boolean): Promise<void> => {
      if (typeof respond !== 'function') return void deps.log.warn('no response_url on /codex; the answer cannot be delivered');
      await respond({ response_type: ephemeral ? 'ephemeral' : 'in_channel', text }).catch((err: unknown) => deps.log.warn({ err }, 'could not answer /codex'));
    };
    if (!parsed.success) {
      deps.log.warn({ reason: describeIssues('slash command', parsed.error) }, 'malformed /codex payload');
      await say('Sorry, I could not read that command.', true);
      return;
    }
    const ctx = commandContext(parsed.data);
    const reply = await deps.handler.handle(ctx, parsed.data.text);
    deps.log.info({ chatKey: ctx.chatKey, userId: ctx.userId, command: parsed.data.text.split(/\s/, 1)[0] || 'help' }, '/codex handled');
    if (reply.upload) {
      try {
        await deps.adapter.upload(reply.upload.target, reply.upload.file);
      } catch (err) {
        deps.log.warn({ err }, '/codex upload failed');
        await say(`I could not upload the file: ${err instanceof Error ? err.message : String(err)}`, true);
        return;
      }
    }
    await say(reply.text, reply.ephemeral);
  });
}
