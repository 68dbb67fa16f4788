/**
 * The `/codex` application command: its definition (one command, one subcommand per shared command
 * name), its registration at start-up, and the pure translations between a Discord interaction and
 * the shared CommandHandler's input (`CommandContext` + command text).
 *
 * Registration: `PUT /applications/{app}/guilds/{guild}/commands` when DISCORD_GUILD_ID is set
 * (visible at once, in that server only), else `PUT /applications/{app}/commands` (global: servers
 * and DMs with the bot). PUT replaces the whole set, so a removed subcommand disappears too.
 */
import {
  ApplicationIntegrationType,
  InteractionContextType,
  Routes,
  SlashCommandBuilder,
  type REST,
  type RESTPutAPIApplicationCommandsJSONBody,
} from 'discord.js';
import { z } from 'zod';
import type { CommandContext } from '../../src/commands/handler.js';
import { COMMAND_NAMES } from '../../src/commands/parse.js';
import { ReasoningEffortSchema } from '../../src/db/rows.js';
import { dmChatKey, guildChatKey, SnowflakeSchema } from './mapping.js';

export const COMMAND_NAME = 'codex';

/** The command set registered with Discord. Pure. */
export function codexCommandDefinitions(): RESTPutAPIApplicationCommandsJSONBody {
  const command = new SlashCommandBuilder()
    .setName(COMMAND_NAME)
    .setDescription('Codex Relay: set up this channel, inspect and steer the Codex agent')
    .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM)
    .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
    .addSubcommand((s) => s.setName('help').setDescription('What I can do and how to ask'))
    .addSubcommand((s) =>
      s
        .setName('setup')
        .setDescription('Register this channel as a Codex group (admins)')
        .addStringOption((o) => o.setName('name').setDescription('Group name (default: the channel name)').setMaxLength(100)),
    )
    .addSubcommand((s) => s.setName('status').setDescription('Container, threads, last exchange, tokens'))
    .addSubcommand((s) =>
      s
        .setName('model')
        .setDescription('Show the model, or set it (admins)')
        .addStringOption((o) => o.setName('name').setDescription('Model name, e.g. gpt-5.5').setMaxLength(100)),
    )
    .addSubcommand((s) =>
      s
        .setName('effort')
        .setDescription('Show the reasoning effort, or set it (admins)')
        .addStringOption((o) =>
          o
            .setName('level')
            .setDescription('Reasoning effort')
            .addChoices(...ReasoningEffortSchema.options.map((level) => ({ name: level, value: level }))),
        ),
    )
    .addSubcommand((s) =>
      s
        .setName('instructions')
        .setDescription("Show this group's instructions, or replace them (admins)")
        .addStringOption((o) => o.setName('set').setDescription('New instructions text (replaces the old)').setMaxLength(6000)),
    )
    .addSubcommand((s) => s.setName('reset').setDescription('The next message in this thread starts a new Codex thread'))
    .addSubcommand((s) => s.setName('archive').setDescription("Post this thread's exchange archive as a file"))
    .addSubcommand((s) => s.setName('stop').setDescription('Interrupt the running turn'))
    .addSubcommand((s) =>
      s
        .setName('admin')
        .setDescription('Make someone a relay admin (owner)')
        .addUserOption((o) => o.setName('user').setDescription('The new admin').setRequired(true)),
    );
  return [command.toJSON()];
}

/** Subcommand names must match the shared parser's, or `/codex <sub>` would fall through to help. */
export const DISCORD_SUBCOMMANDS: readonly string[] = COMMAND_NAMES;

/** Registers the command set. Throws the REST error (the caller decides how loud to be). */
export async function registerCommands(rest: REST, appId: string, guildId: string | null): Promise<void> {
  const route = guildId ? Routes.applicationGuildCommands(appId, guildId) : Routes.applicationCommands(appId);
  await rest.put(route, { body: codexCommandDefinitions() });
}

// ── Interaction → CommandHandler input (pure) ────────────────────────────────────────────────

export const InteractionFactsSchema = z.object({
  commandName: z.string(),
  subcommand: z.string().min(1).max(32),
  options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  guildId: SnowflakeSchema.nullable(),
  channelId: SnowflakeSchema,
  /** For a thread: its parent channel. */
  parentId: SnowflakeSchema.nullable(),
  channelName: z.string().max(200).nullable(),
  userId: SnowflakeSchema,
  userName: z.string().min(1).max(200),
});
export type InteractionFacts = z.infer<typeof InteractionFactsSchema>;

/** The text the shared parser reads, e.g. `model gpt-5.5` or `instructions set Be brief.` Pure. */
export function commandTextOf(facts: Pick<InteractionFacts, 'subcommand' | 'options'>): string {
  const opt = (name: string) => {
    const v = facts.options[name];
    return v === undefined ? '' : String(v).trim();
  };
  switch (facts.subcommand) {
    case 'setup':
      return join('setup', opt('name'));
    case 'model':
      return join('model', opt('name'));
    case 'effort':
      return join('effort', opt('level'));
    case 'instructions':
      return opt('set') ? `instructions set ${opt('set')}` : 'instructions';
    case 'admin':
      return join('admin', opt('user'));
    default:
      // help, status, reset, archive, stop — and an unknown name, which the parser answers with help.
      return facts.subcommand;
  }
}

const join = (head: string, arg: string) => (arg ? `${head} ${arg}` : head);

/**
 * Where the command was issued, in the relay's identity of things: a DM is its own chat with one
 * thread; in a server thread the chat is the parent channel and the thread key the thread. Pure.
 */
export function commandContextOf(facts: InteractionFacts): CommandContext {
  const base = { platform: 'discord' as const, channelId: facts.channelId, userId: facts.userId, userName: facts.userName };
  if (facts.guildId === null) {
    return { ...base, chatKey: dmChatKey(facts.channelId), threadKey: facts.channelId, chatName: `DM ${facts.userName}` };
  }
  if (facts.parentId) {
    return { ...base, chatKey: guildChatKey(facts.guildId, facts.parentId), threadKey: facts.channelId, ...(facts.channelName ? { chatName: facts.channelName } : {}) };
  }
  return { ...base, chatKey: guildChatKey(facts.guildId, facts.channelId), threadKey: null, ...(facts.channelName ? { chatName: facts.channelName } : {}) };
}
