/**
 * The exchange archive: after every turn, the exchange SQLite already holds is appended as
 * markdown to `groups/<slug>/archive/<YYYY-MM-DD>-<thread>.md`, and posted into its chat thread
 * when the group's policy says so (policy.ts). `/codex archive` uses `transcriptFor` /
 * `postTranscript`. Retention (`prune`) removes expired exchanges from SQLite and the files alike.
 *
 * Invariants:
 * - Nothing reaches a file or a chat unredacted: rows are redacted when they are stored
 *   (groups/exchange.ts) and everything is passed through `redact` again here, so a secret added to
 *   the vault later is still caught in what is written or posted from now on.
 * - SQLite is the source of truth; the files are a readable copy written from the stored row.
 * - A posted transcript follows the answer: posting waits for the answer's delivery to settle.
 * - `onExchange` never throws into the turn: archive trouble is logged, the chat answer stands.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChatAdapter, ThreadTarget } from '../chat/adapter.js';
import type { Platform } from '../core/inbound.js';
import { GROUP_LIMITS, type Exchange, type Group } from '../db/rows.js';
import type { Store } from '../db/store.js';
import { groupPaths } from '../groups/group-home.js';
import type { Logger } from '../logger.js';
import {
  appendEntry,
  archiveFileName,
  dateOfArchiveFile,
  ensureDir,
  listArchiveFiles,
  parseArchive,
  removeStaleTemps,
  sanitizeThreadKey,
  utcDate,
  writeArchiveAtomic,
} from './archive-file.js';
import { hadToolActivity, postAfterExchange, postOnRequest } from './policy.js';
import { escapeComments, renderExchange } from './render.js';

export const DAY_MS = 86_400_000;

export interface ArchiveServiceDeps {
  store: Store;
  dataDir: string;
  /** The adapter that posts into a group's platform; undefined when none is registered. */
  adapterFor: (platform: Platform) => ChatAdapter | undefined;
  redact: (text: string) => string;
  log: Logger;
}

/** A thread's transcript, ready to upload. */
export interface Transcript {
  filename: string;
  title: string;
  /** Markdown, redacted. */
  content: string;
  exchanges: number;
}

export type PostStatus = 'uploaded' | 'posted-note' | 'empty' | 'off' | 'no-adapter';

export interface PostResult {
  status: PostStatus;
  /** A one-line reply a command handler can post (for `empty`, `off`, `no-adapter` nothing was posted). */
  message: string;
}

export interface PruneResult {
  exchangesDeleted: number;
  filesRewritten: number;
  filesRemoved: number;
}

export class ArchiveService {
  private timer: NodeJS.Timeout | undefined;

  /** One write at a time per file: appends and retention rewrite read-modify-write whole files. */
  private readonly fileQueues = new Map<string, Promise<void>>();

  constructor(private readonly deps: ArchiveServiceDeps) {}

  /**
   * The GroupRuntime `onExchange` hook. The exchange is already in SQLite (the source of truth), so
   * the answer goes out first: the markdown file is written, and the transcript uploaded when the
   * policy says so, once `answerDelivered` settles — a file write with fsync never delays a reply.
   * The store is read now, not later, so a relay shutting down never reads a closed store.
   * Never rejects; the promise settles when the file is written (and any upload is done).
   */
  onExchange(exchangeId: number, group: Group, target: ThreadTarget, answerDelivered: Promise<unknown> = Promise.resolve()): Promise<void> {
    const log = this.deps.log.child({ group: group.slug, exchangeId });
    let exchange: Exchange | undefined;
    let post = false;
    try {
      exchange = this.deps.store.exchanges.byId(exchangeId);
      if (exchange) post = postAfterExchange(this.currentPolicy(group), exchange.items);
    } catch (err) {
      log.error({ err }, 'reading the exchange to archive failed');
      return Promise.resolve();
    }
    if (!exchange) {
      log.warn('archived exchange not found');
      return Promise.resolve();
    }
    const e = exchange;
    return answerDelivered
      .catch(() => undefined)
      .then(async () => {
        try {
          await this.record(e);
        } catch (err) {
          log.error({ err }, 'writing the archive file failed');
        }
        if (post) await this.postExchange(group, target, e);
      })
      .catch((err: unknown) => log.warn({ err }, 'posting the exchange transcript failed'));
  }

