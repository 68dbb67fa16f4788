/**
 * `/codex …` for every platform: one handler, adapters only translate the platform's slash-command
 * payload into a CommandContext and the reply back. Answers are ephemeral unless the command
 * changed shared state (setup, model, effort, instructions set, reset, stop), so the channel sees
 * what changed and who changed it.
 */
import type { ThreadTarget, UploadFile } from '../chat/adapter.js';
import type { Platform } from '../core/inbound.js';
import { INSTRUCTIONS_MAX_CHARS, MODEL_RE, type Group } from '../db/rows.js';
import type { Store } from '../db/store.js';
import type { Logger } from '../logger.js';
import type { GroupRuntimes } from '../router/group-runtimes.js';
import { formatStatus } from '../status.js';
import { AccessPolicy, userKey } from './access.js';
import { parseCommand, type Command } from './parse.js';
import { postOnRequest } from '../archive/policy.js';

export interface CommandContext {
  platform: Platform;
  chatKey: string;
  channelId: string;
  /** The chat thread the command was issued in, when the platform tells us. */
  threadKey: string | null;
  userId: string;
  userName?: string;
  /** Channel or DM name, the default group name for setup. */
  chatName?: string;
}

export interface CommandReply {
  text: string;
  /** Only the caller sees it. */
  ephemeral: boolean;
  /** A file to upload into a thread (the archive). */
  upload?: { target: ThreadTarget; file: UploadFile };
}

/** Where `/codex archive` gets a thread's transcript (the archive module implements it). */
export interface TranscriptSource {
  transcriptFor(groupSlug: string, threadKey: string): UploadFile | undefined;
}

export interface CommandDeps {
  store: Store;
  runtimes: Pick<GroupRuntimes, 'find'>;
  access: AccessPolicy;
  archive?: TranscriptSource;
  log: Logger;
}

export const HELP_TEXT = [
  '*Codex Relay* — mention me (or DM me) with a task; I answer in the thread.',
  '`/codex setup [name]` register this channel as a group (admins)',
  '`/codex status` container, threads, last exchange, tokens',
  '`/codex model <name>` · `/codex effort <none|minimal|low|medium|high|xhigh>` (admins)',
  '`/codex instructions` show · `/codex instructions set <text>` change this group\'s AGENTS.md text (admins)',
  '`/codex reset` next message starts a new Codex thread',
  '`/codex archive` post this thread\'s exchange archive as a file',
  '`/codex stop` interrupt the running turn',
  '`/codex admin <user>` make someone an admin (owner)',
].join('\n');

export class CommandHandler {
  constructor(private readonly deps: CommandDeps) {}

  /** Never throws: every failure becomes a reply the user can act on. */
  async handle(ctx: CommandContext, text: string): Promise<CommandReply> {
    const command = parseCommand(text);
    try {
      return await this.run(ctx, command);
    } catch (err) {
      this.deps.log.warn({ err, command: command.name }, 'command failed');
      return { text: `That did not work: ${(err as Error).message}`, ephemeral: true };
    }
  }

