/**
 * Slack events → router. For every `app_mention` / `message` event bolt hands over:
 *   1. map it (events.ts: zod-validated, pure); malformed → logged and dropped, never thrown;
 *   2. `router.accept` — synchronous and durable: the inbox row exists before any Slack API call
 *      for this event (bolt has already acked the event, so this write is what keeps it);
 *   3. answer what the router decided: a one-time setup hint, a polite refusal, or nothing (the
 *      group runtime posts the progress message and the answer).
 *
 * Shared files are not fetched here: the stored message carries their Slack URLs and the group
 * runtime downloads them at turn time through `SlackChatAdapter.download`.
 *
 * Thread context is not fetched here either: the first mention in the middle of a thread the bot has
 * not seen is stored with `contextBefore` (its ts), and the group runtime asks
 * `SlackChatAdapter.threadContext` for the earlier messages on the thread's first Codex turn.
 *
 * DMs: a DM is its own chat and needs a group like a channel does. A DM from a relay admin
 * creates that group on the spot (they could run `/codex setup` there anyway); anyone else is told
 * once that DMs are for admins. Owners/admins come from env or `/codex admin`.
 */
import type { ThreadTarget } from '../../src/chat/adapter.js';
import { NOTICES } from '../../src/chat/notices.js';
import { mayTalk, userKey, type AccessPolicy } from '../../src/commands/access.js';
import type { Group } from '../../src/db/rows.js';
import type { Store } from '../../src/db/store.js';
import type { Logger } from '../../src/logger.js';
import type { Router } from '../../src/router/router.js';
import { mapSlackEvent, type SlackInbound } from './events.js';
import type { SlackChatAdapter } from './slack-adapter.js';
import type { UserNames } from './user-names.js';

export interface InboundDeps {
  router: Pick<Router, 'accept' | 'takesPartIn'>;
  store: Store;
  access: AccessPolicy;
  adapter: SlackChatAdapter;
  names: UserNames;
  botUserId: string;
  log: Logger;
}

export const TEXT = {
  ...NOTICES,
  dmForAdmins: 'Direct messages with Codex are for relay admins. Mention me in a channel where Codex is set up, or ask the relay owner to make you an admin (`/codex admin @you`).',
  unreadable: 'Sorry, I could not read that message. Please send it again.',
} as const;


export class SlackInboundHandler {

  constructor(private readonly deps: InboundDeps) {}

  /** Never throws. */
  async handle(body: unknown): Promise<void> {
    try {
      await this.process(body);
    } catch (err) {
      this.deps.log.error({ err }, 'Slack event handling failed');
    }
  }

  /** The bot takes part in a thread once the router accepted a message there or it has a Codex thread. */
  isKnownThread(chatKey: string, threadKey: string): boolean {
    return this.deps.router.takesPartIn(chatKey, threadKey);
  }

  private async process(body: unknown): Promise<void> {
    const { deps } = this;
    const mapped = mapSlackEvent(body, {
      botUserId: deps.botUserId,
      isKnownThread: (chatKey, threadKey) => this.isKnownThread(chatKey, threadKey),
      userName: (id) => deps.names.cached(id),
    });
    if (mapped.kind === 'malformed') {
      deps.log.warn({ reason: mapped.reason }, 'malformed Slack event dropped');
      return;
    }
    if (mapped.kind === 'ignored') {
      deps.log.trace({ reason: mapped.reason }, 'Slack event ignored');
      return;
    }
    const inbound = mapped.inbound;
    const { message } = inbound;
    const log = deps.log.child({ slackEventId: inbound.slackEventId, eventId: message.eventId });
    const group = inbound.kind === 'dm' ? this.dmGroup(inbound) : deps.store.groups.byChatKey(message.chatKey);
    // Mid-thread mention: the earlier messages are fetched by the group runtime on the thread's first
    // Codex turn (adapter.threadContext), after the message is stored — no API call before accept.
    const result = deps.router.accept(group && this.wantsContext(inbound, group) ? { ...message, contextBefore: inbound.messageTs } : message);
    const target: ThreadTarget = { chatKey: message.chatKey, channelId: message.channelId, threadKey: message.threadKey };
    switch (result.status) {
      case 'accepted':
        deps.names.learn(message.userId);
        log.debug({ inboxId: result.inboxId, kind: inbound.kind }, 'Slack message accepted');
        return;
      case 'duplicate':
        log.debug({ inboxId: result.inboxId }, 'Slack redelivery ignored');
        return;
      case 'not-set-up':
        if (result.hint) await this.tell(target, message.userId, inbound.kind === 'dm' ? this.dmHint() : this.setupHint(), inbound.kind === 'dm', log);
        return;
      case 'not-allowed':
        await this.tell(target, message.userId, TEXT.notAllowed, false, log);
        return;
      case 'rejected':
        log.warn({ reason: result.reason }, 'Slack message refused by the router');
        await this.tell(target, message.userId, TEXT.unreadable, inbound.kind === 'dm', log);
        return;
    }
  }

  /** Only for messages the router will accept: the checks are local reads, no API call. */
  private wantsContext(inbound: SlackInbound, group: Group): boolean {
    if (!inbound.wantsContext || !inbound.threadTs || !mayTalk(group, inbound.message.userId)) return false;
    return this.deps.store.inbox.byEventId({ platform: 'slack', eventId: inbound.message.eventId }) === undefined;
  }

  private dmGroup(inbound: SlackInbound): Group | undefined {
    const { store, access, log } = this.deps;
    const { chatKey, userId } = inbound.message;
    const existing = store.groups.byChatKey(chatKey);
    if (existing || !access.isAdmin(userKey('slack', userId))) return existing;
    const name = `DM ${this.deps.names.cached(userId) ?? userId}`;
    try {
      const created = store.groups.create({ slug: store.groups.uniqueSlug(name), chatKey, platform: 'slack', name });
      log.info({ group: created.slug, chatKey }, 'group created for an admin\'s DM');
      return created;
    } catch (err) {
      // Two first DMs at once: the other one created it.
      return store.groups.byChatKey(chatKey) ?? (log.warn({ err }, 'could not create the DM group'), undefined);
    }
  }

  private setupHint(): string {
    return this.deps.access.needsPairing() ? TEXT.pairingHint : TEXT.setupHint;
  }

  private dmHint(): string {
    return this.deps.access.needsPairing() ? TEXT.pairingHint : TEXT.dmForAdmins;
  }

  /** A note for one person: ephemeral in channels, a plain message in their DM. Never throws. */
  private async tell(target: ThreadTarget, userId: string, text: string, isDm: boolean, log: Logger): Promise<void> {
    try {
      if (isDm) await this.deps.adapter.postMrkdwn(target, text);
      else await this.deps.adapter.postEphemeralMrkdwn(target, userId, text);
    } catch (err) {
      log.warn({ err }, 'could not tell the user');
    }
  }

}