  /**
   * Appends one stored exchange to its thread's file for the day it started. Resolves with the file
   * path. Idempotent per exchange id. Rejects on I/O errors.
   */
  async record(exchange: Exchange): Promise<string> {
    const dir = groupPaths(this.deps.dataDir, exchange.groupSlug).archive;
    ensureDir(dir);
    const path = join(dir, archiveFileName(exchange.startedAt, exchange.threadKey));
    const header = this.fileHeader(exchange.groupSlug, exchange.threadKey, utcDate(exchange.startedAt));
    const body = `${this.render(exchange)}\n---\n`;
    await this.onFile(path, async () => {
      await appendEntry(path, header, { id: exchange.id, completedAt: exchange.completedAt }, body);
    });
    return path;
  }

  /** The whole transcript of a chat thread (every stored exchange, oldest first); undefined when there is none. */
  transcriptFor(groupSlug: string, threadKey: string): Transcript | undefined {
    const exchanges = this.deps.store.exchanges.listByThread(groupSlug, threadKey);
    if (exchanges.length === 0) return undefined;
    const r = this.deps.redact;
    const head = `# Codex transcript\n\nGroup \`${groupSlug}\` · chat thread \`${escapeComments(r(threadKey))}\` · ${exchanges.length} exchange${exchanges.length === 1 ? '' : 's'}\n\n---\n\n`;
    return {
      filename: `codex-transcript-${sanitizeThreadKey(threadKey)}.md`,
      title: `Codex transcript (${exchanges.length} exchange${exchanges.length === 1 ? '' : 's'})`,
      content: r(head + exchanges.map((e) => this.render(e)).join('\n---\n\n')),
      exchanges: exchanges.length,
    };
  }

  /**
   * `/codex archive`: uploads the thread's transcript into the thread (a short note when the
   * platform cannot take files). Posts nothing for `off`, an empty thread or a missing adapter;
   * the result's message says why. Throws ChatDeliveryError when the platform refuses.
   */
  async postTranscript(group: Group, target: ThreadTarget): Promise<PostResult> {
    if (!postOnRequest(group.archivePolicy)) return { status: 'off', message: 'Posting transcripts is turned off for this group (archive policy `off`).' };
    const transcript = this.transcriptFor(group.slug, target.threadKey);
    if (!transcript) return { status: 'empty', message: 'There is nothing archived in this thread yet.' };
    const adapter = this.deps.adapterFor(group.platform);
    if (!adapter) return { status: 'no-adapter', message: `No ${group.platform} adapter is running.` };
    if (adapter.upload) {
      await adapter.upload(target, { filename: transcript.filename, title: transcript.title, content: transcript.content });
      return { status: 'uploaded', message: `Uploaded the transcript of this thread (${transcript.exchanges} exchange${transcript.exchanges === 1 ? '' : 's'}).` };
    }
    const exchanges = this.deps.store.exchanges.listByThread(group.slug, target.threadKey);
    await adapter.post(target, this.noteText(group.slug, exchanges));
    return { status: 'posted-note', message: 'This chat cannot receive files; posted a summary note instead.' };
  }

  /**
   * Retention: for every group with `retentionDays`, deletes exchanges that completed more than
   * that many days before `now` from SQLite and from the markdown files (a file left empty is
   * removed). Also deletes temp files a crash left behind. Throws on SQLite errors; a file that
   * cannot be read back is logged and left alone unless every entry it could hold has expired.
   */
  async prune(now: number = Date.now()): Promise<PruneResult> {
    const result: PruneResult = { exchangesDeleted: 0, filesRewritten: 0, filesRemoved: 0 };
    for (const group of this.deps.store.groups.list()) {
      const dir = groupPaths(this.deps.dataDir, group.slug).archive;
      removeStaleTemps(dir);
      if (group.retentionDays === null) continue;
      const cutoff = now - group.retentionDays * DAY_MS;
      result.exchangesDeleted += this.deps.store.exchanges.deleteCompletedBefore(group.slug, cutoff);
      const cutoffDay = utcDate(cutoff);
      for (const name of listArchiveFiles(dir)) {
        const day = dateOfArchiveFile(name);
        // A file holds exchanges that started on its day, so one dated after the cutoff's day holds nothing expired.
        if (!day || day > cutoffDay) continue;
        const path = join(dir, name);
        await this.onFile(path, () => this.pruneFile(path, name, day, group.slug, cutoff, result));
      }
    }
    return result;
  }

