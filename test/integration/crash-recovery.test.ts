/**
 * A message accepted from a platform survives a crash of the host process: the relay is SIGKILLed
 * while the message's turn is running in its container, a new relay starts on the same data
 * directory, removes the orphaned container, and answers the message from the inbox.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, it } from 'vitest';
import { RelayApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { LABEL_INSTANCE } from '../../src/containers/docker-runtime.js';
import { Store } from '../../src/db/store.js';
import { silentLogger } from '../../src/logger.js';
import { Vault } from '../../src/vault/vault.js';
import { messageTexts, reply, startFakeResponses } from '../fakes/fake-responses.js';
import { agentImage, describeDocker, testDocker } from '../helpers/docker.js';
import { answered, RecordingAdapter } from '../helpers/recording-adapter.js';

const INSTANCE = `test-crash-${process.pid}`;

describeDocker('host crash recovery', () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('answers a message whose turn was running when the host process was killed', async () => {
    const fake = await startFakeResponses();
    cleanups.push(() => fake.close());
    let hung = false;
    fake.script((req) => {
      if (!hung && messageTexts(req.body, 'user').at(-1)?.includes('survive the crash')) {
        hung = true;
        return reply.hang();
      }
      return undefined;
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-crash-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = {
      DATA_DIR: dataDir,
      OPENAI_UPSTREAM_URL: fake.url,
      AGENT_IMAGE: agentImage(),
      DOCKER_NETWORK: 'codex-relay-test-crash',
      RELAY_INSTANCE_ID: INSTANCE,
      DEFAULT_MODEL: 'gpt-test',
    };
    Vault.open(dataDir).setOpenaiApiKey('sk-test-crash-recovery-000000000000');
    const seed = Store.open(dataDir);
    seed.groups.create({ slug: 'crashy', chatKey: 'local:test:crashy', platform: 'local', name: 'crashy' });
    seed.close();

    const message = { platform: 'local', chatKey: 'local:test:crashy', threadKey: 't1', channelId: 'c', userId: 'U1', userName: 'alice', text: 'survive the crash', eventId: 'crash-ev-1' };
    // node itself (not the tsx wrapper, which would leave its own child alive after SIGKILL).
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'relay-child.ts')], {
      env: { ...process.env, ...env, LOG_LEVEL: 'silent', RELAY_CHILD_MESSAGE: JSON.stringify(message) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => child.kill('SIGKILL'));
    const [firstLine] = await Promise.race([
      (async () => {
        for await (const line of createInterface({ input: child.stdout! })) return [line];
        return [];
      })(),
      new Promise<string[]>((_, reject) => setTimeout(() => reject(new Error('child relay did not answer')), 60_000)),
    ]);
    expect(JSON.parse(firstLine ?? '{}').status).toBe('accepted');
    await waitUntil(() => hung);

    // The crash: no shutdown hooks, no cleanup, turn in flight.
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const during = Store.open(dataDir);
    expect(during.inbox.unfinished().map((r) => r.status)).toEqual(['running']);
    during.close();

    const app = await RelayApp.create(loadConfig(env), silentLogger(), { agentConfigExtra: 'request_max_retries = 0\nstream_max_retries = 0' });
    cleanups.push(() => app.stop('test done'));
    const adapter = new RecordingAdapter('local');
    app.registerAdapter(adapter);
    const mine = await testDocker().listContainers({ all: true, filters: { label: [`${LABEL_INSTANCE}=${INSTANCE}`] } });
    expect(mine).toHaveLength(0); // the orphan of the killed relay is gone
    expect(app.router.recover()).toBe(1);
    await adapter.waitFor('t1', answered('survive the crash'));
    const row = app.store.inbox.byEventId({ platform: 'local', eventId: 'crash-ev-1' });
    expect(row?.status).toBe('answered');
    expect(row?.attempts).toBe(1);
  }, 120_000);

  it('requeues a running turn on graceful shutdown and answers it after the restart', async () => {
    const fake = await startFakeResponses();
    cleanups.push(() => fake.close());
    let hung = false;
    fake.script((req) => {
      if (!hung && messageTexts(req.body, 'user').at(-1)?.includes('answer me later')) {
        hung = true;
        return reply.hang();
      }
      return undefined;
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-shutdown-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = loadConfig({ DATA_DIR: dataDir, OPENAI_UPSTREAM_URL: fake.url, AGENT_IMAGE: agentImage(), DOCKER_NETWORK: 'codex-relay-test-crash', RELAY_INSTANCE_ID: `${INSTANCE}-graceful`, DEFAULT_MODEL: 'gpt-test' });
    const first = await RelayApp.create(config, silentLogger());
    first.vault.setOpenaiApiKey('sk-test-graceful-000000000000000');
    const before = new RecordingAdapter('local');
    first.registerAdapter(before);
    first.store.groups.create({ slug: 'graceful', chatKey: 'local:test:graceful', platform: 'local', name: 'graceful' });
    first.router.accept({ platform: 'local', chatKey: 'local:test:graceful', threadKey: 'g1', channelId: 'c', userId: 'U1', userName: 'alice', text: 'answer me later', eventId: 'graceful-1' });
    await waitUntil(() => hung);
    await first.stop('SIGTERM');
    expect(before.texts('g1').join('\n')).toContain('relay is restarting');
    const check = Store.open(dataDir);
    expect(check.inbox.unfinished().map((r) => r.status)).toEqual(['received']);
    check.close();

    const second = await RelayApp.create(config, silentLogger());
    cleanups.push(() => second.stop('test done'));
    const after = new RecordingAdapter('local');
    second.registerAdapter(after);
    expect(second.router.recover()).toBe(1);
    await after.waitFor('g1', answered('answer me later'));
  }, 120_000);
}, { agentImage: 'build' });

async function waitUntil(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
