/**
 * Discord messages → router. For every `messageCreate` discord.js hands over:
 *   1. read and route it (mapping.ts: zod-validated facts, pure routing); malformed → logged, dropped;
 *   2. a DM: apply DISCORD_DM_POLICY. Refused → the message is still written to the inbox (marked
 *      failed, so a redelivery is recognised) and answered with a polite refusal; no group, no
 *      container. Allowed → the DM's group is created on its first message (a local write);
 *   3. `router.accept` — synchronous and durable, before any Discord API call for this message;
 *   4. then the slow calls: open the thread for a mention (the answer goes there), or note which
 *      message the answer replies to; or tell the user what the router decided (setup hint, refusal).
 */
import { NOTICES } from '../../src/chat/notices.js';
import type { Message } from 'discord.js';
import { userKey, type AccessPolicy } from '../../src/commands/access.js';
import type { DiscordConfig } from '../../src/config.js';
import { InboundMessageSchema, type InboundMessageInput } from '../../src/core/inbound.js';
import type { Store } from '../../src/db/store.js';
import type { Logger } from '../../src/logger.js';
import type { Router } from '../../src/router/router.js';
import type { DiscordChatAdapter } from './discord-adapter.js';
import { decideDm } from './dm-policy.js';
import { readMessageFacts, routeMessage, toInbound, type MessageFacts, type MessageRoute } from './mapping.js';

export const TEXT = NOTICES;


export interface InboundDeps {
  router: Pick<Router, 'accept' | 'takesPartIn'>;
  store: Store;
  access: AccessPolicy;
  adapter: Pick<DiscordChatAdapter, 'prepareThread' | 'answerNext' | 'forgetAnswer' | 'reply'>;
  dm: Pick<DiscordConfig, 'dmPolicy' | 'dmAllowlist'>;
  /** The bot's user id (known once the gateway is ready). */
  botId: () => string;
  log: Logger;
}

type Routed = Exclude<MessageRoute, { kind: 'ignore' }>;

export class DiscordInbound {
  private paused = false;

  constructor(private readonly deps: InboundDeps) {}

  /** Stop taking messages (shutdown): they are left alone, not stored. */
  pause(): void {
    this.paused = true;
  }

  /** Never throws. */
  async handle(message: Message): Promise<void> {
    if (this.paused) return;
    try {
      await this.process(message);
    } catch (err) {
      this.deps.log.error({ err, messageId: message.id }, 'Discord message handling failed');
    }
  }

  private async process(message: Message): Promise<void> {
    const { deps } = this;
    const botId = deps.botId();
    const read = readMessageFacts(message, botId);
    if (!read.ok) {
      deps.log.warn({ messageId: typeof message.id === 'string' ? message.id : undefined, reason: read.reason }, 'malformed Discord message dropped');
      return;
    }
    const facts = read.facts;
    const route = routeMessage(facts, { botId, isRelayThread: (chatKey, threadKey, owner) => this.isRelayThread(chatKey, threadKey, owner, botId) });
    if (route.kind === 'ignore') {
      deps.log.trace({ messageId: facts.id, reason: route.reason }, 'Discord message ignored');
      return;
    }
    const inbound = toInbound(facts, route, botId);
    const log = deps.log.child({ eventId: facts.id, kind: route.kind });
    if (route.kind === 'dm' && !this.admitDm(facts, inbound, log)) return;

    // Delivery notes first, so the group's first post (which may be scheduled inside accept) sees them.
    const pending = this.prepareDelivery(message, facts, route);
    let result: ReturnType<InboundDeps['router']['accept']>;
    try {
      result = deps.router.accept(inbound);
    } catch (err) {
      pending.cancel();
      throw err;
    }
    if (result.status === 'accepted') pending.commit();
    else pending.cancel();
    switch (result.status) {
      case 'accepted':
        log.debug({ inboxId: result.inboxId, group: result.groupSlug }, 'Discord message accepted');
        return;
      case 'duplicate':
        log.debug({ inboxId: result.inboxId }, 'Discord redelivery ignored');
        return;
      case 'not-set-up':
        if (result.hint) await this.tell(facts, deps.access.needsPairing() ? TEXT.pairingHint : TEXT.setupHint, log);
        return;
      case 'not-allowed':
        await this.tell(facts, TEXT.notAllowed, log);
        return;
      case 'rejected':
        log.warn({ reason: result.reason }, 'Discord message refused by the router');
        return;
    }
  }

  /**
   * The notes delivery needs for this message, registered before `router.accept`: a mention's thread
   * (posts wait for it), or the message the answer replies to. `commit` runs after the message was
   * accepted — only then does the slow call (opening the thread) start; `cancel` drops the notes.
   */
  private prepareDelivery(message: Message, facts: MessageFacts, route: Routed): { commit(): void; cancel(): void } {
    const { adapter, log } = this.deps;
    if (route.kind === 'mention') {
      const thread = adapter.prepareThread(route.threadKey, route.parentChannelId);
      return {
        commit: () =>
          void thread.open(async () => {
            const opened = await message.startThread({ name: route.threadName });
            log.info({ threadId: opened.id, chatKey: route.chatKey }, 'thread opened for a mention');
          }),
        cancel: () => thread.cancel(),
      };
    }
    adapter.answerNext(route.threadKey, facts.id);
    return { commit: () => undefined, cancel: () => adapter.forgetAnswer(route.threadKey, facts.id) };
  }

  /** DM policy; a refused DM is stored as failed (dedupe) and answered once. True when admitted. */
  private admitDm(facts: MessageFacts, inbound: InboundMessageInput, log: Logger): boolean {
    const { store, access, dm } = this.deps;
    const decision = decideDm(dm, facts.author.id, access.isAdmin(userKey('discord', facts.author.id)));
    if (!decision.allowed) {
      if (this.recordRefused(inbound, decision.reason, log)) {
        log.info({ userId: facts.author.id, reason: decision.reason }, 'DM refused');
        void this.tell(facts, decision.reply, log);
      }
      return false;
    }
    if (store.groups.byChatKey(inbound.chatKey)) return true;
    const name = `DM ${facts.author.name}`;
    try {
      const created = store.groups.create({ slug: store.groups.uniqueSlug(`dm-${facts.author.name}`), chatKey: inbound.chatKey, platform: 'discord', name });
      log.info({ group: created.slug, chatKey: inbound.chatKey }, 'group created for a DM');
    } catch (err) {
      if (!store.groups.byChatKey(inbound.chatKey)) log.warn({ err }, 'could not create the DM group');
    }
    return true;
  }

  /** Stores a refused message as failed. False when it was already stored (a redelivery) or invalid. */
  private recordRefused(inbound: InboundMessageInput, reason: string, log: Logger): boolean {
    const parsed = InboundMessageSchema.safeParse(inbound);
    if (!parsed.success) {
      log.warn({ reason: parsed.error.message }, 'refused DM could not be stored');
      return false;
    }
    const { row, duplicate } = this.deps.store.inbox.accept(parsed.data, null);
    if (duplicate) return false;
    this.deps.store.inbox.markFailed(row.id, reason);
    return true;
  }

  /** A reply to the user's message. Never throws. */
  private async tell(facts: MessageFacts, text: string, log: Logger): Promise<void> {
    try {
      await this.deps.adapter.reply(facts.channelId, facts.id, text);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not answer the user');
    }
  }

  /** The relay opened the thread, has a chat thread for it, or accepted a message in it this run. */
  private isRelayThread(chatKey: string, threadKey: string, owner: string | null, botId: string): boolean {
    return owner === botId || this.deps.router.takesPartIn(chatKey, threadKey);
  }

}
