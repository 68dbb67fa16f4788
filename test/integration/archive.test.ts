/**
 * The exchange archive and AGENTS.md on real parts: router → group runtime → Docker container
 * running the pinned codex app-server → credential proxy → fake Responses API; the archive writes
 * SQLite and markdown files and uploads through the ChatAdapter seam (RecordingAdapter). Only the
 * model API is a stand-in.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RelayApp } from '../../src/app.js';
import { archiveFileName, parseArchive } from '../../src/archive/archive-file.js';
import { LABEL_GROUP, LABEL_INSTANCE } from '../../src/containers/docker-runtime.js';
import type { Exchange, Group, GroupSettings } from '../../src/db/rows.js';
import { AGENTS_MD_CAP_BYTES } from '../../src/groups/instructions.js';
import { inputItems, messageTexts, reply, type FakeResponses, type RecordedRequest } from '../fakes/fake-responses.js';
import { describeDocker, testDocker } from '../helpers/docker.js';
import { answered, type RecordingAdapter } from '../helpers/recording-adapter.js';
import { startRelayHarness, type RelayHarness } from '../helpers/relay-harness.js';

// Not shaped like an API key, so only the vault-value rule of the redactor can catch it.
const SENTINEL = 'relayarchivesentinel7c1d9e2b';
describeDocker('exchange archive and AGENTS.md through Docker', () => {
  let h: RelayHarness;
  let fake: FakeResponses;
  let app: RelayApp;
  let adapter: RecordingAdapter;
  let dataDir: string;
  const docker = testDocker();

  beforeAll(async () => {
    // The vault's value is the secret the redactor must find; the fake model ignores the key.
    h = await startRelayHarness({ name: 'archive', vaultKey: SENTINEL, logLevel: 'warn' });
    ({ fake, app, adapter, dataDir } = h);
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
  });

  const group = (slug: string, settings: Partial<GroupSettings> = {}): Group => h.group(slug, settings);

  function send(g: Group, threadKey: string, text: string): void {
    expect(app.router.accept(h.message(g, threadKey, text)).status).toBe('accepted');
  }

  async function exchangeOf(g: Group, threadKey: string, count = 1): Promise<Exchange> {
    await waitUntil(() => app.store.exchanges.listByThread(g.slug, threadKey).length >= count);
    return app.store.exchanges.listByThread(g.slug, threadKey)[count - 1]!;
  }

  /** The thread's markdown file once it holds exchange `e` (written right after the answer is delivered). */
  async function archiveText(g: Group, e: Exchange): Promise<string> {
    const path = join(dataDir, 'groups', g.slug, 'archive', archiveFileName(e.startedAt, e.threadKey));
    await waitUntil(() => existsSync(path) && parseArchive(readFileSync(path, 'utf8')).entries.some((entry) => entry.id === e.id));
    return readFileSync(path, 'utf8');
  }

  function exchangeRowsJson(slug: string): string {
    return JSON.stringify(app.store.db.prepare('SELECT * FROM exchanges WHERE group_slug = ?').all(slug));
  }

  async function containersOf(slug: string): Promise<string[]> {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_GROUP}=${slug}`, `${LABEL_INSTANCE}=${h.instance}`] } });
    return list.map((c) => c.Id);
  }

  /**
   * Model script for "tool work": a shell command that writes proof.txt and prints the sentinel
   * (assembled by printf, so it appears in the output but not in the command), then an apply_patch
   * that adds notes.md (gpt-5.5 gets that tool), then a text answer.
   */
  function scriptToolWork(trigger: string): void {
    fake.script((req) => {
      const last = inputItems(req.body).at(-1);
      const users = messageTexts(req.body, 'user').join('\n');
      if (!users.includes(trigger)) return undefined;
      if (last?.type === 'function_call_output') {
        return reply.applyPatch('*** Begin Patch\n*** Add File: /workspace/notes.md\n+notes from codex\n+second line\n*** End Patch\n');
      }
      if (last?.type === 'custom_tool_call_output') return reply.text('All done: wrote proof.txt and notes.md.');
      const half = SENTINEL.length / 2;
      return reply.shellCall(`echo made-in-container > proof.txt && printf '%s%s\\n' ${SENTINEL.slice(0, half)} ${SENTINEL.slice(half)}`);
    });
  }

  it('archives a tool turn (command, exit code, changed path, answer) to SQLite and markdown, redacted, and uploads it under tool-activity', async () => {
    const g = group('arch-tools', { model: 'gpt-5.5', archivePolicy: 'tool-activity' });
    scriptToolWork('please write files');
    try {
      send(g, 'w1', `please write files; the password is ${SENTINEL}`);
      await adapter.waitFor('w1', answered('All done'));
      const e = await exchangeOf(g, 'w1');

      // SQLite row.
      expect(e.status).toBe('completed');
      expect(e.answer).toBe('All done: wrote proof.txt and notes.md.');
      const command = e.items.find((i) => i.type === 'command');
      expect(command?.summary).toContain('proof.txt');
      expect(command?.exitCode).toBe(0);
      expect(command?.detail).toContain('[redacted]');
      const change = e.items.find((i) => i.type === 'fileChange');
      expect(change?.summary).toBe('add /workspace/notes.md (+2 −0)');
      expect(e.prompt).toBe('please write files; the password is [redacted]');
      expect(exchangeRowsJson(g.slug)).not.toContain(SENTINEL);
      expect(readFileSync(join(dataDir, 'groups', g.slug, 'workspace', 'notes.md'), 'utf8')).toBe('notes from codex\nsecond line\n');

      // Markdown file: one complete entry with everything in it.
      const text = await archiveText(g, e);
      const parsed = parseArchive(text);
      expect(parsed.problems).toEqual([]);
      expect(parsed.entries.map((x) => x.id)).toEqual([e.id]);
      const body = parsed.entries[0]!.body;
      expect(body).toContain('alice (U1) · completed');
      expect(body).toMatch(/\*\*Command\*\* · exit code 0/);
      expect(body).toContain('echo made-in-container > proof.txt');
      expect(body).toContain('- add /workspace/notes.md (+2 −0)');
      expect(body).toContain('All done: wrote proof.txt and notes.md.');
      expect(body.indexOf('**Command**')).toBeLessThan(body.indexOf('**Files changed**'));
      expect(text).not.toContain(SENTINEL);
      expect(text).toContain('[redacted]');

      // tool-activity: the exchange's transcript is uploaded into the same thread.
      await waitUntil(() => adapter.uploads.some((u) => u.threadKey === 'w1'));
      const upload = adapter.uploads.find((u) => u.threadKey === 'w1')!;
      const content = String(upload.file.content);
      expect(upload.file.filename).toBe(`codex-exchange-${e.id}.md`);
      expect(content).toContain('echo made-in-container > proof.txt');
      expect(content).toContain('/workspace/notes.md');
      expect(content).not.toContain(SENTINEL);
    } finally {
      fake.script(() => undefined);
    }
  });

  it('archives a failed turn as failed with its error', async () => {
    const g = group('arch-fail');
    fake.script((req) =>
      messageTexts(req.body, 'user').at(-1)?.includes('this will fail')
        ? reply.error(400, { error: { message: 'mock refused the request (400)', type: 'invalid_request_error', code: null } })
        : undefined,
    );
    try {
      send(g, 'f1', 'this will fail');
      await adapter.waitFor('f1', (t) => t.some((x) => x.startsWith(':warning:')));
      const e = await exchangeOf(g, 'f1');
      expect(e.status).toBe('failed');
      expect(e.error).toContain('mock refused the request (400)');
      const parsed = parseArchive(await archiveText(g, e));
      expect(parsed.problems).toEqual([]);
      expect(parsed.entries[0]?.body).toContain('· failed');
      expect(parsed.entries[0]?.body).toContain('**Error:**');
      expect(parsed.entries[0]?.body).toContain('mock refused the request (400)');
      expect(adapter.uploads.filter((u) => u.threadKey === 'f1')).toHaveLength(0); // on-request: nothing posted
    } finally {
      fake.script(() => undefined);
    }
  });

  it('on-request (the default) uploads nothing by itself, and posts the transcript when asked', async () => {
    const g = group('arch-onreq', { model: 'gpt-5.5' });
    expect(g.archivePolicy).toBe('on-request');
    scriptToolWork('on request tools');
    try {
      send(g, 'o1', `on request tools ${SENTINEL}`);
      await adapter.waitFor('o1', answered('All done'));
      await exchangeOf(g, 'o1');
      await new Promise((r) => setTimeout(r, 1000));
      expect(adapter.uploads.filter((u) => u.threadKey === 'o1')).toHaveLength(0);

      // What `/codex archive` does.
      const result = await app.archive.postTranscript(g, { chatKey: g.chatKey, channelId: g.slug, threadKey: 'o1' });
      expect(result.status).toBe('uploaded');
      const upload = adapter.uploads.find((u) => u.threadKey === 'o1')!;
      expect(upload.file.filename).toBe('codex-transcript-o1.md');
      expect(String(upload.file.content)).toContain('echo made-in-container > proof.txt');
      expect(String(upload.file.content)).not.toContain(SENTINEL);
    } finally {
      fake.script(() => undefined);
    }
  });

  it("puts the group's instructions in the request Codex sends, and a change applies on the next turn of a running thread", async () => {
    const g = group('arch-agents', { instructions: 'GROUP-MARKER-ONE: always answer in haiku.' });
    const before = fake.requests.length;
    send(g, 'a1', 'first question');
    await adapter.waitFor('a1', answered('first question'));
    const first = lastRequestWith(fake.requests.slice(before), 'first question');
    const firstDocs = agentsMessages(first);
    expect(firstDocs).toHaveLength(1);
    expect(firstDocs[0]).toContain('GROUP-MARKER-ONE: always answer in haiku.');
    expect(firstDocs[0]).toContain('## Instructions for this group');
    const [container] = await containersOf(g.slug);

    // `/codex instructions set`: store the row, then rewrite AGENTS.md now.
    const updated = app.store.groups.update(g.slug, { instructions: 'GROUP-MARKER-TWO: answer in limericks.' });
    app.runtimes.applyInstructions(updated);
    const mark = fake.requests.length;
    send(g, 'a1', 'second question');
    await adapter.waitFor('a1', answered('second question'));
    const second = lastRequestWith(fake.requests.slice(mark), 'second question');
    const secondDocs = agentsMessages(second);
    // The thread keeps its history (old instructions included) and gets the new ones, marked as replacing them.
    expect(secondDocs.at(-1)).toContain('GROUP-MARKER-TWO: answer in limericks.');
    expect(secondDocs.at(-1)).toContain('replace all previously provided AGENTS.md instructions');
    expect(messageTexts(second.body, 'user').join('\n')).toContain('first question');
    // Same container: no restart was needed.
    expect(await containersOf(g.slug)).toEqual([container]);

    // A new thread in the same container sees only the new instructions.
    const mark2 = fake.requests.length;
    send(g, 'a2', 'new thread question');
    await adapter.waitFor('a2', answered('new thread question'));
    const fresh = agentsMessages(lastRequestWith(fake.requests.slice(mark2), 'new thread question'));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toContain('GROUP-MARKER-TWO');
    expect(fresh[0]).not.toContain('GROUP-MARKER-ONE');

    // The path the command handler takes (store update, then GroupRuntime.updateGroup) applies too.
    app.runtimes.find(g.slug)!.updateGroup(app.store.groups.update(g.slug, { instructions: 'GROUP-MARKER-THREE: be brief.' }));
    const mark3 = fake.requests.length;
    send(g, 'a1', 'third question');
    await adapter.waitFor('a1', answered('third question'));
    expect(agentsMessages(lastRequestWith(fake.requests.slice(mark3), 'third question')).at(-1)).toContain('GROUP-MARKER-THREE: be brief.');
  });

  it('caps AGENTS.md at 32 KiB with a visible marker, and Codex receives the capped text', async () => {
    const g = group('arch-cap', { instructions: `CAP-HEAD-MARKER\n${'é'.repeat(16_300)}\nCAP-TAIL-MARKER` });
    const before = fake.requests.length;
    send(g, 'c1', 'capped question');
    await adapter.waitFor('c1', answered('capped question'));
    const path = join(dataDir, 'groups', g.slug, 'codex-home', 'AGENTS.md');
    expect(statSync(path).size).toBeLessThanOrEqual(AGENTS_MD_CAP_BYTES);
    const onDisk = readFileSync(path, 'utf8');
    expect(onDisk).toContain('instructions cut here');
    expect(onDisk).not.toContain('CAP-TAIL-MARKER');
    const [doc] = agentsMessages(lastRequestWith(fake.requests.slice(before), 'capped question'));
    expect(doc).toContain('CAP-HEAD-MARKER');
    expect(doc).toContain('instructions cut here');
    expect(doc).not.toContain('CAP-TAIL-MARKER');
  });
}, { agentImage: 'build' });

/** The AGENTS.md user messages of a model request (APP-SERVER-NOTES §6.7), in order. */
function agentsMessages(req: RecordedRequest): string[] {
  return messageTexts(req.body, 'user').filter((t) => t.startsWith('# AGENTS.md instructions'));
}

function lastRequestWith(requests: RecordedRequest[], text: string): RecordedRequest {
  const found = requests.filter((r) => r.method === 'POST' && messageTexts(r.body, 'user').some((t) => t.includes(text))).at(-1);
  if (!found) throw new Error(`no model request carried ${JSON.stringify(text)}`);
  return found;
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
