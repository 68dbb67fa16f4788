/**
 * `/codex` interactions → the shared CommandHandler, and its reply back.
 *
 * Discord wants an answer within 3 s, so the interaction is deferred first, before anything else.
 * A deferral fixes the visibility of the reply before the handler has decided it, so the relay
 * always defers ephemerally (a refusal or a status never leaks into the channel) and then:
 *   • ephemeral reply → the deferred message is edited into it (`PATCH …/messages/@original`);
 *   • public reply (shared state changed: setup, model, reset, …) → the deferred message is edited
 *     into a short confirmation for the caller, and the reply is posted for the channel as a
 *     follow-up (`POST /webhooks/{app}/{token}`). Follow-ups after the original was edited are
 *     independent messages, so this one is public. It stays tied to the command ("alice used
 *     /codex"), needs no channel permissions, and the caller never sees the text twice in full.
 * An `upload` reply (the archive) goes through the adapter into its thread first.
 */
import { MessageFlags, type ChatInputCommandInteraction, type Interaction } from 'discord.js';
import type { CommandHandler, CommandReply } from '../../src/commands/handler.js';
import { splitMessage } from '../../src/delivery/split.js';
import type { Logger } from '../../src/logger.js';
import { COMMAND_NAME, commandContextOf, commandTextOf, InteractionFactsSchema, type InteractionFacts } from './commands.js';
import { DISCORD_MAX_MESSAGE_CHARS, type DiscordChatAdapter } from './discord-adapter.js';
import { toDeliveryError } from './errors.js';
import { discordText } from './format.js';

export const PUBLIC_ACK = 'Done — posted for everyone here.';

export interface InteractionDeps {
  handler: Pick<CommandHandler, 'handle'>;
  adapter: Pick<DiscordChatAdapter, 'upload'>;
  log: Logger;
}

export class DiscordInteractions {
  constructor(private readonly deps: InteractionDeps) {}

  /** Never throws. */
  async handle(interaction: Interaction): Promise<void> {
    if (!interaction.isChatInputCommand() || interaction.commandName !== COMMAND_NAME) return;
    const log = this.deps.log.child({ interactionId: interaction.id });
    try {
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    } catch (err) {
      log.warn({ err: toDeliveryError(err, 'defer interaction').message }, 'could not defer /codex; Discord shows it as failed');
      return;
    }
    try {
      const facts = readInteractionFacts(interaction);
      if (!facts.ok) {
        log.warn({ reason: facts.reason }, 'malformed /codex interaction');
        await interaction.editReply({ content: 'Sorry, I could not read that command.' });
        return;
      }
      const ctx = commandContextOf(facts.facts);
      const reply = await this.deps.handler.handle(ctx, commandTextOf(facts.facts));
      log.info({ chatKey: ctx.chatKey, userId: ctx.userId, command: facts.facts.subcommand, ephemeral: reply.ephemeral }, '/codex handled');
      await this.respond(interaction, await this.withUpload(reply, log));
    } catch (err) {
      log.warn({ err: toDeliveryError(err, 'answer interaction').message }, 'could not answer /codex');
    }
  }

  private async withUpload(reply: CommandReply, log: Logger): Promise<CommandReply> {
    if (!reply.upload) return reply;
    try {
      await this.deps.adapter.upload(reply.upload.target, reply.upload.file);
      return reply;
    } catch (err) {
      const mapped = toDeliveryError(err, 'upload');
      log.warn({ code: mapped.code, err: mapped.message }, '/codex upload failed');
      return { text: `I could not post the file into the thread (${mapped.code}): ${mapped.message}`, ephemeral: true };
    }
  }

  private async respond(interaction: ChatInputCommandInteraction, reply: CommandReply): Promise<void> {
    const chunks = splitMessage(discordText(reply.text), DISCORD_MAX_MESSAGE_CHARS);
    if (reply.ephemeral) {
      const [first = '', ...rest] = chunks;
      await interaction.editReply({ content: first, allowedMentions: { parse: [] } });
      for (const chunk of rest) await interaction.followUp({ content: chunk, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
      return;
    }
    await interaction.editReply({ content: PUBLIC_ACK });
    for (const chunk of chunks) await interaction.followUp({ content: chunk, allowedMentions: { parse: [] } });
  }
}

/** Reads and validates what the bridge needs from a discord.js interaction. Never throws. */
export function readInteractionFacts(interaction: ChatInputCommandInteraction): { ok: true; facts: InteractionFacts } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    const sub = interaction.options.data[0];
    const options: Record<string, unknown> = {};
    for (const o of sub?.options ?? []) options[o.name] = o.value;
    const channel = interaction.channel;
    const thread = channel?.isThread() ? channel : null;
    const chatChannel = thread ? thread.parent : channel;
    raw = {
      commandName: interaction.commandName,
      subcommand: sub?.name,
      options,
      guildId: interaction.guildId,
      channelId: interaction.channelId,
      parentId: thread?.parentId ?? null,
      channelName: chatChannel && 'name' in chatChannel && typeof chatChannel.name === 'string' ? chatChannel.name : null,
      userId: interaction.user.id,
      userName: interaction.user.globalName ?? interaction.user.username,
    };
  } catch (err) {
    return { ok: false, reason: `unreadable interaction: ${(err as Error).message}` };
  }
  const parsed = InteractionFactsSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: parsed.error.issues.map((i) => `${i.path.join('.') || 'interaction'}: ${i.message}`).join('; ') };
  return { ok: true, facts: parsed.data };
}