  /** Retention for one archive file; runs in the file's write queue. */
  private async pruneFile(path: string, name: string, day: string, groupSlug: string, cutoff: number, result: PruneResult): Promise<void> {
    const parsed = parseArchive(readFileSync(path, 'utf8'));
    // The relay never writes a file without an entry, so one without any was changed by hand.
    if (parsed.problems.length > 0 || parsed.entries.length === 0) {
      // Unreadable: removable only once even the longest possible turn of its day has expired.
      const latestPossibleEnd = Date.parse(`${day}T00:00:00Z`) + DAY_MS + GROUP_LIMITS.turnTimeoutSec.max * 1000;
      if (latestPossibleEnd < cutoff) {
        rmSync(path, { force: true });
        result.filesRemoved++;
      } else {
        this.deps.log.warn({ group: groupSlug, file: name, problems: parsed.problems }, 'archive file is not readable; retention skipped it');
      }
      return;
    }
    const keep = parsed.entries.filter((e) => e.completedAt >= cutoff);
    if (keep.length === parsed.entries.length) return;
    if (keep.length === 0) {
      rmSync(path, { force: true });
      result.filesRemoved++;
    } else {
      await writeArchiveAtomic(path, parsed.header + keep.map((e) => e.raw).join(''));
      result.filesRewritten++;
    }
  }

  /** Runs `prune` now and then every `intervalMs` on an unref'd timer. Errors are logged. */
  startRetention(intervalMs: number = DAY_MS): void {
    this.close();
    const run = (): void => {
      this.prune().then(
        (r) => {
          if (r.exchangesDeleted || r.filesRemoved || r.filesRewritten) this.deps.log.info(r, 'archive retention pruned expired exchanges');
        },
        (err: unknown) => this.deps.log.error({ err }, 'archive retention failed'),
      );
    };
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  /** Stops the retention timer. Idempotent. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Runs `write` after every earlier write to `path` has settled. */
  private onFile(path: string, write: () => Promise<void>): Promise<void> {
    const next = (this.fileQueues.get(path) ?? Promise.resolve()).then(write, write);
    const settled = next.catch(() => undefined);
    this.fileQueues.set(path, settled);
    void settled.then(() => {
      if (this.fileQueues.get(path) === settled) this.fileQueues.delete(path);
    });
    return next;
  }

  private async postExchange(group: Group, target: ThreadTarget, exchange: Exchange): Promise<void> {
    const adapter = this.deps.adapterFor(group.platform);
    if (!adapter) return;
    const body = this.deps.redact(this.render(exchange));
    if (adapter.upload) {
      await adapter.upload(target, {
        filename: `codex-exchange-${exchange.id}.md`,
        title: `Codex transcript: ${describeActivity([exchange])}`,
        content: `# Codex transcript\n\n${body}`,
      });
    } else {
      await adapter.post(target, this.noteText(group.slug, [exchange]));
    }
  }

  /** The policy as stored now: a runtime's copy of the group can lag behind a settings change. */
  private currentPolicy(group: Group): Group['archivePolicy'] {
    try {
      return this.deps.store.groups.bySlug(group.slug)?.archivePolicy ?? group.archivePolicy;
    } catch {
      return group.archivePolicy;
    }
  }

  private render(exchange: Exchange): string {
    return renderExchange(exchange, { userName: this.userNameOf(exchange), redact: this.deps.redact });
  }

  private userNameOf(exchange: Exchange): string | null {
    if (exchange.inboxId === null) return null;
    try {
      return this.deps.store.inbox.byId(exchange.inboxId)?.userName ?? null;
    } catch {
      return null; // a display name is a nicety; a corrupt inbox row must not stop archiving
    }
  }

  private fileHeader(groupSlug: string, threadKey: string, day: string): string {
    return `# Codex Relay archive\n\nGroup \`${groupSlug}\` · chat thread \`${escapeComments(this.deps.redact(threadKey))}\` · ${day} (UTC)\n\n`;
  }

  /** The fallback when a platform cannot take files: what happened, and where the transcript is kept. */
  private noteText(groupSlug: string, exchanges: Exchange[]): string {
    const first = exchanges[0];
    const where = first ? `\`groups/${groupSlug}/archive/${archiveFileName(first.startedAt, first.threadKey)}\`` : 'the group archive';
    return `:page_facing_up: Transcript (${describeActivity(exchanges)}) is kept on the relay host in ${where}; this chat cannot receive files.`;
  }
}

/** `1 exchange, 2 commands, 1 file change`. Pure. */
export function describeActivity(exchanges: readonly Pick<Exchange, 'items'>[]): string {
  const items = exchanges.flatMap((e) => e.items);
  const commands = items.filter((i) => i.type === 'command').length;
  const files = items.filter((i) => i.type === 'fileChange').reduce((n, i) => n + Math.max(1, i.summary.split('\n').filter(Boolean).length), 0);
  const parts = [`${exchanges.length} exchange${exchanges.length === 1 ? '' : 's'}`];
  if (hadToolActivity(items)) {
    parts.push(`${commands} command${commands === 1 ? '' : 's'}`, `${files} file change${files === 1 ? '' : 's'}`);
  }
  return parts.join(', ');
}
