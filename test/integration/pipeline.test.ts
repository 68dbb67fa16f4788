/**
 * The whole path of a message on real parts: router → SQLite inbox → group runtime → Docker
 * container running the pinned codex app-server → credential proxy → fake Responses API, and the
 * answer back through the ChatAdapter seam. Only the model API is a stand-in.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RelayApp } from '../../src/app.js';
import type { Group } from '../../src/db/rows.js';
import { createLogger } from '../../src/logger.js';
import { messageTexts, reply, type FakeResponses } from '../fakes/fake-responses.js';
import { describeDocker, testDocker } from '../helpers/docker.js';
import { answered, type RecordingAdapter } from '../helpers/recording-adapter.js';
import { startRelayHarness, type RelayHarness } from '../helpers/relay-harness.js';
import { LABEL_GROUP, LABEL_INSTANCE } from '../../src/containers/docker-runtime.js';

const REAL_KEY = 'sk-test-pipeline-SENTINEL-9f8e7d6c5b4a';

describeDocker('core pipeline through Docker', () => {
  let h: RelayHarness;
  let fake: FakeResponses;
  let app: RelayApp;
  let adapter: RecordingAdapter;
  let dataDir: string;
  let logLines: string[];
  const docker = testDocker();

  beforeAll(async () => {
    h = await startRelayHarness({ name: 'pipeline', vaultKey: REAL_KEY });
    ({ fake, app, adapter, dataDir, logLines } = h);
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
  });

  const group = (slug: string, settings: Partial<Pick<Group, 'turnTimeoutSec' | 'idleTimeoutSec'>> = {}): Group => h.group(slug, settings);
  const message = (g: Group, threadKey: string, text: string) => h.message(g, threadKey, text);

  async function containersOf(slug: string): Promise<string[]> {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_GROUP}=${slug}`, `${LABEL_INSTANCE}=${h.instance}`] } });
    return list.map((c) => c.Id);
  }

  it('answers two chat threads of one group from one container with two Codex threads', async () => {
    const g = group('two-threads');
    expect(app.router.accept(message(g, 't1', 'hello one')).status).toBe('accepted');
    expect(app.router.accept(message(g, 't2', 'hello two')).status).toBe('accepted');
    await adapter.waitFor('t1', answered('echo: alice: hello one'));
    await adapter.waitFor('t2', answered('echo: alice: hello two'));
    expect(await containersOf(g.slug)).toHaveLength(1);
    const a = app.store.threads.get(g.slug, 't1')?.codexThreadId;
    const b = app.store.threads.get(g.slug, 't2')?.codexThreadId;
    expect(a).toBeTruthy();
    expect(b).toBeTruthy();
    expect(a).not.toBe(b);
  });

  it('runs a shell command inside the container and writes into the group workspace', async () => {
    const g = group('tools');
    fake.script((req) => {
      const last = (req.body as { input?: Array<{ type?: string }> }).input?.at(-1);
      if (last?.type === 'function_call_output') return undefined; // default: "tool finished: <output>"
      return reply.shellCall('echo made-in-container > proof.txt && cat proof.txt && id -u');
    });
    try {
      app.router.accept(message(g, 'w1', 'please write a file'));
      const texts = await adapter.waitFor('w1', answered('tool finished'));
      expect(texts.join('\n')).toContain('made-in-container');
      const proof = readFileSync(join(dataDir, 'groups', g.slug, 'workspace', 'proof.txt'), 'utf8');
      expect(proof.trim()).toBe('made-in-container');
      const exchange = app.store.exchanges.listByThread(g.slug, 'w1').at(-1)!;
      const command = exchange.items.find((i) => i.type === 'command');
      expect(command?.exitCode).toBe(0);
      expect(command?.summary).toContain('proof.txt');
    } finally {
      fake.script(() => undefined);
    }
  });

  it('gives Codex shared files: images as image input, other files in the workspace', async () => {
    // A catalog model: codex drops images for models whose metadata it does not know (gpt-test).
    const g = app.store.groups.update(group('files').slug, { model: 'gpt-5.5' });
    const png = tinyPng();
    adapter.files.set('https://files.example/pixel.png', png);
    adapter.files.set('https://files.example/notes.txt', Buffer.from('line one\n'));
    const before = fake.requests.length;
    const sent = message(g, 'a1', 'look at these');
    app.router.accept({
      ...sent,
      attachments: [
        { name: 'pixel.png', url: 'https://files.example/pixel.png', mimeType: 'image/png', sizeBytes: png.length },
        { name: '../notes.txt', url: 'https://files.example/notes.txt', mimeType: 'text/plain', sizeBytes: 9 },
        { name: 'missing.bin', url: 'https://files.example/missing.bin', mimeType: 'application/octet-stream', sizeBytes: 3 },
      ],
    });
    await adapter.waitFor('a1', answered('look at these'), 15_000);
    const request = JSON.stringify(fake.requests.slice(before).at(-1)?.body);
    expect(request).toContain('data:image/png;base64');
    expect(request).toContain('/workspace/.chat-attachments/');
    expect(request).toContain('notes.txt (text/plain)');
    expect(request).toContain('missing.bin: download failed');
    const inboxId = app.store.inbox.byEventId({ platform: 'local', eventId: sent.eventId })!.id;
    const saved = readFileSync(join(dataDir, 'groups', g.slug, 'workspace', '.chat-attachments', String(inboxId), '_notes.txt'), 'utf8');
    expect(saved).toBe('line one\n');
  });

  it('asks the adapter for earlier thread messages on the first turn of a mid-thread mention', async () => {
    const g = group('context');
    adapter.contexts.set('msg-77', [{ userName: 'bob', text: 'CI broke after the upgrade' }]);
    const before = fake.requests.length;
    app.router.accept({ ...message(g, 'ctx1', 'can you look?'), contextBefore: 'msg-77' });
    await adapter.waitFor('ctx1', answered('can you look?'));
    expect(JSON.stringify(fake.requests.slice(before).at(-1)?.body)).toContain('bob: CI broke after the upgrade');
    app.router.accept({ ...message(g, 'ctx1', 'and now?'), contextBefore: 'msg-78' });
    await adapter.waitFor('ctx1', answered('and now?'));
    expect(adapter.contextCalls).toEqual(['msg-77']); // not again once the Codex thread exists
  });

  it('starts exactly one container for concurrent first messages of a new group', async () => {
    const g = group('concurrent');
    for (let i = 0; i < 5; i += 1) app.router.accept(message(g, `c${i}`, `burst ${i}`));
    for (let i = 0; i < 5; i += 1) await adapter.waitFor(`c${i}`, answered(`burst ${i}`));
    expect(await containersOf(g.slug)).toHaveLength(1);
  });

  it('does not lose a follow-up sent during a running turn', async () => {
    const g = group('follow-up');
    fake.script((req) => (messageTexts(req.body, 'user').at(-1)?.includes('slow question') ? reply.text('slow answer', { delayMs: 4000 }) : undefined));
    try {
      const first = app.router.accept(message(g, 'f1', 'slow question'));
      const before = fake.requests.length;
      await waitUntil(() => fake.requests.slice(before).some((r) => JSON.stringify(r.body).includes('slow question')));
      const second = app.router.accept(message(g, 'f1', 'and a follow-up'));
      await adapter.waitFor('f1', answered('and a follow-up'));
      const ids = [first, second].map((r) => (r.status === 'accepted' ? r.inboxId : -1));
      await waitUntil(() => ids.every((id) => app.store.inbox.byId(id)?.status === 'answered'));
      // The follow-up reached Codex together with the first question (steered into the same turn).
      const last = fake.requests.at(-1)!;
      const users = messageTexts(last.body, 'user').join('\n');
      expect(users).toContain('slow question');
      expect(users).toContain('and a follow-up');
    } finally {
      fake.script(() => undefined);
    }
  });

  it('resumes the chat thread in a new container after the old one stopped', async () => {
    const g = group('resume');
    app.router.accept(message(g, 'r1', 'remember APPLE'));
    await adapter.waitFor('r1', answered('remember APPLE'));
    const [firstContainer] = await containersOf(g.slug);
    await app.runtimes.find(g.slug)!.stop('test stop');
    expect(await containersOf(g.slug)).toHaveLength(0);
    app.router.accept(message(g, 'r1', 'what fruit?'));
    await adapter.waitFor('r1', answered('what fruit?'));
    const [secondContainer] = await containersOf(g.slug);
    expect(secondContainer).toBeTruthy();
    expect(secondContainer).not.toBe(firstContainer);
    const users = messageTexts(fake.requests.at(-1)!.body, 'user').join('\n');
    expect(users).toContain('remember APPLE');
  });

  it('tells the user when the container dies mid-turn, and the next message works', async () => {
    const g = group('killed');
    fake.script((req) => (messageTexts(req.body, 'user').at(-1)?.includes('hang forever') ? reply.hang() : undefined));
    try {
      const accepted = app.router.accept(message(g, 'k1', 'hang forever'));
      await waitUntil(() => fake.requests.some((r) => JSON.stringify(r.body).includes('hang forever')));
      const [id] = await containersOf(g.slug);
      await docker.getContainer(id!).kill();
      const texts = await adapter.waitFor('k1', (t) => t.some((x) => x.includes('container stopped')));
      expect(texts.join('\n')).toMatch(/container stopped during this turn \(.*(137|killed).*\)/);
      if (accepted.status !== 'accepted') throw new Error('not accepted');
      expect(app.store.inbox.byId(accepted.inboxId)?.status).toBe('failed');
      app.router.accept(message(g, 'k1', 'are you back?'));
      await adapter.waitFor('k1', answered('are you back?'));
    } finally {
      fake.script(() => undefined);
    }
  });

  it('interrupts a turn past the group turn limit and says so', async () => {
    const g = group('timeout', { turnTimeoutSec: 10 });
    fake.script((req) => (messageTexts(req.body, 'user').at(-1)?.includes('never ends') ? reply.hang() : undefined));
    try {
      app.router.accept(message(g, 'x1', 'never ends'));
      await adapter.waitFor('x1', (t) => t.some((x) => x.includes("group's turn limit (10s)")), 40_000);
    } finally {
      fake.script(() => undefined);
    }
  }, 60_000);

  it('stops an idle container after the idle timeout', async () => {
    const g = group('idle', { idleTimeoutSec: 10 });
    app.router.accept(message(g, 'i1', 'quick one'));
    await adapter.waitFor('i1', answered('quick one'));
    expect(await containersOf(g.slug)).toHaveLength(1);
    await waitUntil(async () => (await containersOf(g.slug)).length === 0, 30_000);
    expect(app.runtimes.find(g.slug)?.status().agent).toBe('stopped');
  }, 60_000);

  it('refuses malformed inbound messages with a reason and keeps serving', async () => {
    const refused = [app.router.accept({}), app.router.accept({ ...message(group('malformed'), 'm1', 'x'), text: 42 }), app.router.accept(null)];
    for (const r of refused) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') expect(r.reason.length).toBeGreaterThan(5);
    }
    expect(logLines.join('')).toContain('inbound message refused');
    const g = app.store.groups.bySlug('malformed')!;
    app.router.accept(message(g, 'm1', 'still alive?'));
    await adapter.waitFor('m1', answered('still alive?'));
  });

  it('ignores a redelivered event and answers once', async () => {
    const g = group('dedupe');
    const msg = message(g, 'd1', 'only once');
    expect(app.router.accept(msg).status).toBe('accepted');
    expect(app.router.accept(msg).status).toBe('duplicate');
    await adapter.waitFor('d1', answered('only once'));
    await new Promise((r) => setTimeout(r, 500));
    expect(adapter.texts('d1').filter((t) => t.includes('only once'))).toHaveLength(1);
  });

  it('processes messages a crash left in the inbox', async () => {
    const g = group('recover');
    // Stored but never handed to a runtime: what a host crash right after accepting leaves behind.
    app.store.inbox.accept({ platform: 'local', chatKey: g.chatKey, threadKey: 'z1', channelId: g.slug, userId: 'U1', userName: 'alice', text: 'left behind', eventId: 'crash-1', attachments: [] }, g.slug);
    expect(app.router.recover()).toBeGreaterThanOrEqual(1);
    await adapter.waitFor('z1', answered('left behind'));
  });

  it('keeps the real key out of the container while the model sees it', async () => {
    const slugs = ['two-threads', 'concurrent', 'follow-up'];
    for (const slug of slugs) {
      for (const id of await containersOf(slug)) {
        const inspect = JSON.stringify(await docker.getContainer(id).inspect());
        expect(inspect).not.toContain(REAL_KEY);
      }
    }
    const modelCalls = fake.requests.filter((r) => r.method === 'POST');
    expect(modelCalls.length).toBeGreaterThan(5);
    for (const r of modelCalls) expect(r.headers.authorization).toBe(`Bearer ${REAL_KEY}`);
    expect(logLines.join('')).not.toContain(REAL_KEY);
  });

  // Last on purpose: a second relay with the same instance id takes over this one's containers.
  it('removes containers a previous run left behind when it starts', async () => {
    const g = group('leftover');
    app.router.accept(message(g, 'l1', 'start a container'));
    await adapter.waitFor('l1', answered('start a container'));
    expect(await containersOf(g.slug)).toHaveLength(1);
    const restarted = await RelayApp.create(app.config, createLogger({ level: 'silent' }));
    try {
      expect(await containersOf(g.slug)).toHaveLength(0);
    } finally {
      await restarted.stop('test done');
    }
  });
}, { agentImage: 'build' });

/** A valid 2×2 RGB PNG, built with zlib so no binary fixture is needed. */
function tinyPng(): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(2, 0);
  header.writeUInt32BE(2, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255]);
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
