/**
 * ArchiveService on a real SQLite store and real files in a temp dir; the chat platform is the
 * RecordingAdapter (uploads recorded per thread). No Docker: the container path is covered by
 * test/integration/archive.test.ts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseArchive } from '../../src/archive/archive-file.js';
import { ArchiveService, DAY_MS } from '../../src/archive/archive-service.js';
import type { ChatAdapter, ThreadTarget } from '../../src/chat/adapter.js';
import type { ArchivePolicy, Group, NewExchange } from '../../src/db/rows.js';
import { Store } from '../../src/db/store.js';
import { silentLogger } from '../../src/logger.js';
import { createRedactor } from '../../src/vault/redact.js';
import { RecordingAdapter } from '../helpers/recording-adapter.js';

const SENTINEL = 'archive-unit-sentinel-3f9a1c';
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

let dir: string;
let store: Store;
let adapter: RecordingAdapter;
let archive: ArchiveService;
let platformAdapter: ChatAdapter | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-archive-'));
  store = Store.open(dir);
  adapter = new RecordingAdapter('slack');
  platformAdapter = adapter;
  archive = new ArchiveService({
    store,
    dataDir: dir,
    adapterFor: () => platformAdapter,
    redact: createRedactor(() => [SENTINEL]),
    log: silentLogger(),
  });
});

afterEach(() => {
  archive.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function group(policy: ArchivePolicy = 'on-request', retentionDays: number | null = null): Group {
  const slug = `g-${policy}`;
  const existing = store.groups.bySlug(slug);
  if (existing) return store.groups.update(slug, { archivePolicy: policy, retentionDays });
  return store.groups.update(store.groups.create({ slug, chatKey: `slack:T:${slug}`, platform: 'slack', name: slug }).slug, { archivePolicy: policy, retentionDays });
}

const target = (threadKey = 't1'): ThreadTarget => ({ chatKey: 'slack:T:C', channelId: 'C', threadKey });

let turnSeq = 0;
function insert(g: Group, over: Partial<NewExchange> = {}) {
  turnSeq += 1;
  return store.exchanges.insert({
    groupSlug: g.slug,
    threadKey: 't1',
    codexThreadId: 'thr',
    codexTurnId: `turn-${turnSeq}`,
    platform: 'slack',
    userId: 'U1',
    prompt: `question ${turnSeq}`,
    items: [],
    answer: `answer ${turnSeq}`,
    status: 'completed',
    startedAt: NOW,
    completedAt: NOW + 500,
    ...over,
  });
}

const withCommand: NewExchange['items'] = [{ type: 'command', id: 'c', summary: 'ls', detail: 'a.txt', exitCode: 0, durationMs: 3, status: 'completed' }];

function archiveFiles(g: Group): string[] {
  const d = join(dir, 'groups', g.slug, 'archive');
  return existsSync(d) ? readdirSync(d).sort() : [];
}

function readArchive(g: Group, name: string) {
  return parseArchive(readFileSync(join(dir, 'groups', g.slug, 'archive', name), 'utf8'));
}

const settle = () => new Promise((r) => setTimeout(r, 50));

describe('writing', () => {
  it('appends each exchange to the thread file of its day, once', async () => {
    const g = group();
    const a = insert(g);
    const b = insert(g, { items: withCommand });
    await archive.onExchange(a.id, g, target());
    await archive.onExchange(b.id, g, target());
    await archive.onExchange(b.id, g, target()); // a retried turn is not archived twice
    expect(archiveFiles(g)).toEqual(['2026-11-25-t1.md']);
    const parsed = readArchive(g, '2026-11-25-t1.md');
    expect(parsed.problems).toEqual([]);
    expect(parsed.header).toContain(`Group \`${g.slug}\` · chat thread \`t1\` · 2026-11-25 (UTC)`);
    expect(parsed.entries.map((e) => e.id)).toEqual([a.id, b.id]);
    expect(parsed.entries[1]?.body).toContain('**Command** · exit code 0');
  });

  it('keeps every entry when exchanges of one thread finish at the same time', async () => {
    const g = group();
    const ids = Array.from({ length: 5 }, () => insert(g).id);
    await Promise.all(ids.map((id) => archive.onExchange(id, g, target())));
    const parsed = readArchive(g, '2026-11-25-t1.md');
    expect(parsed.problems).toEqual([]);
    expect(parsed.entries.map((e) => e.id).sort((x, y) => x - y)).toEqual(ids);
  });

  it('redacts again before writing (a secret that reached the row some other way)', async () => {
    const g = group();
    const e = insert(g, { prompt: `key ${SENTINEL}`, answer: `said ${SENTINEL}`, items: [{ ...withCommand[0]!, detail: SENTINEL }] });
    await archive.onExchange(e.id, g, target());
    const text = readFileSync(join(dir, 'groups', g.slug, 'archive', '2026-11-25-t1.md'), 'utf8');
    expect(text).not.toContain(SENTINEL);
    expect(text).toContain('[redacted]');
  });

  it('logs instead of throwing when the exchange is gone', () => {
    expect(() => archive.onExchange(99_999, group(), target())).not.toThrow();
  });
});

describe('posting after an exchange', () => {
  it.each<[ArchivePolicy, boolean, boolean]>([
    ['off', true, false],
    ['on-request', true, false],
    ['tool-activity', true, true],
    ['tool-activity', false, false],
    ['always', false, true],
  ])('%s with tool activity %s → upload %s', async (policy, tools, uploads) => {
    const g = group(policy);
    const e = insert(g, { items: tools ? withCommand : [] });
    await archive.onExchange(e.id, g, target());
    await settle();
    expect(adapter.uploads.length).toBe(uploads ? 1 : 0);
    if (uploads) {
      expect(adapter.uploads[0]?.threadKey).toBe('t1');
      expect(adapter.uploads[0]?.file.filename).toBe(`codex-exchange-${e.id}.md`);
      expect(String(adapter.uploads[0]?.file.content)).toContain(`question ${turnSeq}`);
    }
  });

  it('follows the stored policy when the caller holds an older copy of the group', async () => {
    const stale = group('on-request');
    store.groups.update(stale.slug, { archivePolicy: 'always' });
    await archive.onExchange(insert(stale).id, stale, target());
    await settle();
    expect(adapter.uploads).toHaveLength(1);
  });

  it('uploads only after the answer was delivered', async () => {
    const g = group('always');
    const e = insert(g);
    let deliver!: () => void;
    const delivered = new Promise<void>((r) => (deliver = r));
    archive.onExchange(e.id, g, target(), delivered);
    await settle();
    expect(adapter.uploads).toHaveLength(0);
    deliver();
    await settle();
    expect(adapter.uploads).toHaveLength(1);
  });

  it('posts a short note when the platform cannot take files', async () => {
    platformAdapter = withoutUpload(adapter);
    const g = group('tool-activity');
    const e = insert(g, { items: withCommand });
    await archive.onExchange(e.id, g, target());
    await settle();
    const texts = adapter.texts('t1');
    expect(texts).toHaveLength(1);
    expect(texts[0]).toContain('1 exchange, 1 command, 0 file changes');
    expect(texts[0]).toContain('2026-11-25-t1.md');
    expect(texts[0]!.length).toBeLessThan(300);
  });
});

describe('transcripts on request', () => {
  it('transcriptFor gives every exchange of the thread, redacted', async () => {
    const g = group();
    expect(archive.transcriptFor(g.slug, 't1')).toBeUndefined();
    insert(g, { prompt: `first ${SENTINEL}` });
    insert(g, { prompt: 'second' });
    insert(g, { threadKey: 'other', prompt: 'elsewhere' });
    const t = archive.transcriptFor(g.slug, 't1')!;
    expect(t.exchanges).toBe(2);
    expect(t.filename).toBe('codex-transcript-t1.md');
    expect(t.content.indexOf('first')).toBeLessThan(t.content.indexOf('second'));
    expect(t.content).not.toContain('elsewhere');
    expect(t.content).not.toContain(SENTINEL);
  });

  it.each<[ArchivePolicy, string]>([
    ['off', 'off'],
    ['on-request', 'uploaded'],
    ['tool-activity', 'uploaded'],
    ['always', 'uploaded'],
  ])('postTranscript under %s → %s', async (policy, status) => {
    const g = group(policy);
    insert(g);
    const result = await archive.postTranscript(g, target());
    expect(result.status).toBe(status);
    expect(adapter.uploads).toHaveLength(status === 'uploaded' ? 1 : 0);
  });

  it('postTranscript on an empty thread posts nothing', async () => {
    const result = await archive.postTranscript(group(), target('nothing-here'));
    expect(result.status).toBe('empty');
    expect(adapter.uploads).toHaveLength(0);
    expect(adapter.texts('nothing-here')).toEqual([]);
  });
});

describe('retention', () => {
  it('removes expired exchanges from SQLite and the files, keeps the rest', async () => {
    const g = group('on-request', 2);
    const keepForever = group('always', null);
    const old1 = insert(g, { startedAt: NOW - 5 * DAY_MS, completedAt: NOW - 5 * DAY_MS + 10 });
    const old2 = insert(g, { startedAt: NOW - 5 * DAY_MS + 20, completedAt: NOW - 5 * DAY_MS + 30 });
    // Started before the cutoff's day boundary test: same file holds one expired and one live entry.
    const mixedOld = insert(g, { threadKey: 't2', startedAt: NOW - 2 * DAY_MS - 1000, completedAt: NOW - 2 * DAY_MS - 500 });
    const mixedNew = insert(g, { threadKey: 't2', startedAt: NOW - 2 * DAY_MS + 1000, completedAt: NOW - 2 * DAY_MS + 2000 });
    const fresh = insert(g);
    const ancient = insert(keepForever, { startedAt: NOW - 400 * DAY_MS, completedAt: NOW - 400 * DAY_MS });
    for (const e of [old1, old2, mixedOld, mixedNew, fresh]) await archive.onExchange(e.id, g, target(e.threadKey));
    await archive.onExchange(ancient.id, keepForever, target());
    expect(archiveFiles(g)).toEqual(['2026-11-20-t1.md', '2026-11-23-t2.md', '2026-11-25-t1.md']);
    writeFileSync(join(dir, 'groups', g.slug, 'archive', '2026-11-25-t1.md.tmp-123-4'), 'half');

    const result = await archive.prune(NOW);

    expect(result).toEqual({ exchangesDeleted: 3, filesRewritten: 1, filesRemoved: 1 });
    expect(store.exchanges.byId(old1.id)).toBeUndefined();
    expect(store.exchanges.byId(mixedOld.id)).toBeUndefined();
    expect(store.exchanges.byId(mixedNew.id)).toBeDefined();
    expect(store.exchanges.byId(ancient.id)).toBeDefined();
    expect(archiveFiles(g)).toEqual(['2026-11-23-t2.md', '2026-11-25-t1.md']);
    const mixed = readArchive(g, '2026-11-23-t2.md');
    expect(mixed.problems).toEqual([]);
    expect(mixed.entries.map((e) => e.id)).toEqual([mixedNew.id]);
    expect(mixed.header).toContain('chat thread `t2`');
    expect(archiveFiles(keepForever)).toHaveLength(1);
    // Idempotent.
    expect(await archive.prune(NOW)).toEqual({ exchangesDeleted: 0, filesRewritten: 0, filesRemoved: 0 });
  });

  it('leaves an unreadable recent file alone but removes one whose every entry must have expired', async () => {
    const g = group('on-request', 1);
    const d = join(dir, 'groups', g.slug, 'archive');
    insert(g);
    await archive.onExchange(store.exchanges.listByThread(g.slug, 't1')[0]!.id, g, target());
    writeFileSync(join(d, '2026-11-24-hand.md'), 'edited by hand');
    writeFileSync(join(d, '2026-10-01-hand.md'), 'edited by hand');
    await archive.prune(NOW);
    expect(archiveFiles(g)).toEqual(['2026-11-24-hand.md', '2026-11-25-t1.md']);
  });
});

/** The same recording adapter, minus the optional `upload` capability. */
function withoutUpload(a: RecordingAdapter): ChatAdapter {
  return { platform: a.platform, maxMessageChars: a.maxMessageChars, post: a.post.bind(a), update: a.update.bind(a) };
}
