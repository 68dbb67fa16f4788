/**
 * Owners and admins added at run time. Env-configured ids (RELAY_OWNER_IDS / RELAY_ADMIN_IDS) are
 * not stored; the access policy combines both sources.
 */
import type { Database } from 'better-sqlite3';
import { z } from 'zod';
import { readRow } from './rows.js';

export const AdminRoleSchema = z.enum(['owner', 'admin']);
export type AdminRole = z.infer<typeof AdminRoleSchema>;

const AdminRowSchema = z
  .object({ user_key: z.string().min(3), role: AdminRoleSchema, added_by: z.string().nullable(), added_at: z.number().int() })
  .transform((r) => ({ userKey: r.user_key, role: r.role, addedBy: r.added_by, addedAt: r.added_at }));
export type AdminRow = z.output<typeof AdminRowSchema>;

export class AdminsRepo {
  private readonly stmts;

  constructor(
    db: Database,
    private readonly now: () => number,
  ) {
    this.stmts = {
      get: db.prepare<[string], unknown>('SELECT * FROM admins WHERE user_key = ?'),
      count: db.prepare<[], number>('SELECT count(*) FROM admins').pluck(),
      upsert: db.prepare<[{ key: string; role: AdminRole; by: string | null; at: number }], unknown>(
        `INSERT INTO admins (user_key, role, added_by, added_at) VALUES (@key, @role, @by, @at)
         ON CONFLICT (user_key) DO UPDATE SET role = excluded.role RETURNING *`,
      ),
    };
  }

  get(userKey: string): AdminRow | undefined {
    const raw = this.stmts.get.get(userKey);
    return raw === undefined ? undefined : readRow(AdminRowSchema, 'admins', userKey, raw);
  }

  count(): number {
    return this.stmts.count.get() ?? 0;
  }

  add(userKey: string, role: AdminRole, addedBy: string | null): AdminRow {
    return readRow(AdminRowSchema, 'admins', userKey, this.stmts.upsert.get({ key: userKey, role, by: addedBy, at: this.now() }));
  }
}
