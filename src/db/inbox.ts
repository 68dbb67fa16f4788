/**
 * Inbox repository: every platform event is written here before it is acknowledged or answered.
 * The event id (`platform:eventId`) is unique, so a redelivery is recognised as a duplicate instead
 * of producing a second reply. Status moves only along `canTransition`; every move is a
 * compare-and-set inside an IMMEDIATE transaction, so two writers can never both move one row.
 *
 *   received ──▶ running ──▶ answered   (final)
 *      │  ▲         │
 *      │  └─requeue─┤        (attempts + 1)
 *      └────────────┴─────▶ failed      (final)
 */
import type { Database } from 'better-sqlite3';
import { InboundMessageSchema, type InboundMessage } from '../core/inbound.js';
import { CorruptRowError, IllegalTransitionError, InvalidInputError, NotFoundError } from './errors.js';
import { InboxRowSchema, InboxStatusSchema, readRow, type InboxRow, type InboxStatus } from './rows.js';

const TRANSITIONS: Readonly<Record<InboxStatus, readonly InboxStatus[]>> = {
  received: ['running', 'failed'],
  running: ['answered', 'failed', 'received'],
  answered: [],
  failed: [],
};

/**
 * Whether an inbox row may move from `from` to `to`. Pure. `received → failed` exists for messages
 * refused before any run (no group, user not allowed), so they do not come back after a restart.
 */
export function canTransition(from: InboxStatus, to: InboxStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The inbox's unique key for a message. */
export function inboxEventKey(msg: Pick<InboundMessage, 'platform' | 'eventId'>): string {
  return `${msg.platform}:${msg.eventId}`;
}

interface Move {
  to: InboxStatus;
  /** Added to `attempts`. */
  attempts: 0 | 1;
  /** `undefined` keeps the column as it is. */
  error?: string | null;
  codexTurnId?: string | null;
}

export class InboxRepo {
  private readonly stmts;

  constructor(
    private readonly db: Database,
    private readonly now: () => number,
  ) {
    this.stmts = {
      insert: db.prepare<[Record<string, unknown>], unknown>(
        `INSERT INTO inbox (event_id, platform, chat_key, thread_key, channel_id, group_slug, user_id, user_name, text,
           payload, status, attempts, received_at, updated_at)
         VALUES (@event_id, @platform, @chat_key, @thread_key, @channel_id, @group_slug, @user_id, @user_name, @text,
           @payload, 'received', 0, @at, @at)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING *`,
      ),
      byEventId: db.prepare<[string], unknown>('SELECT * FROM inbox WHERE event_id = ?'),
      byId: db.prepare<[number], unknown>('SELECT * FROM inbox WHERE id = ?'),
      statusOf: db.prepare<[number], unknown>('SELECT status FROM inbox WHERE id = ?').pluck(),
      move: db.prepare<[Record<string, unknown>], unknown>(
        `UPDATE inbox SET status = @to, attempts = attempts + @attempts,
           error = CASE WHEN @set_error THEN @error ELSE error END,
           codex_turn_id = CASE WHEN @set_turn THEN @turn ELSE codex_turn_id END,
           updated_at = @at
         WHERE id = @id AND status = @from
         RETURNING *`,
      ),
      unfinished: db.prepare<[], unknown>(`SELECT * FROM inbox WHERE status IN ('received', 'running') ORDER BY id`),
    };
  }

  /**
   * Stores a message unless its event id is already known; either way returns the stored row.
   * Atomic: the unique index decides, so concurrent deliveries of one event yield one row.
   * Throws InvalidInputError when the message does not match InboundMessageSchema.
   */
  accept(msg: InboundMessage, groupSlug: string | null): { row: InboxRow; duplicate: boolean } {
    const parsed = InboundMessageSchema.safeParse(msg);
    if (!parsed.success) throw new InvalidInputError('inbound message', parsed.error.issues);
    const m = parsed.data;
    const eventKey = inboxEventKey(m);
    const inserted = this.stmts.insert.get({
      event_id: eventKey,
      platform: m.platform,
      chat_key: m.chatKey,
      thread_key: m.threadKey,
      channel_id: m.channelId,
      group_slug: groupSlug,
      user_id: m.userId,
      user_name: m.userName ?? null,
      text: m.text,
      payload: JSON.stringify(m),
      at: this.now(),
    });
    if (inserted !== undefined) return { row: this.read(`event_id=${eventKey}`, inserted), duplicate: false };
    return { row: this.read(`event_id=${eventKey}`, this.stmts.byEventId.get(eventKey)), duplicate: true };
  }

  byId(id: number): InboxRow | undefined {
    const raw = this.stmts.byId.get(id);
    return raw === undefined ? undefined : this.read(`id=${id}`, raw);
  }

  byEventId(msg: Pick<InboundMessage, 'platform' | 'eventId'>): InboxRow | undefined {
    const key = inboxEventKey(msg);
    const raw = this.stmts.byEventId.get(key);
    return raw === undefined ? undefined : this.read(`event_id=${key}`, raw);
  }

  /** received → running. Throws IllegalTransitionError / NotFoundError. */
  markRunning(id: number): InboxRow {
    return this.move(id, { to: 'running', attempts: 0 });
  }

  /** running → answered; clears the error. `codexTurnId` is null for replies that needed no turn. */
  markAnswered(id: number, codexTurnId: string | null): InboxRow {
    return this.move(id, { to: 'answered', attempts: 0, error: null, codexTurnId });
  }

  /** received | running → failed (final). */
  markFailed(id: number, error: string): InboxRow {
    return this.move(id, { to: 'failed', attempts: 0, error });
  }

  /** running → received, attempts + 1 (the run was cut short, e.g. container died). */
  requeue(id: number, reason?: string): InboxRow {
    return this.move(id, { to: 'received', attempts: 1, ...(reason === undefined ? {} : { error: reason }) });
  }

  /** Messages not finished (received or running), oldest first: what to resume after a restart. */
  unfinished(): InboxRow[] {
    return this.stmts.unfinished.all().map((raw) => this.read(`id=${idOf(raw)}`, raw));
  }

  private move(id: number, move: Move): InboxRow {
    return this.db
      .transaction((): InboxRow => {
        const status = this.stmts.statusOf.get(id);
        if (status === undefined) throw new NotFoundError('inbox', `id=${id}`);
        const known = InboxStatusSchema.safeParse(status);
        if (!known.success) throw new CorruptRowError('inbox', `id=${id}`, known.error.issues);
        const from = known.data;
        if (!canTransition(from, move.to)) throw new IllegalTransitionError('inbox', id, from, move.to);
        const raw = this.stmts.move.get({
          id,
          from,
          to: move.to,
          attempts: move.attempts,
          set_error: move.error === undefined ? 0 : 1,
          error: move.error ?? null,
          set_turn: move.codexTurnId === undefined ? 0 : 1,
          turn: move.codexTurnId ?? null,
          at: this.now(),
        });
        // Cannot be undefined: the IMMEDIATE transaction holds the write lock since the read above.
        return this.read(`id=${id}`, raw);
      })
      .immediate();
  }

  private read(key: string, raw: unknown): InboxRow {
    return readRow(InboxRowSchema, 'inbox', key, raw);
  }
}

function idOf(raw: unknown): string {
  return typeof raw === 'object' && raw !== null && 'id' in raw ? String(raw.id) : '?';
}
