/**
 * Groups repository: one row per registered chat. New groups take the operator's defaults (env
 * `DEFAULT_*`, handed to Store.open) for anything the caller leaves out. Every write is validated
 * with the same zod rules the row is read back with, so the store never writes what it would refuse.
 */
import type { Database } from 'better-sqlite3';
import { z } from 'zod';
import { PlatformSchema } from '../core/inbound.js';
import { ConflictError, InvalidInputError, NotFoundError } from './errors.js';
import { GroupRowSchema, GroupSettingsSchema, readRow, SLUG_RE, type Group, type GroupDefaults } from './rows.js';

export const NewGroupSchema = GroupSettingsSchema.partial().extend({
  chatKey: z.string().min(1).max(200),
  platform: PlatformSchema,
  name: GroupSettingsSchema.shape.name,
  /** Omitted: derived from `name` with uniqueSlug(). */
  slug: z.string().regex(SLUG_RE, 'slug must be lowercase letters, digits and dashes (max 63)').optional(),
});
export type NewGroup = z.input<typeof NewGroupSchema>;

/** Any subset of the settings; slug, chat key and platform never change. */
export const GroupPatchSchema = GroupSettingsSchema.partial().strict();
export type GroupPatch = z.input<typeof GroupPatchSchema>;

/** Fixed defaults for settings the operator does not configure by env. */
const FIXED_DEFAULTS = { instructions: '', archivePolicy: 'on-request', retentionDays: null, allowedUsers: null } as const;

/** Lowercase, ASCII letters/digits/dashes, at most 48 chars; `group` when nothing is left. Pure. */
export function slugify(text: string): string {
  const slug = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 48)
    .replace(/-+$/, '');
  return slug || 'group';
}

type Row = Record<string, unknown>;
const COLUMNS = `slug, chat_key, platform, name, model, reasoning_effort, instructions, sandbox_mode, approval_policy,
  memory_mb, cpus, pids_limit, idle_timeout_sec, turn_timeout_sec, egress, archive_policy, retention_days,
  allowed_users, created_at, updated_at`;
const SETTERS = `name = @name, model = @model, reasoning_effort = @reasoning_effort, instructions = @instructions,
  sandbox_mode = @sandbox_mode, approval_policy = @approval_policy, memory_mb = @memory_mb, cpus = @cpus,
  pids_limit = @pids_limit, idle_timeout_sec = @idle_timeout_sec, turn_timeout_sec = @turn_timeout_sec,
  egress = @egress, archive_policy = @archive_policy, retention_days = @retention_days,
  allowed_users = @allowed_users, updated_at = @updated_at`;

export class GroupsRepo {
  private readonly stmts;

  constructor(
    private readonly db: Database,
    private readonly defaults: Readonly<GroupDefaults>,
    private readonly now: () => number,
  ) {
    this.stmts = {
      insert: db.prepare<[Row], unknown>(
        `INSERT INTO groups (${COLUMNS}) VALUES (@slug, @chat_key, @platform, @name, @model, @reasoning_effort,
          @instructions, @sandbox_mode, @approval_policy, @memory_mb, @cpus, @pids_limit, @idle_timeout_sec,
          @turn_timeout_sec, @egress, @archive_policy, @retention_days, @allowed_users, @created_at, @updated_at)
         RETURNING *`,
      ),
      update: db.prepare<[Row], unknown>(`UPDATE groups SET ${SETTERS} WHERE slug = @slug RETURNING *`),
      bySlug: db.prepare<[string], unknown>('SELECT * FROM groups WHERE slug = ?'),
      byChatKey: db.prepare<[string], unknown>('SELECT * FROM groups WHERE chat_key = ?'),
      list: db.prepare<[], unknown>('SELECT * FROM groups ORDER BY created_at, slug'),
      slugTaken: db.prepare<[string], unknown>('SELECT 1 FROM groups WHERE slug = ?'),
    };
  }

