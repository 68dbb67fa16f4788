import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InboundMessage } from '../../src/core/inbound.js';
import { slugify } from '../../src/db/groups.js';
import { checkMigrationOrder, migrate, MigrationError, MIGRATIONS, schemaVersion } from '../../src/db/migrations.js';
import { BUILTIN_GROUP_DEFAULTS, SLUG_RE, type InboxStatus, type NewExchange } from '../../src/db/rows.js';
import {
  canTransition,
  ConflictError,
  CorruptRowError,
  IllegalTransitionError,
  InvalidInputError,
  NotFoundError,
  Store,
  StoreError,
} from '../../src/db/store.js';

let dir: string;
let clock: number;
const now = () => clock;
const open = () => Store.open(dir, undefined, { now });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-store-'));
  clock = 1_700_000_000_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function message(overrides: Partial<InboundMessage> = {}): InboundMessage {
  return {
    platform: 'slack',
    chatKey: 'slack:T1:C1',
    threadKey: '1700000000.000100',
    channelId: 'C1',
    userId: 'U1',
    userName: 'alice',
    text: 'hello codex',
    attachments: [],
    eventId: 'Ev001',
    ...overrides,
  };
}

function exchange(overrides: Partial<NewExchange> = {}): NewExchange {
  return {
    groupSlug: 'team-a',
    threadKey: 't1',
    codexThreadId: 'thr_1',
    codexTurnId: 'turn_1',
    platform: 'slack',
    userId: 'U1',
    prompt: 'list files',
    items: [
      { type: 'command', id: 'item_1', summary: 'ls -la', detail: 'total 0', exitCode: 0, durationMs: 12, status: 'completed' },
      { type: 'fileChange', id: 'item_2', summary: 'add README.md' },
    ],
    answer: 'Done.',
    status: 'completed',
    inputTokens: 100,
    outputTokens: 20,
    totalTokens: 120,
    startedAt: 1_000,
    completedAt: 1_750,
    ...overrides,
  };
}

