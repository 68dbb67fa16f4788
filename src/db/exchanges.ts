/**
 * Exchanges repository: the archive of every finished turn (prompt, what Codex did, answer, tokens,
 * timing). One record per Codex turn: archiving the same turn again returns the first record, so a
 * retry after a crash cannot double the archive.
 */
import type { Database } from 'better-sqlite3';
import { InvalidInputError } from './errors.js';
import {
  ExchangeRowSchema,
  NewExchangeSchema,
  readRow,
  TokenTotalsRowSchema,
  type Exchange,
  type NewExchange,
  type TokenTotals,
} from './rows.js';

export class ExchangesRepo {
  private readonly stmts;

  constructor(db: Database) {
    this.stmts = {
      insert: db.prepare<[Record<string, unknown>], unknown>(
        `INSERT INTO exchanges (group_slug, thread_key, inbox_id, codex_thread_id, codex_turn_id, platform, user_id,
           prompt, items, answer, status, error, input_tokens, output_tokens, total_tokens, started_at, completed_at,
           duration_ms)
         VALUES (@group_slug, @thread_key, @inbox_id, @codex_thread_id, @codex_turn_id, @platform, @user_id, @prompt,
           @items, @answer, @status, @error, @input_tokens, @output_tokens, @total_tokens, @started_at, @completed_at,
           @duration_ms)
         ON CONFLICT (group_slug, codex_turn_id) WHERE codex_turn_id IS NOT NULL DO NOTHING
         RETURNING *`,
      ),
      byTurn: db.prepare<[string, string], unknown>('SELECT * FROM exchanges WHERE group_slug = ? AND codex_turn_id = ?'),
      byId: db.prepare<[number], unknown>('SELECT * FROM exchanges WHERE id = ?'),
      deleteCompletedBefore: db.prepare<[string, number], unknown>('DELETE FROM exchanges WHERE group_slug = ? AND completed_at < ?'),
      listByThread: db.prepare<[string, string], unknown>(
        'SELECT * FROM exchanges WHERE group_slug = ? AND thread_key = ? ORDER BY started_at, id',
      ),
      lastByGroup: db.prepare<[string], unknown>(
        'SELECT * FROM exchanges WHERE group_slug = ? ORDER BY completed_at DESC, id DESC LIMIT 1',
      ),
      tokenTotals: db.prepare<[string], unknown>(
        `SELECT count(*) AS exchanges, coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(total_tokens), 0) AS total_tokens
         FROM exchanges WHERE group_slug = ?`,
      ),
    };
  }

  /**
   * Archives one exchange; `durationMs` is computed. Returns the stored record (the earlier one when
   * this turn was archived before). Throws InvalidInputError for a malformed record.
   */
  insert(record: NewExchange): Exchange {
    const parsed = NewExchangeSchema.safeParse(record);
    if (!parsed.success) throw new InvalidInputError('exchange', parsed.error.issues);
    const e = parsed.data;
    const raw = this.stmts.insert.get({
      group_slug: e.groupSlug,
      thread_key: e.threadKey,
      inbox_id: e.inboxId,
      codex_thread_id: e.codexThreadId,
      codex_turn_id: e.codexTurnId,
      platform: e.platform,
      user_id: e.userId,
      prompt: e.prompt,
      items: JSON.stringify(e.items),
      answer: e.answer,
      status: e.status,
      error: e.error,
      input_tokens: e.inputTokens,
      output_tokens: e.outputTokens,
      total_tokens: e.totalTokens,
      started_at: e.startedAt,
      completed_at: e.completedAt,
      duration_ms: e.completedAt - e.startedAt,
    });
    if (raw !== undefined) return this.read(raw);
    // Only a turn id conflict makes the insert do nothing, so the turn id is set here.
    return this.read(this.stmts.byTurn.get(e.groupSlug, e.codexTurnId ?? ''));
  }

  byId(id: number): Exchange | undefined {
    const raw = this.stmts.byId.get(id);
    return raw === undefined ? undefined : this.read(raw);
  }

  /** Retention: deletes a group's exchanges that completed before `cutoffMs`. Returns how many. */
  deleteCompletedBefore(groupSlug: string, cutoffMs: number): number {
    return this.stmts.deleteCompletedBefore.run(groupSlug, cutoffMs).changes;
  }

  /** A thread's exchanges in the order they started. */
  listByThread(groupSlug: string, threadKey: string): Exchange[] {
    return this.stmts.listByThread.all(groupSlug, threadKey).map((raw) => this.read(raw));
  }

  lastByGroup(groupSlug: string): Exchange | undefined {
    const raw = this.stmts.lastByGroup.get(groupSlug);
    return raw === undefined ? undefined : this.read(raw);
  }

  /** Sums over all of a group's exchanges; missing token counts count as 0. */
  tokenTotals(groupSlug: string): TokenTotals {
    return readRow(TokenTotalsRowSchema, 'exchanges', `group_slug=${groupSlug} (totals)`, this.stmts.tokenTotals.get(groupSlug));
  }

  private read(raw: unknown): Exchange {
    const id = typeof raw === 'object' && raw !== null && 'id' in raw ? String(raw.id) : '?';
    return readRow(ExchangeRowSchema, 'exchanges', `id=${id}`, raw);
  }
}