  /**
   * Registers a chat as a group. Throws InvalidInputError for a bad setting, ConflictError when the
   * chat or the explicit slug already has a group.
   */
  create(input: NewGroup): Group {
    const parsed = NewGroupSchema.safeParse(input);
    if (!parsed.success) throw new InvalidInputError('group', parsed.error.issues);
    const { chatKey, platform, slug: wantedSlug, ...settings } = parsed.data;
    return this.db
      .transaction((): Group => {
        if (this.stmts.byChatKey.get(chatKey)) throw new ConflictError(`chat ${chatKey} already has a group`);
        if (wantedSlug && this.stmts.slugTaken.get(wantedSlug)) throw new ConflictError(`group slug "${wantedSlug}" is taken`);
        const slug = wantedSlug ?? this.uniqueSlug(settings.name);
        const full = { ...FIXED_DEFAULTS, ...this.defaults, ...definedOnly(settings), name: settings.name };
        const at = this.now();
        const raw = this.stmts.insert.get({ ...toColumns(full), slug, chat_key: chatKey, platform, created_at: at, updated_at: at });
        return readRow(GroupRowSchema, 'groups', `slug=${slug}`, raw);
      })
      .immediate();
  }

  bySlug(slug: string): Group | undefined {
    const raw = this.stmts.bySlug.get(slug);
    return raw === undefined ? undefined : readRow(GroupRowSchema, 'groups', `slug=${slug}`, raw);
  }

  byChatKey(chatKey: string): Group | undefined {
    const raw = this.stmts.byChatKey.get(chatKey);
    return raw === undefined ? undefined : readRow(GroupRowSchema, 'groups', `chat_key=${chatKey}`, raw);
  }

  /** All groups, oldest first. One corrupt row fails the whole list (CorruptRowError). */
  list(): Group[] {
    return this.stmts.list.all().map((raw) => readRow(GroupRowSchema, 'groups', `slug=${slugOf(raw)}`, raw));
  }

  /** Changes settings. Throws InvalidInputError (bad or unknown key), NotFoundError (no such group). */
  update(slug: string, patch: GroupPatch): Group {
    const parsed = GroupPatchSchema.safeParse(patch);
    if (!parsed.success) throw new InvalidInputError('group settings', parsed.error.issues);
    return this.db
      .transaction((): Group => {
        const current = this.bySlug(slug);
        if (!current) throw new NotFoundError('groups', `slug=${slug}`);
        const next = { ...current, ...definedOnly(parsed.data) };
        const raw = this.stmts.update.get({ ...toColumns(next), slug, updated_at: this.now() });
        return readRow(GroupRowSchema, 'groups', `slug=${slug}`, raw);
      })
      .immediate();
  }

  /** A free slug derived from `base`: `team-a`, then `team-a-2`, `team-a-3`, … Never throws. */
  uniqueSlug(base: string): string {
    const root = slugify(base);
    if (!this.stmts.slugTaken.get(root)) return root;
    for (let n = 2; ; n++) {
      const suffix = `-${n}`;
      const candidate = `${root.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
      if (!this.stmts.slugTaken.get(candidate)) return candidate;
    }
  }
}

function toColumns(s: z.output<typeof GroupSettingsSchema>): Row {
  return {
    name: s.name,
    model: s.model,
    reasoning_effort: s.reasoningEffort,
    instructions: s.instructions,
    sandbox_mode: s.sandboxMode,
    approval_policy: s.approvalPolicy,
    memory_mb: s.memoryMb,
    cpus: s.cpus,
    pids_limit: s.pidsLimit,
    idle_timeout_sec: s.idleTimeoutSec,
    turn_timeout_sec: s.turnTimeoutSec,
    egress: s.egress,
    archive_policy: s.archivePolicy,
    retention_days: s.retentionDays,
    allowed_users: s.allowedUsers === null ? null : JSON.stringify(s.allowedUsers),
  };
}

/** Drops keys whose value is undefined, so `{ model: undefined }` does not erase a default. */
function definedOnly<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function slugOf(raw: unknown): string {
  return typeof raw === 'object' && raw !== null && 'slug' in raw ? String(raw.slug) : '?';
}
