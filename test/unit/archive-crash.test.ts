/**
 * A process killed (SIGKILL) while it appends to an archive file leaves a file that parses with
 * every entry complete: appends are whole-file writes to a temp file renamed into place. A real
 * child process is killed at varying moments; nothing is mocked.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { parseArchive } from '../../src/archive/archive-file.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHILD = join(REPO, 'test/fixtures/archive-append-loop.ts');
const dir = mkdtempSync(join(tmpdir(), 'relay-archive-crash-'));
let seq = 0;
afterAll(() => {
  // How often a kill landed inside a write (a temp file was left behind); informative, not asserted.
  const temps = readdirSync(dir).filter((n) => n.includes('.md.tmp-')).length;
  process.stderr.write(`[archive-crash] ${temps} of ${seq} kills interrupted a write\n`);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the child until it has written one entry, then kills it: after `killAfterMs`, or (`'mid-write'`)
 * as soon as a temp file shows up in the directory, i.e. while an append is under way.
 */
async function appendUntilKilled(file: string, when: number | 'mid-write'): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
  try {
    await new Promise<void>((ready, fail) => {
      child.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && ready());
      child.once('exit', (code) => fail(new Error(`child exited early (${code}): ${stderr}`)));
    });
    if (when === 'mid-write') {
      const deadline = Date.now() + 10_000;
      const prefix = `${basename(file)}.tmp-`;
      while (!readdirSync(dirname(file)).some((n) => n.startsWith(prefix)) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    } else {
      await new Promise((r) => setTimeout(r, when));
    }
  } finally {
    child.kill('SIGKILL');
  }
  expect(await exited).toBe('SIGKILL');
}

it.each<number | 'mid-write'>([0, 37, 90, 155, 260, 410, 'mid-write', 'mid-write', 'mid-write'])(
  'a SIGKILL (%s ms) while appending leaves only complete entries',
  async (when) => {
    const file = join(dir, `2026-11-25-kill-${when}-${++seq}.md`);
    await appendUntilKilled(file, when);
    expect(existsSync(file)).toBe(true);
    const parsed = parseArchive(readFileSync(file, 'utf8'));
    expect(parsed.problems).toEqual([]);
    expect(parsed.entries.length).toBeGreaterThanOrEqual(1);
    parsed.entries.forEach((entry, i) => {
      expect(entry.id).toBe(i + 1);
      expect(entry.body.startsWith(`entry ${i + 1} begins\n`)).toBe(true);
      expect(entry.body.endsWith(`entry ${i + 1} ends\n`)).toBe(true);
    });
  },
  30_000,
);