describe('migrations', () => {
  it('versions are 1, 2, 3, … in order', () => {
    expect(() => checkMigrationOrder(MIGRATIONS)).not.toThrow();
    expect(() => checkMigrationOrder([{ version: 2, name: 'x', sql: '' }])).toThrow(MigrationError);
  });

  it('apply from empty, then a re-run applies nothing', () => {
    const db = new Database(join(dir, 'm.sqlite'));
    try {
      expect(schemaVersion(db)).toBe(0);
      expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(schemaVersion(db)).toBe(MIGRATIONS.length);
      expect(migrate(db)).toEqual([]);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['admins', 'chat_threads', 'exchanges', 'groups', 'inbox']);
      const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'").pluck().all();
      expect(indexes).toEqual(expect.arrayContaining(['inbox_status', 'exchanges_by_thread', 'exchanges_by_turn']));
    } finally {
      db.close();
    }
  });

  it('a failing migration rolls back entirely, version unchanged', () => {
    const db = new Database(':memory:');
    try {
      const broken = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE t (x); SELECT * FROM nope;' }];
      expect(() => migrate(db, broken)).toThrow(/no such table/);
      expect(schemaVersion(db)).toBe(MIGRATIONS.length);
      expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 't'").pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });

  it('refuses a database from a newer relay', () => {
    const db = new Database(join(dir, 'relay.sqlite'));
    db.pragma('user_version = 999');
    db.close();
    expect(() => open()).toThrow(/schema version 999 is newer/);
  });
});

describe('Store.open', () => {
  it('creates the data dir (0700) and relay.sqlite in WAL mode with foreign keys on', () => {
    const dataDir = join(dir, 'nested', 'data');
    const store = Store.open(dataDir);
    try {
      expect(store.path).toBe(join(dataDir, 'relay.sqlite'));
      expect(statSync(store.path).isFile()).toBe(true);
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(store.db.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0);
    } finally {
      store.close();
      store.close(); // idempotent
    }
  });

  it('opens an in-memory database', () => {
    const store = Store.open(':memory:');
    expect(store.groups.list()).toEqual([]);
    store.close();
  });

  it('data survives close and reopen', () => {
    let store = open();
    store.groups.create({ chatKey: 'slack:T1:C1', platform: 'slack', name: 'Team A' });
    const { row } = store.inbox.accept(message(), 'team-a');
    store.threads.setCodexThread('team-a', 't1', 'thr_1');
    store.exchanges.insert(exchange());
    store.close();

    store = open();
    try {
      expect(store.groups.bySlug('team-a')?.name).toBe('Team A');
      expect(store.inbox.byId(row.id)?.payload).toEqual(message());
      expect(store.threads.get('team-a', 't1')?.codexThreadId).toBe('thr_1');
      expect(store.exchanges.listByThread('team-a', 't1')).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});

describe('groups', () => {
  let store: Store;
  beforeEach(() => (store = open()));
  afterEach(() => store.close());

  it('create fills defaults and derives a slug from the name', () => {
    const g = store.groups.create({ chatKey: 'slack:T1:C1', platform: 'slack', name: 'Team Ä / Backend!' });
    expect(g).toEqual({
      slug: 'team-a-backend',
      chatKey: 'slack:T1:C1',
      platform: 'slack',
      name: 'Team Ä / Backend!',
      model: 'gpt-5.5',
      reasoningEffort: 'medium',
      instructions: '',
      sandboxMode: 'workspace-write',
      approvalPolicy: 'never',
      memoryMb: 2048,
      cpus: 1,
      pidsLimit: 512,
      idleTimeoutSec: 600,
      turnTimeoutSec: 900,
      egress: 'open',
      archivePolicy: 'on-request',
      retentionDays: null,
      allowedUsers: null,
      createdAt: clock,
      updatedAt: clock,
    });
    expect(store.groups.bySlug('team-a-backend')).toEqual(g);
    expect(store.groups.byChatKey('slack:T1:C1')).toEqual(g);
    expect(store.groups.bySlug('nope')).toBeUndefined();
  });

  it('takes defaults passed to Store.open, and explicit settings over them', () => {
    const custom = Store.open(':memory:', undefined, { groupDefaults: { ...BUILTIN_GROUP_DEFAULTS, model: 'o3', cpus: 2.5 } });
    try {
      expect(custom.groups.create({ chatKey: 'a', platform: 'local', name: 'a' })).toMatchObject({ model: 'o3', cpus: 2.5 });
      // An explicit undefined does not erase the default.
      const b = custom.groups.create({ chatKey: 'b', platform: 'discord', name: 'b', slug: 'bee', model: undefined, memoryMb: 4096, allowedUsers: ['U1'] });
      expect(b).toMatchObject({ slug: 'bee', model: 'o3', memoryMb: 4096, allowedUsers: ['U1'] });
    } finally {
      custom.close();
    }
  });

  it('refuses a second group for one chat, a taken slug, and bad settings', () => {
    store.groups.create({ chatKey: 'slack:T1:C1', platform: 'slack', name: 'A', slug: 'a' });
    expect(() => store.groups.create({ chatKey: 'slack:T1:C1', platform: 'slack', name: 'B' })).toThrow(ConflictError);
    expect(() => store.groups.create({ chatKey: 'slack:T1:C2', platform: 'slack', name: 'B', slug: 'a' })).toThrow(ConflictError);
    expect(() => store.groups.create({ chatKey: 'slack:T1:C3', platform: 'slack', name: 'C', slug: '../etc' })).toThrow(InvalidInputError);
    expect(() => store.groups.create({ chatKey: 'slack:T1:C3', platform: 'slack', name: 'C', memoryMb: 1 })).toThrow(/memoryMb/);
    expect(store.groups.list().map((g) => g.slug)).toEqual(['a']);
  });

  it('list returns groups oldest first', () => {
    store.groups.create({ chatKey: 'c1', platform: 'local', name: 'zulu' });
    clock += 1;
    store.groups.create({ chatKey: 'c2', platform: 'local', name: 'alpha' });
    expect(store.groups.list().map((g) => g.slug)).toEqual(['zulu', 'alpha']);
  });

  it('update changes only the given settings and bumps updatedAt', () => {
    const g = store.groups.create({ chatKey: 'c1', platform: 'local', name: 'Team' });
    clock += 5_000;
    const u = store.groups.update(g.slug, { model: 'o3', allowedUsers: ['U1', 'U2'], retentionDays: 30, instructions: 'Be brief.' });
    expect(u).toEqual({ ...g, model: 'o3', allowedUsers: ['U1', 'U2'], retentionDays: 30, instructions: 'Be brief.', updatedAt: clock });
    expect(store.groups.update(g.slug, { allowedUsers: null }).allowedUsers).toBeNull();
    expect(() => store.groups.update('missing', { model: 'o3' })).toThrow(NotFoundError);
    expect(() => store.groups.update(g.slug, { cpus: 0 })).toThrow(InvalidInputError);
    expect(() => store.groups.update(g.slug, { slug: 'other' } as never)).toThrow(InvalidInputError);
  });

  it('uniqueSlug slugifies and adds a numeric suffix', () => {
    expect(store.groups.uniqueSlug('Team A')).toBe('team-a');
    store.groups.create({ chatKey: 'c1', platform: 'local', name: 'Team A' });
    expect(store.groups.uniqueSlug('team a')).toBe('team-a-2');
    store.groups.create({ chatKey: 'c2', platform: 'local', name: 'Team A' });
    expect(store.groups.list().map((g) => g.slug)).toEqual(['team-a', 'team-a-2']);
    expect(store.groups.uniqueSlug('TEAM-A')).toBe('team-a-3');
  });

  it.each([
    ['Team A', 'team-a'],
    ['  --Hello__World--  ', 'hello-world'],
    ['Crème brûlée', 'creme-brulee'],
    ['日本語', 'group'],
    ['', 'group'],
    ['../../etc/passwd', 'etc-passwd'],
    ['a'.repeat(100), 'a'.repeat(48)],
  ])('slugify(%j) = %j', (input, expected) => {
    expect(slugify(input)).toBe(expected);
    expect(SLUG_RE.test(slugify(input))).toBe(true);
  });

  it('the database itself refuses a slug with path tricks', () => {
    expect(() =>
      store.db
        .prepare(
          `INSERT INTO groups (slug, chat_key, platform, name, model, reasoning_effort, sandbox_mode, approval_policy,
           memory_mb, cpus, pids_limit, idle_timeout_sec, turn_timeout_sec, created_at, updated_at)
           VALUES ('../x', 'k', 'local', 'n', 'm', 'low', 'read-only', 'never', 512, 1, 64, 60, 60, 0, 0)`,
        )
        .run(),
    ).toThrow(/CHECK constraint/);
  });
});

describe('threads', () => {
  let store: Store;
  beforeEach(() => {
    store = open();
    store.groups.create({ chatKey: 'c1', platform: 'local', name: 'team-a' });
  });
  afterEach(() => store.close());

  it('set, touch, reset and count', () => {
    expect(store.threads.get('team-a', 't1')).toBeUndefined();
    expect(store.threads.reset('team-a', 't1')).toBeUndefined();
    const created = store.threads.setCodexThread('team-a', 't1', 'thr_1');
    expect(created).toEqual({ groupSlug: 'team-a', threadKey: 't1', codexThreadId: 'thr_1', createdAt: clock, updatedAt: clock, lastTurnAt: null });

    clock += 10;
    expect(store.threads.touch('team-a', 't1')).toEqual({ ...created, updatedAt: clock, lastTurnAt: clock });
    clock += 10;
    expect(store.threads.setCodexThread('team-a', 't1', 'thr_2')).toMatchObject({ codexThreadId: 'thr_2', createdAt: created.createdAt, updatedAt: clock });
    expect(store.threads.reset('team-a', 't1')).toMatchObject({ codexThreadId: null });
    expect(store.threads.get('team-a', 't1')?.codexThreadId).toBeNull();

    expect(store.threads.touch('team-a', 't2')).toMatchObject({ codexThreadId: null, lastTurnAt: clock });
    expect(store.threads.countByGroup('team-a')).toBe(2);
    expect(store.threads.countByGroup('other')).toBe(0);
  });

  it('a thread needs an existing group (foreign key)', () => {
    expect(() => store.threads.setCodexThread('ghost', 't1', 'thr_1')).toThrow(/FOREIGN KEY/);
  });
});

describe('inbox', () => {
  let store: Store;
  beforeEach(() => {
    store = open();
    store.groups.create({ chatKey: 'slack:T1:C1', platform: 'slack', name: 'team-a' });
  });
  afterEach(() => store.close());

  it('accept stores the message with status received', () => {
    const { row, duplicate } = store.inbox.accept(message(), 'team-a');
    expect(duplicate).toBe(false);
    expect(row).toEqual({
      id: row.id,
      eventId: 'slack:Ev001',
      platform: 'slack',
      chatKey: 'slack:T1:C1',
      threadKey: '1700000000.000100',
      channelId: 'C1',
      groupSlug: 'team-a',
      userId: 'U1',
      userName: 'alice',
      text: 'hello codex',
      payload: message(),
      status: 'received',
      attempts: 0,
      error: null,
      codexTurnId: null,
      receivedAt: clock,
      updatedAt: clock,
    });
    expect(store.inbox.byId(row.id)).toEqual(row);
    expect(store.inbox.byEventId({ platform: 'slack', eventId: 'Ev001' })).toEqual(row);
    expect(store.inbox.byId(999)).toBeUndefined();
  });

  it('a redelivered event id is a duplicate and adds no row', () => {
    const first = store.inbox.accept(message(), 'team-a');
    store.inbox.markRunning(first.row.id);
    const again = store.inbox.accept(message({ text: 'changed on redelivery' }), 'team-a');
    expect(again.duplicate).toBe(true);
    expect(again.row.id).toBe(first.row.id);
    expect(again.row.text).toBe('hello codex');
    expect(again.row.status).toBe('running');
    expect(store.db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(1);
    // The same event id on another platform is a different event.
    expect(store.inbox.accept(message({ platform: 'discord' }), null).duplicate).toBe(false);
  });

  it('accept refuses a message that fails the inbound schema', () => {
    expect(() => store.inbox.accept(message({ eventId: '' }), null)).toThrow(InvalidInputError);
  });

  it('walks received → running → answered', () => {
    const { row } = store.inbox.accept(message(), 'team-a');
    clock += 1;
    expect(store.inbox.markRunning(row.id)).toMatchObject({ status: 'running', updatedAt: clock });
    expect(store.inbox.markAnswered(row.id, 'turn_1')).toMatchObject({ status: 'answered', codexTurnId: 'turn_1', error: null });
    expect(() => store.inbox.markRunning(row.id)).toThrow(IllegalTransitionError);
    expect(() => store.inbox.requeue(row.id)).toThrow(/cannot go from "answered" to "received"/);
  });

  it('requeue counts attempts and records the reason; failed is final', () => {
    const { row } = store.inbox.accept(message(), 'team-a');
    store.inbox.markRunning(row.id);
    expect(store.inbox.requeue(row.id, 'container died')).toMatchObject({ status: 'received', attempts: 1, error: 'container died' });
    store.inbox.markRunning(row.id);
    expect(store.inbox.requeue(row.id)).toMatchObject({ attempts: 2, error: 'container died' });
    store.inbox.markRunning(row.id);
    expect(store.inbox.markFailed(row.id, 'model unavailable')).toMatchObject({ status: 'failed', error: 'model unavailable', attempts: 2 });
    expect(() => store.inbox.markAnswered(row.id, 'turn_1')).toThrow(IllegalTransitionError);
  });

  it('illegal moves throw typed errors and leave the row unchanged', () => {
    const { row } = store.inbox.accept(message(), 'team-a');
    const err = (() => {
      try {
        store.inbox.markAnswered(row.id, 't');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IllegalTransitionError);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('illegal_transition');
    expect(store.inbox.byId(row.id)).toEqual(row);
    expect(() => store.inbox.markRunning(12345)).toThrow(NotFoundError);
  });

  it('unfinished returns received and running rows, oldest first', () => {
    const a = store.inbox.accept(message({ eventId: 'a' }), 'team-a').row;
    const b = store.inbox.accept(message({ eventId: 'b' }), 'team-a').row;
    const c = store.inbox.accept(message({ eventId: 'c' }), null).row;
    const d = store.inbox.accept(message({ eventId: 'd' }), 'team-a').row;
    store.inbox.markRunning(b.id);
    store.inbox.markRunning(c.id);
    store.inbox.markAnswered(c.id, null);
    store.inbox.markFailed(d.id, 'refused');
    expect(store.inbox.unfinished().map((r) => [r.id, r.status])).toEqual([
      [a.id, 'received'],
      [b.id, 'running'],
    ]);
  });
});

describe('canTransition', () => {
  const table: Array<[InboxStatus, InboxStatus, boolean]> = [
    ['received', 'received', false],
    ['received', 'running', true],
    ['received', 'answered', false],
    ['received', 'failed', true],
    ['running', 'received', true],
    ['running', 'running', false],
    ['running', 'answered', true],
    ['running', 'failed', true],
    ['answered', 'received', false],
    ['answered', 'running', false],
    ['answered', 'answered', false],
    ['answered', 'failed', false],
    ['failed', 'received', false],
    ['failed', 'running', false],
    ['failed', 'answered', false],
    ['failed', 'failed', false],
  ];
  it.each(table)('%s → %s: %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });
});

describe('exchanges', () => {
  let store: Store;
  beforeEach(() => {
    store = open();
    store.groups.create({ chatKey: 'c1', platform: 'slack', name: 'team-a' });
    store.groups.create({ chatKey: 'c2', platform: 'slack', name: 'team-b' });
  });
  afterEach(() => store.close());

  it('insert returns the stored record with items parsed and duration computed', () => {
    const { row } = store.inbox.accept(message(), 'team-a');
    const e = store.exchanges.insert(exchange({ inboxId: row.id }));
    expect(e).toEqual({
      id: e.id,
      groupSlug: 'team-a',
      threadKey: 't1',
      inboxId: row.id,
      codexThreadId: 'thr_1',
      codexTurnId: 'turn_1',
      platform: 'slack',
      userId: 'U1',
      prompt: 'list files',
      items: exchange().items,
      answer: 'Done.',
      status: 'completed',
      error: null,
      inputTokens: 100,
      outputTokens: 20,
      totalTokens: 120,
      startedAt: 1_000,
      completedAt: 1_750,
      durationMs: 750,
    });
  });

  it('archiving the same turn twice keeps the first record', () => {
    const first = store.exchanges.insert(exchange());
    const again = store.exchanges.insert(exchange({ answer: 'different' }));
    expect(again).toEqual(first);
    // Failures without a turn id are all kept.
    store.exchanges.insert(exchange({ codexTurnId: null, status: 'failed', answer: null, error: 'boom' }));
    store.exchanges.insert(exchange({ codexTurnId: null, status: 'failed', answer: null, error: 'boom' }));
    expect(store.exchanges.listByThread('team-a', 't1')).toHaveLength(3);
  });

  it('listByThread, lastByGroup and tokenTotals', () => {
    store.exchanges.insert(exchange({ codexTurnId: 'turn_2', startedAt: 2_000, completedAt: 2_500, totalTokens: 30, inputTokens: 20, outputTokens: 10 }));
    store.exchanges.insert(exchange({ codexTurnId: 'turn_1' }));
    store.exchanges.insert(exchange({ codexTurnId: 'turn_3', threadKey: 't2', startedAt: 3_000, completedAt: 3_100, inputTokens: null, outputTokens: null, totalTokens: null }));
    store.exchanges.insert(exchange({ groupSlug: 'team-b', codexTurnId: 'turn_9', totalTokens: 5000 }));

    expect(store.exchanges.listByThread('team-a', 't1').map((e) => e.codexTurnId)).toEqual(['turn_1', 'turn_2']);
    expect(store.exchanges.lastByGroup('team-a')?.codexTurnId).toBe('turn_3');
    expect(store.exchanges.lastByGroup('nobody')).toBeUndefined();
    expect(store.exchanges.tokenTotals('team-a')).toEqual({ exchanges: 3, inputTokens: 120, outputTokens: 30, totalTokens: 150 });
    expect(store.exchanges.tokenTotals('nobody')).toEqual({ exchanges: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0 });
  });

  it('refuses a malformed record before writing', () => {
    expect(() => store.exchanges.insert(exchange({ completedAt: 500 }))).toThrow(/completedAt is before startedAt/);
    expect(() => store.exchanges.insert(exchange({ items: [{ type: 'command' }] as never }))).toThrow(InvalidInputError);
    expect(store.exchanges.listByThread('team-a', 't1')).toEqual([]);
  });
});

describe('corrupt rows are refused, naming table and key', () => {
  let store: Store;
  beforeEach(() => {
    store = open();
    store.groups.create({ chatKey: 'c1', platform: 'local', name: 'team-a' });
  });
  afterEach(() => store.close());

  function caught(fn: () => unknown): CorruptRowError {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(CorruptRowError);
      return err as CorruptRowError;
    }
    throw new Error('expected CorruptRowError');
  }

  it('a JSON column that is not the right shape', () => {
    store.db.prepare(`UPDATE groups SET allowed_users = '{"not":"an array"}' WHERE slug = 'team-a'`).run();
    const err = caught(() => store.groups.bySlug('team-a'));
    expect(err.table).toBe('groups');
    expect(err.key).toBe('slug=team-a');
    expect(err.code).toBe('corrupt_row');
    expect(err.message).toMatch(/corrupt row in groups \(slug=team-a\): allowed_users/);
    caught(() => store.groups.list());
    caught(() => store.groups.update('team-a', { model: 'o3' }));
  });

  it('a JSON column that is not JSON', () => {
    const { row } = store.inbox.accept(message(), 'team-a');
    store.db.prepare(`UPDATE inbox SET payload = '{oops' WHERE id = ?`).run(row.id);
    const err = caught(() => store.inbox.byId(row.id));
    expect(err.message).toMatch(new RegExp(`inbox \\(id=${row.id}\\): payload: not valid JSON`));
    caught(() => store.inbox.unfinished());
    caught(() => store.inbox.accept(message(), 'team-a'));
  });

  it('a value the CHECK constraints would refuse, written with checks off', () => {
    const { row } = store.inbox.accept(message(), 'team-a');
    store.db.pragma('ignore_check_constraints = ON');
    store.db.prepare(`UPDATE inbox SET status = 'lost' WHERE id = ?`).run(row.id);
    store.db.pragma('ignore_check_constraints = OFF');
    expect(caught(() => store.inbox.byId(row.id)).message).toMatch(/status/);
    expect(caught(() => store.inbox.markRunning(row.id)).key).toBe(`id=${row.id}`);
  });

  it('an archived item without its fields', () => {
    const e = store.exchanges.insert(exchange());
    store.db.prepare(`UPDATE exchanges SET items = '[{"type":"command"}]' WHERE id = ?`).run(e.id);
    const err = caught(() => store.exchanges.listByThread('team-a', 't1'));
    expect(err.table).toBe('exchanges');
    expect(err.key).toBe(`id=${e.id}`);
    expect(err.message).toMatch(/items\.0\.id/);
  });
});
