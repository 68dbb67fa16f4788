/**
 * Chat threads repository: maps a chat thread (Slack thread_ts, Discord thread id, …) inside a group
 * to the Codex thread that carries its conversation. Rows are created on first use (upsert), so
 * callers never need an "ensure" step.
 */
import type { Database } from 'better-sqlite3';
import { ChatThreadRowSchema, readRow, type ChatThread } from './rows.js';

interface Params {
  group: string;
  thread: string;
  at: number;
}

export class ThreadsRepo {
  private readonly stmts;

  constructor(
    db: Database,
    private readonly now: () => number,
  ) {
    this.stmts = {
      get: db.prepare<[string, string], unknown>('SELECT * FROM chat_threads WHERE group_slug = ? AND thread_key = ?'),
      setCodexThread: db.prepare<[Params & { codex: string }], unknown>(
        `INSERT INTO chat_threads (group_slug, thread_key, codex_thread_id, created_at, updated_at)
         VALUES (@group, @thread, @codex, @at, @at)
         ON CONFLICT (group_slug, thread_key) DO UPDATE SET codex_thread_id = excluded.codex_thread_id, updated_at = excluded.updated_at
         RETURNING *`,
      ),
      touch: db.prepare<[Params], unknown>(
        `INSERT INTO chat_threads (group_slug, thread_key, created_at, updated_at, last_turn_at)
         VALUES (@group, @thread, @at, @at, @at)
         ON CONFLICT (group_slug, thread_key) DO UPDATE SET updated_at = excluded.updated_at, last_turn_at = excluded.last_turn_at
         RETURNING *`,
      ),
      reset: db.prepare<[Params], unknown>(
        `UPDATE chat_threads SET codex_thread_id = NULL, updated_at = @at WHERE group_slug = @group AND thread_key = @thread
         RETURNING *`,
      ),
      resetAll: db.prepare<[{ group: string; at: number }], number>(
        'UPDATE chat_threads SET codex_thread_id = NULL, updated_at = @at WHERE group_slug = @group AND codex_thread_id IS NOT NULL',
      ),
      latest: db.prepare<[string], unknown>('SELECT * FROM chat_threads WHERE group_slug = ? ORDER BY updated_at DESC, thread_key LIMIT 1'),
      countByGroup: db.prepare<[string], number>('SELECT count(*) FROM chat_threads WHERE group_slug = ?').pluck(),
    };
  }

  get(groupSlug: string, threadKey: string): ChatThread | undefined {
    const raw = this.stmts.get.get(groupSlug, threadKey);
    return raw === undefined ? undefined : this.read(groupSlug, threadKey, raw);
  }

  /** Records the Codex thread for a chat thread (creating the row if needed). */
  setCodexThread(groupSlug: string, threadKey: string, codexThreadId: string): ChatThread {
    return this.read(groupSlug, threadKey, this.stmts.setCodexThread.get({ ...this.params(groupSlug, threadKey), codex: codexThreadId }));
  }

  /** Marks a turn just now (creating the row if needed). */
  touch(groupSlug: string, threadKey: string): ChatThread {
    return this.read(groupSlug, threadKey, this.stmts.touch.get(this.params(groupSlug, threadKey)));
  }

  /** Forgets the Codex thread so the next message starts a fresh one. Undefined when no row exists. */
  reset(groupSlug: string, threadKey: string): ChatThread | undefined {
    const raw = this.stmts.reset.get(this.params(groupSlug, threadKey));
    return raw === undefined ? undefined : this.read(groupSlug, threadKey, raw);
  }

  /** Forgets every Codex thread of a group. Returns how many chat threads were reset. */
  resetAll(groupSlug: string): number {
    return this.stmts.resetAll.run({ group: groupSlug, at: this.now() }).changes;
  }

  /** The most recently active chat thread of a group. */
  latest(groupSlug: string): ChatThread | undefined {
    const raw = this.stmts.latest.get(groupSlug);
    return raw === undefined ? undefined : this.read(groupSlug, '(latest)', raw);
  }

  countByGroup(groupSlug: string): number {
    return this.stmts.countByGroup.get(groupSlug) ?? 0;
  }

  private params(group: string, thread: string): Params {
    return { group, thread, at: this.now() };
  }

  private read(groupSlug: string, threadKey: string, raw: unknown): ChatThread {
    return readRow(ChatThreadRowSchema, 'chat_threads', `group_slug=${groupSlug}, thread_key=${threadKey}`, raw);
  }
}
