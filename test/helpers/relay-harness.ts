/**
 * One relay for an integration test file: the fake model API, a temp data dir, a validated config,
 * RelayApp on real Docker, a vault key, and a RecordingAdapter as the chat. `stop()` tears all of
 * it down (containers, the test's Docker network, the data dir).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { InboundMessageInput } from '../../src/core/inbound.js';
import type { Group, GroupSettings } from '../../src/db/rows.js';
import { createLogger } from '../../src/logger.js';
import { startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';
import { agentImage, testDocker } from './docker.js';
import { RecordingAdapter } from './recording-adapter.js';

/** Codex gives up on the fake model at once instead of retrying for seconds. */
export const FAST_FAIL_TOML = 'request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 60000';

export interface RelayHarnessOptions {
  /** Names the data dir, Docker network and instance label (unique per test file). */
  name: string;
  /** Extra or overriding env settings. */
  env?: Record<string, string>;
  vaultKey: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'silent';
}

export interface RelayHarness {
  app: RelayApp;
  config: Config;
  adapter: RecordingAdapter;
  fake: FakeResponses;
  dataDir: string;
  network: string;
  instance: string;
  /** Every log line the relay wrote (JSON). */
  logLines: string[];
  /** Registers a local group, optionally with settings. */
  group(slug: string, settings?: Partial<GroupSettings>): Group;
  /** A fresh InboundMessage for a group's thread (unique event id). */
  message(group: Group, threadKey: string, text: string): InboundMessageInput & { eventId: string };
  stop(): Promise<void>;
}

export async function startRelayHarness(options: RelayHarnessOptions): Promise<RelayHarness> {
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const network = `crt-${options.name}-${run}`;
  const instance = `test-${options.name}-${run}`;
  const fake = await startFakeResponses();
  const dataDir = mkdtempSync(join(tmpdir(), `relay-${options.name}-`));
  const config = loadConfig({
    DATA_DIR: dataDir,
    OPENAI_UPSTREAM_URL: fake.url,
    AGENT_IMAGE: agentImage(),
    DOCKER_NETWORK: network,
    RELAY_INSTANCE_ID: instance,
    DEFAULT_MODEL: 'gpt-test',
    ...options.env,
  });
  const logLines: string[] = [];
  const sink = { write: (line: string) => void logLines.push(line) } as unknown as NodeJS.WritableStream;
  const app = await RelayApp.create(config, createLogger({ level: options.logLevel ?? 'debug', destination: sink }), {
    agentConfigExtra: FAST_FAIL_TOML,
    progressIntervalMs: 200,
  });
  app.vault.setOpenaiApiKey(options.vaultKey);
  const adapter = new RecordingAdapter('local');
  app.registerAdapter(adapter);
  let events = 0;
  return {
    app,
    config,
    adapter,
    fake,
    dataDir,
    network,
    instance,
    logLines,
    group(slug, settings = {}) {
      const created = app.store.groups.create({ slug, chatKey: `local:test:${slug}`, platform: 'local', name: slug });
      return Object.keys(settings).length ? app.store.groups.update(slug, settings) : created;
    },
    message(group, threadKey, text) {
      events += 1;
      return { platform: 'local', chatKey: group.chatKey, threadKey, channelId: group.slug, userId: 'U1', userName: 'alice', text, eventId: `ev-${events}` };
    },
    async stop() {
      await app.stop('test done');
      await fake.close();
      await testDocker()
        .getNetwork(network)
        .remove()
        .catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