  private async run(ctx: CommandContext, command: Command): Promise<CommandReply> {
    const { store } = this.deps;
    const group = store.groups.byChatKey(ctx.chatKey);
    const caller = userKey(ctx.platform, ctx.userId);
    const isAdmin = () => this.deps.access.isAdmin(caller);
    const notSetUp: CommandReply = { text: 'This chat is not set up yet. An admin can run `/codex setup`.', ephemeral: true };
    const adminsOnly: CommandReply = { text: 'Only relay admins can do that.', ephemeral: true };

    switch (command.name) {
      case 'help':
        return { text: command.note ? `${command.note}\n${HELP_TEXT}` : HELP_TEXT, ephemeral: true };
      case 'setup': {
        const paired = this.deps.access.pairOwner(caller);
        if (!paired && !isAdmin()) return adminsOnly;
        if (group) return { text: `Already set up.\n${describeGroup(group)}`, ephemeral: true };
        const name = command.groupName ?? ctx.chatName ?? ctx.channelId;
        const created = store.groups.create({ slug: store.groups.uniqueSlug(name), chatKey: ctx.chatKey, platform: ctx.platform, name });
        const pairing = paired ? `\n<@${ctx.userId}> is now the relay owner (first setup).` : '';
        return { text: `Codex is set up here as group *${created.name}* by <@${ctx.userId}>.${pairing}\n${describeGroup(created)}\nMention me to start.`, ephemeral: false };
      }
      case 'admin': {
        if (!this.deps.access.isOwner(caller)) return { text: 'Only the relay owner can add admins.', ephemeral: true };
        if (!command.userId) return { text: 'Usage: `/codex admin <user id or @mention>`', ephemeral: true };
        this.deps.access.addAdmin(userKey(ctx.platform, command.userId), caller);
        return { text: `<@${command.userId}> is now a relay admin.`, ephemeral: false };
      }
      default:
        break;
    }
    if (!group) return notSetUp;
    const runtime = this.deps.runtimes.find(group.slug);

    switch (command.name) {
      case 'status':
        return { text: formatStatus({ store, runtimes: this.deps.runtimes }, group.slug), ephemeral: true };
      case 'model': {
        if (!command.model) return { text: `Model: ${group.model}`, ephemeral: true };
        if (!isAdmin()) return adminsOnly;
        if (!MODEL_RE.test(command.model)) return { text: `"${command.model}" is not a model name.`, ephemeral: true };
        this.update(group, { model: command.model });
        return { text: `Model set to \`${command.model}\` by <@${ctx.userId}>; applies from the next message.`, ephemeral: false };
      }
      case 'effort': {
        if (command.invalid) return { text: `"${command.invalid}" is not an effort level (none, minimal, low, medium, high, xhigh).`, ephemeral: true };
        if (!command.effort) return { text: `Reasoning effort: ${group.reasoningEffort}`, ephemeral: true };
        if (!isAdmin()) return adminsOnly;
        this.update(group, { reasoningEffort: command.effort });
        return { text: `Reasoning effort set to \`${command.effort}\` by <@${ctx.userId}>.`, ephemeral: false };
      }
      case 'instructions': {
        if (command.set === undefined) {
          return { text: group.instructions ? `Instructions for this group:\n${group.instructions}` : 'No group instructions yet. `/codex instructions set <text>` adds some.', ephemeral: true };
        }
        if (!isAdmin()) return adminsOnly;
        if (command.set.length > INSTRUCTIONS_MAX_CHARS) return { text: `Instructions are limited to ${INSTRUCTIONS_MAX_CHARS} characters.`, ephemeral: true };
        this.update(group, { instructions: command.set });
        return { text: `Instructions updated by <@${ctx.userId}>; they apply from the next message.`, ephemeral: false };
      }
      case 'reset': {
        if (ctx.threadKey) {
          store.threads.reset(group.slug, ctx.threadKey);
          return { text: 'The next message in this thread starts a new Codex thread.', ephemeral: false };
        }
        const count = store.threads.resetAll(group.slug);
        return { text: `Reset ${count} thread${count === 1 ? '' : 's'}: the next message in each starts a new Codex thread.`, ephemeral: false };
      }
      case 'stop': {
        const stopped = runtime ? await runtime.interrupt(ctx.threadKey ?? undefined) : 0;
        return stopped > 0 ? { text: `Stopped ${stopped} running turn${stopped === 1 ? '' : 's'} (<@${ctx.userId}>).`, ephemeral: false } : { text: 'Nothing is running.', ephemeral: true };
      }
      case 'archive': {
        if (!postOnRequest(group.archivePolicy)) return { text: 'Archive posting is off for this group (exchanges are still archived on the host).', ephemeral: true };
        const threadKey = ctx.threadKey ?? store.threads.latest(group.slug)?.threadKey;
        if (!threadKey) return { text: 'No conversation to archive yet.', ephemeral: true };
        const file = this.deps.archive?.transcriptFor(group.slug, threadKey);
        if (!file) return { text: 'No archived exchanges for this thread yet.', ephemeral: true };
        return { text: 'Archive posted to the thread.', ephemeral: true, upload: { target: { chatKey: ctx.chatKey, channelId: ctx.channelId, threadKey }, file } };
      }
      default:
        return { text: HELP_TEXT, ephemeral: true };
    }
  }

  private update(group: Group, patch: Parameters<Store['groups']['update']>[1]): void {
    const updated = this.deps.store.groups.update(group.slug, patch);
    this.deps.runtimes.find(group.slug)?.updateGroup(updated);
  }
}

export function describeGroup(group: Group): string {
  return [
    `• group \`${group.slug}\` · model \`${group.model}\` · effort \`${group.reasoningEffort}\``,
    `• sandbox \`${group.sandboxMode}\` · egress \`${group.egress}\` · archive \`${group.archivePolicy}\``,
    `• limits: ${group.memoryMb} MB, ${group.cpus} CPU, ${group.pidsLimit} pids · idle stop ${group.idleTimeoutSec}s · turn limit ${group.turnTimeoutSec}s`,
  ].join('\n');
}


