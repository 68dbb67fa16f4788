/**
 * The markdown archive files: `groups/<slug>/archive/<YYYY-MM-DD>-<thread>.md`, one per chat thread
 * and UTC day, each a header followed by delimited entries:
 *
 *   <!-- codex-relay:exchange:begin id=12 completed=1795576214223 chars=1234 -->
 *   …exactly `chars` UTF-16 code units of markdown…
 *   <!-- codex-relay:exchange:end id=12 -->
 *
 * The length in the begin marker makes an entry self-checking: a parser knows whether it is
 * complete without trusting anything inside it (a prompt that contains a marker cannot end an
 * entry early). The markers are HTML comments, so a markdown viewer shows only the entries.
 *
 * Writes are whole-file and atomic: the new content goes to a temp file in the same directory,
 * is fsynced, then renamed over the old file. A crash at any point leaves either the old file or
 * the new one, never half an entry; at worst a stray `*.tmp-*` file, which `removeStaleTemps`
 * deletes. All I/O is synchronous on purpose: within this process no other write can interleave
 * with one that is under way.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface EntryMeta {
  /** The exchange id (SQLite). */
  id: number;
  /** When the exchange completed, ms since epoch; retention compares this. */
  completedAt: number;
}

export interface ParsedEntry extends EntryMeta {
  body: string;
  /** The entry exactly as stored, markers included. */
  raw: string;
}

export interface ParsedArchive {
  /** Everything before the first entry (the file header). */
  header: string;
  entries: ParsedEntry[];
  /** Empty when every byte after the header belongs to a complete entry. */
  problems: string[];
}

const BEGIN_RE = /<!-- codex-relay:exchange:begin id=(\d+) completed=(\d+) chars=(\d+) -->\n/y;
const BEGIN_PREFIX = '<!-- codex-relay:exchange:begin ';
const endMarker = (id: number) => `<!-- codex-relay:exchange:end id=${id} -->\n`;

/** One entry with its delimiters. Pure. */
export function entryBlock(meta: EntryMeta, body: string): string {
  return `${BEGIN_PREFIX}id=${meta.id} completed=${meta.completedAt} chars=${body.length} -->\n${body}${endMarker(meta.id)}`;
}

/** Splits an archive file into its header and entries; anything incomplete is reported, not guessed. Pure. */
export function parseArchive(text: string): ParsedArchive {
  const first = text.indexOf(BEGIN_PREFIX);
  const header = first === -1 ? text : text.slice(0, first);
  const entries: ParsedEntry[] = [];
  const problems: string[] = [];
  let pos = first === -1 ? text.length : first;
  while (pos < text.length) {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
    if (pos >= text.length) break;
    BEGIN_RE.lastIndex = pos;
    const m = BEGIN_RE.exec(text);
    if (!m) {
      problems.push(`offset ${pos}: expected an entry's begin marker`);
      break;
    }
    const id = Number(m[1]);
    const completedAt = Number(m[2]);
    const chars = Number(m[3]);
    const bodyStart = pos + m[0].length;
    const bodyEnd = bodyStart + chars;
    const end = endMarker(id);
    if (bodyEnd > text.length || !text.startsWith(end, bodyEnd)) {
      problems.push(`offset ${pos}: entry ${id} is incomplete (no end marker after ${chars} characters)`);
      break;
    }
    entries.push({ id, completedAt, body: text.slice(bodyStart, bodyEnd), raw: text.slice(pos, bodyEnd + end.length) });
    pos = bodyEnd + end.length;
  }
  return { header, entries, problems };
}

/** `2026-11-25` (UTC) of a timestamp. Pure. */
export function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * A chat thread key as a file-name part: `[A-Za-z0-9._-]` kept, anything else `_`, at most 80
 * characters. When that changed the key, a short hash of the original is appended, so two keys
 * can never share a file (`a/b` and `a_b`). Never starts with a dot. Pure.
 */
export function sanitizeThreadKey(threadKey: string): string {
  const safe = threadKey.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_').slice(0, 80);
  if (safe === threadKey && safe.length > 0) return safe;
  return `${safe}-${createHash('sha256').update(threadKey).digest('hex').slice(0, 8)}`;
}

/** `<YYYY-MM-DD>-<thread>.md`. Pure. */
export function archiveFileName(startedAtMs: number, threadKey: string): string {
  return `${utcDate(startedAtMs)}-${sanitizeThreadKey(threadKey)}.md`;
}

/** The `YYYY-MM-DD` an archive file name starts with, or undefined for other files. Pure. */
export function dateOfArchiveFile(name: string): string | undefined {
  return /^(\d{4}-\d{2}-\d{2})-.+\.md$/.exec(name)?.[1];
}

let tempSeq = 0;

/**
 * Writes `content` to `path` atomically (temp file, fsync, rename) without blocking the event loop.
 * Callers serialize writes per file. Rejects on I/O errors.
 */
export async function writeArchiveAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++tempSeq}`;
  try {
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Appends one entry to an archive file (created with `header` when missing). Returns false, and
 * writes nothing, when the file already holds an entry with that id (a retried exchange).
 * Throws on I/O errors.
 */
export async function appendEntry(path: string, header: string, meta: EntryMeta, body: string): Promise<boolean> {
  const existing = existsSync(path) ? await readFile(path, 'utf8') : header;
  if (existing.includes(`${BEGIN_PREFIX}id=${meta.id} `)) return false;
  await writeArchiveAtomic(path, existing + entryBlock(meta, body));
  return true;
}

/** The archive files (`*.md`) of a directory, sorted by name; [] when the directory is missing. */
export function listArchiveFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.md'))
    .sort();
}

/** Deletes temp files a crash left in `dir`. Returns how many. Never throws for a missing dir. */
export function removeStaleTemps(dir: string): number {
  if (!existsSync(dir)) return 0;
  let removed = 0;
  for (const name of readdirSync(dir)) {
    // This process's own temp files belong to writes still in flight.
    if (!/\.md\.tmp-\d+-\d+$/.test(name) || name.includes(`.tmp-${process.pid}-`)) continue;
    unlinkSync(join(dir, name));
    removed++;
  }
  return removed;
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}
