/**
 * Schema migrations, applied in order. `PRAGMA user_version` holds the last applied version; each
 * migration runs in its own transaction together with the version bump, so a crash leaves the
 * database either before or after a migration, never in between.
 *
 * Rules: never edit a shipped migration, append a new one. Versions start at 1 and increase by 1.
 * CHECK constraints mirror the zod row schemas so the database itself refuses impossible values;
 * JSON columns are validated on the way out (rows.ts), not by SQL.
 */
import type { Database } from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Slug rule as SQL: first char [a-z0-9], rest [a-z0-9-], 1–63 chars (same as SLUG_RE). */
const slugCheck = (col: string) =>
  `length(${col}) BETWEEN 1 AND 63 AND ${col} GLOB '[a-z0-9]*' AND ${col} NOT GLOB '*[^a-z0-9-]*'`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE groups (
        slug              TEXT PRIMARY KEY CHECK (${slugCheck('slug')}),
        chat_key          TEXT NOT NULL UNIQUE,
        platform          TEXT NOT NULL CHECK (platform IN ('slack', 'discord', 'local')),
        name              TEXT NOT NULL,
        model             TEXT NOT NULL,
        reasoning_effort  TEXT NOT NULL CHECK (reasoning_effort IN ('none', 'minimal', 'low', 'medium', 'high', 'xhigh')),
        instructions      TEXT NOT NULL DEFAULT '',
        sandbox_mode      TEXT NOT NULL CHECK (sandbox_mode IN ('read-only', 'workspace-write', 'danger-full-access')),
        approval_policy   TEXT NOT NULL CHECK (approval_policy IN ('untrusted', 'on-request', 'never')),
        memory_mb         INTEGER NOT NULL,
        cpus              REAL NOT NULL,
        pids_limit        INTEGER NOT NULL,
        idle_timeout_sec  INTEGER NOT NULL,
        turn_timeout_sec  INTEGER NOT NULL,
        egress            TEXT NOT NULL DEFAULT 'open' CHECK (egress IN ('open', 'locked')),
        archive_policy    TEXT NOT NULL DEFAULT 'on-request'
                          CHECK (archive_policy IN ('off', 'on-request', 'tool-activity', 'always')),
        retention_days    INTEGER,              -- NULL = keep forever
        allowed_users     TEXT,                 -- JSON array of user ids; NULL = everyone
        created_at        INTEGER NOT NULL,     -- ms since epoch
        updated_at        INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE chat_threads (
        group_slug        TEXT NOT NULL REFERENCES groups(slug) ON DELETE CASCADE,
        thread_key        TEXT NOT NULL,
        codex_thread_id   TEXT,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        last_turn_at      INTEGER,
        PRIMARY KEY (group_slug, thread_key)
      ) STRICT;

      CREATE TABLE inbox (
        id                INTEGER PRIMARY KEY,
        event_id          TEXT NOT NULL UNIQUE, -- platform || ':' || platform event id
        platform          TEXT NOT NULL CHECK (platform IN ('slack', 'discord', 'local')),
        chat_key          TEXT NOT NULL,
        thread_key        TEXT NOT NULL,
        channel_id        TEXT NOT NULL,
        group_slug        TEXT REFERENCES groups(slug) ON DELETE SET NULL,
        user_id           TEXT NOT NULL,
        user_name         TEXT,
        text              TEXT NOT NULL,
        payload           TEXT NOT NULL,        -- the full InboundMessage as JSON
        status            TEXT NOT NULL DEFAULT 'received'
                          CHECK (status IN ('received', 'running', 'answered', 'failed')),
        attempts          INTEGER NOT NULL DEFAULT 0,
        error             TEXT,
        codex_turn_id     TEXT,
        received_at       INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX inbox_status ON inbox(status, id);

      CREATE TABLE exchanges (
        id                INTEGER PRIMARY KEY,
        group_slug        TEXT NOT NULL REFERENCES groups(slug) ON DELETE CASCADE,
        thread_key        TEXT NOT NULL,
        inbox_id          INTEGER REFERENCES inbox(id) ON DELETE SET NULL,
        codex_thread_id   TEXT,
        codex_turn_id     TEXT,
        platform          TEXT NOT NULL CHECK (platform IN ('slack', 'discord', 'local')),
        user_id           TEXT NOT NULL,
        prompt            TEXT NOT NULL,
        items             TEXT NOT NULL DEFAULT '[]', -- JSON array of ArchivedItem
        answer            TEXT,
        status            TEXT NOT NULL CHECK (status IN ('completed', 'interrupted', 'failed')),
        error             TEXT,
        input_tokens      INTEGER,
        output_tokens     INTEGER,
        total_tokens      INTEGER,
        started_at        INTEGER NOT NULL,
        completed_at      INTEGER NOT NULL,
        duration_ms       INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX exchanges_by_thread ON exchanges(group_slug, thread_key, started_at);
      -- One exchange per Codex turn: archiving the same turn twice keeps the first record.
      CREATE UNIQUE INDEX exchanges_by_turn ON exchanges(group_slug, codex_turn_id)
        WHERE codex_turn_id IS NOT NULL;
    `,
  },
  {
    version: 2,
    name: 'relay admins',
    sql: `
      -- Owners and admins added at run time (the first person to complete setup pairing becomes
      -- owner when none is configured). Ids configured in env are not copied here.
      CREATE TABLE admins (
        user_key  TEXT PRIMARY KEY CHECK (user_key GLOB '[a-z]*:?*'),
        role      TEXT NOT NULL CHECK (role IN ('owner', 'admin')),
        added_by  TEXT,
        added_at  INTEGER NOT NULL
      ) STRICT;
    `,
  },
];

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

/** Throws MigrationError unless versions are 1, 2, 3, … in order (checked by a test and at run time). */
export function checkMigrationOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new MigrationError(`migration #${i} "${m.name}" has version ${m.version}, expected ${i + 1}`);
    }
  });
}

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies every pending migration, each in its own transaction. Returns the versions applied (empty
 * when up to date). Throws MigrationError when the database is newer than this code, so an old relay
 * never writes into a schema it does not know.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  checkMigrationOrder(migrations);
  const current = schemaVersion(db);
  const latest = migrations.length;
  if (current > latest) {
    throw new MigrationError(
      `database schema version ${current} is newer than this relay knows (${latest}); upgrade codex-relay or use another DATA_DIR`,
    );
  }
  const applied: number[] = [];
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      db.exec(m.sql);
      // user_version lives in the database header and is part of the transaction.
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    applied.push(m.version);
  }
  return applied;
}
