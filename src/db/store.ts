/**
 * The relay's SQLite store (better-sqlite3): `<DATA_DIR>/relay.sqlite` in WAL mode with foreign keys
 * on and a busy timeout, migrated on open. Repositories prepare their statements once and read every
 * row through its zod schema (rows.ts); a row that does not fit throws CorruptRowError.
 *
 * better-sqlite3 is synchronous: each call runs to completion before any other JavaScript, so a
 * method is atomic within this process; multi-step writes use IMMEDIATE transactions so they stay
 * atomic against a second process (e.g. the setup CLI) on the same file.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../logger.js';
import { AdminsRepo } from './admins.js';
import { ExchangesRepo } from './exchanges.js';
import { GroupsRepo } from './groups.js';
import { InboxRepo } from './inbox.js';
import { migrate } from './migrations.js';
import { BUILTIN_GROUP_DEFAULTS, GroupDefaultsSchema, type GroupDefaults } from './rows.js';
import { ThreadsRepo } from './threads.js';

export { CorruptRowError, ConflictError, IllegalTransitionError, InvalidInputError, NotFoundError, StoreError } from './errors.js';
export { canTransition } from './inbox.js';

export const DB_FILE_NAME = 'relay.sqlite';
const BUSY_TIMEOUT_MS = 5_000;

export interface StoreOptions {
  /** Settings for new groups (config `groupDefaults`); built-in defaults when omitted. */
  groupDefaults?: GroupDefaults;
  /** Clock in ms since epoch; tests pass a fake one. */
  now?: () => number;
}

export class Store {
  readonly groups: GroupsRepo;
  readonly threads: ThreadsRepo;
  readonly admins: AdminsRepo;
  readonly inbox: InboxRepo;
  readonly exchanges: ExchangesRepo;

  private constructor(
    /** The raw handle, for tests and maintenance; application code goes through the repositories. */
    readonly db: Database.Database,
    /** File path, or `:memory:`. */
    readonly path: string,
    options: StoreOptions,
  ) {
    const now = options.now ?? Date.now;
    const defaults = Object.freeze(GroupDefaultsSchema.parse(options.groupDefaults ?? BUILTIN_GROUP_DEFAULTS));
    this.groups = new GroupsRepo(db, defaults, now);
    this.threads = new ThreadsRepo(db, now);
    this.admins = new AdminsRepo(db, now);
    this.inbox = new InboxRepo(db, now);
    this.exchanges = new ExchangesRepo(db);
  }

  /**
   * Opens (creating when missing) `<dataDir>/relay.sqlite`, or an in-memory database for `:memory:`,
   * and applies pending migrations. A new data directory is created with mode 0700: it holds chat
   * messages and the vault. Throws when the file cannot be opened or migrated (MigrationError when it
   * was written by a newer relay); the handle is closed before throwing.
   */
  static open(dataDir: string, log?: Logger, options: StoreOptions = {}): Store {
    let path = ':memory:';
    if (dataDir !== ':memory:') {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      path = join(dataDir, DB_FILE_NAME);
    }
    const db = new Database(path);
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (path !== ':memory:' && mode !== 'wal') log?.warn({ path, mode }, 'SQLite refused WAL mode; continuing with %s', mode);
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Safe with WAL: a power loss may lose the last commits but never corrupts the file.
      db.pragma('synchronous = NORMAL');
      const applied = migrate(db);
      if (applied.length > 0) log?.info({ path, applied }, 'database migrated');
      return new Store(db, path, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Closes the database. Idempotent; never throws for an already closed store. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
