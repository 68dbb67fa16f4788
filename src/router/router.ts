/**
 * Router: the front door for every chat message. In order, and synchronously (so an adapter can
 * call it before acknowledging the platform event):
 *   1. validate the InboundMessage (zod) — a bad one is refused with a reason, never thrown;
 *   2. store it in the inbox, deduplicated on the platform event id — before anything else;
 *   3. resolve the chat's group — an unknown chat gets a one-time setup hint;
 *   4. hand the row to the group's runtime.
 * On start-up `recover()` re-submits rows a crash left unfinished.
 */
import { InboundMessageSchema, type InboundMessage } from '../core/inbound.js';
import type { InboxRow } from '../db/rows.js';
import type { Store } from '../db/store.js';
import type { Logger } from '../logger.js';
import { mayTalk } from '../commands/access.js';
import type { GroupRuntimes } from './group-runtimes.js';

export type AcceptResult =
  | { status: 'accepted'; inboxId: number; groupSlug: string }
  | { status: 'duplicate'; inboxId: number }
  | { status: 'rejected'; reason: string }
  | { status: 'not-set-up'; inboxId: number; /** true the first time for this chat: show the hint */ hint: boolean }
  | { status: 'not-allowed'; inboxId: number };

/** A row that crashed this many times is failed instead of retried forever. */
const MAX_ATTEMPTS = 3;
/** Accepted threads remembered in memory (older ones are known from chat_threads rows). */
const MAX_REMEMBERED_THREADS = 10_000;

export class Router {
  private readonly hinted = new Set<string>();
  /** Threads this process accepted a message in: known before their first turn creates a chat_threads row. */
  private readonly acceptedThreads = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly runtimes: GroupRuntimes,
    private readonly log: Logger,
  ) {}

  accept(input: unknown): AcceptResult {
    const parsed = InboundMessageSchema.safeParse(input);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ');
      this.log.warn({ reason }, 'inbound message refused');
      return { status: 'rejected', reason };
    }
    const message: InboundMessage = parsed.data;
    const group = this.store.groups.byChatKey(message.chatKey);
    const { row, duplicate } = this.store.inbox.accept(message, group?.slug ?? null);
    if (duplicate) {
      this.log.debug({ eventId: message.eventId, inboxId: row.id }, 'duplicate event ignored');
      return { status: 'duplicate', inboxId: row.id };
    }
    if (!group) {
      this.store.inbox.markFailed(row.id, 'chat is not set up');
      const hint = !this.hinted.has(message.chatKey);
      this.hinted.add(message.chatKey);
      return { status: 'not-set-up', inboxId: row.id, hint };
    }
    if (!mayTalk(group, message.userId)) {
      this.store.inbox.markFailed(row.id, 'user is not on the group allowlist');
      return { status: 'not-allowed', inboxId: row.id };
    }
    this.rememberThread(message.chatKey, message.threadKey);
    this.runtimes.get(group).submit(row);
    return { status: 'accepted', inboxId: row.id, groupSlug: group.slug };
  }

  /**
   * Whether the relay takes part in a chat thread, so adapters can accept follow-ups there without
   * a mention: a message was accepted in it by this process, or it has a Codex thread on record.
   */
  takesPartIn(chatKey: string, threadKey: string): boolean {
    if (this.acceptedThreads.has(`${chatKey}\n${threadKey}`)) return true;
    const group = this.store.groups.byChatKey(chatKey);
    return group !== undefined && this.store.threads.get(group.slug, threadKey) !== undefined;
  }

  private rememberThread(chatKey: string, threadKey: string): void {
    if (this.acceptedThreads.size >= MAX_REMEMBERED_THREADS) this.acceptedThreads.delete(this.acceptedThreads.values().next().value as string);
    this.acceptedThreads.add(`${chatKey}\n${threadKey}`);
  }

  /** Re-submits inbox rows left received/running by a crash. Returns how many were resumed. */
  recover(): number {
    let resumed = 0;
    for (const row of this.store.inbox.unfinished()) {
      const group = row.groupSlug ? this.store.groups.bySlug(row.groupSlug) : undefined;
      if (!group) {
        this.failUnfinished(row, 'its group no longer exists');
        continue;
      }
      if (row.attempts >= MAX_ATTEMPTS) {
        this.failUnfinished(row, `gave up after ${row.attempts} attempts`);
        continue;
      }
      if (row.status === 'running') this.store.inbox.requeue(row.id);
      const fresh = this.store.inbox.byId(row.id);
      if (!fresh) continue;
      this.runtimes.get(group).submit(fresh);
      resumed += 1;
    }
    if (resumed) this.log.info({ resumed }, 'resumed unfinished messages after restart');
    return resumed;
  }

  private failUnfinished(row: InboxRow, reason: string): void {
    this.store.inbox.markFailed(row.id, reason);
    this.log.warn({ inboxId: row.id, reason }, 'unfinished message failed during recovery');
  }
}
