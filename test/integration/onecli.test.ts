/**
 * The OneCLI credential gateway end to end: real Docker, real codex, a fake OneCLI (control plane on
 * 127.0.0.1 plus a forward-proxy gateway on docker0's address, where `host.docker.internal` points)
 * and the fake Responses API. The relay's own vault holds no OpenAI key here: the key only exists in
 * the fake OneCLI gateway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RelayApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { LABEL_GROUP, LABEL_INSTANCE } from '../../src/containers/docker-runtime.js';
import type { Group } from '../../src/db/rows.js';
import { createLogger } from '../../src/logger.js';
import { COMBINED_CA_CONTAINER_PATH, ONECLI_PLACEHOLDER_KEY, onecliAgentIdentifier } from '../../src/vault/onecli-gateway.js';
import { FAKE_CA_CONTAINER_PATH, FAKE_ONECLI_CA, FAKE_STUB_CONTAINER_PATH, FAKE_STUB_CONTENT, startFakeOneCli, type FakeOneCli } from '../fakes/fake-onecli.js';
import { startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';
import { defaultBridgeAddress, dockerExec } from '../helpers/docker-exec.js';
import { agentImage, describeDocker, testDocker } from '../helpers/docker.js';
import { answered, RecordingAdapter } from '../helpers/recording-adapter.js';

const REAL_KEY = 'sk-test-onecli-SENTINEL-0a9b8c7d6e5f4a3b';
const ONECLI_API_KEY = 'oc_test_relay_key_123456';
const RUN = `${process.pid}-${Date.now().toString(36)}`;
const INSTANCE = `test-onecli-${RUN}`;
const NETWORK = `cro-${RUN}`;
const FAST_FAIL = 'request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 60000';

describeDocker('OneCLI credential gateway through Docker', () => {
  const docker = testDocker();
  let fake: FakeResponses;
  let onecli: FakeOneCli;
  let app: RelayApp;
  let adapter: RecordingAdapter;
  let dataDir: string;
  let imageEnv: string[];
  let events = 0;

  beforeAll(async () => {
    fake = await startFakeResponses();
    // host.docker.internal:host-gateway resolves to docker0's address; the fake gateway listens there.
    const docker0 = await defaultBridgeAddress(docker);
    onecli = await startFakeOneCli({ apiKey: ONECLI_API_KEY, gateway: { host: docker0, realKey: REAL_KEY, upstream: fake.url } });
    imageEnv = (await docker.getImage(agentImage()).inspect()).Config.Env ?? [];
    dataDir = mkdtempSync(join(tmpdir(), 'relay-onecli-'));
    app = await RelayApp.create(
      loadConfig({
        DATA_DIR: dataDir,
        OPENAI_UPSTREAM_URL: fake.url,
        ONECLI_URL: onecli.url,
        AGENT_IMAGE: agentImage(),
        DOCKER_NETWORK: NETWORK,
        RELAY_INSTANCE_ID: INSTANCE,
        DEFAULT_MODEL: 'gpt-test',
      }),
      createLogger({ level: 'silent' }),
      { agentConfigExtra: FAST_FAIL, progressIntervalMs: 200 },
    );
    app.vault.setOnecliApiKey(ONECLI_API_KEY);
    adapter = new RecordingAdapter('local');
    app.registerAdapter(adapter);
  }, 120_000);

  afterAll(async () => {
    await app?.stop('test done');
    await onecli?.close();
    await fake?.close();
    await docker
      .getNetwork(NETWORK)
      .remove()
      .catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  function group(slug: string, egress: Group['egress'] = 'open'): Group {
    app.store.groups.create({ slug, chatKey: `local:onecli:${slug}`, platform: 'local', name: slug });
    return app.store.groups.update(slug, { egress });
  }

  function ask(g: Group, threadKey: string, text: string): void {
    events += 1;
    const result = app.router.accept({ platform: 'local', chatKey: g.chatKey, threadKey, channelId: g.slug, userId: 'U1', userName: 'alice', text, eventId: `onecli-${events}` });
    expect(result.status).toBe('accepted');
  }

  async function containersOf(slug: string): Promise<string[]> {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_GROUP}=${slug}`, `${LABEL_INSTANCE}=${INSTANCE}`] } });
    return list.map((c) => c.Id);
  }

  it('ensures an agent per group, applies exactly the returned env and mounts, and a turn goes through OneCLI', async () => {
    const g = group('via-onecli');
    const identifier = onecliAgentIdentifier(g.slug);
    ask(g, 'a1', 'hello through onecli');
    await adapter.waitFor('a1', answered('echo: alice: hello through onecli'));

    // Control plane: agent created with our API key, then its container config fetched.
    const calls = onecli.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(calls).toEqual(['POST /api/agents 201', `GET /v1/container-config?agent=${identifier} 200`]);
    expect(onecli.requests.every((r) => r.headers.authorization === `Bearer ${ONECLI_API_KEY}`)).toBe(true);
    expect(onecli.requests[0]!.body).toMatchObject({ identifier });

    // The model request went out through the OneCLI gateway, which swapped in the key.
    expect(onecli.gatewayRequests.length).toBeGreaterThanOrEqual(1);
    expect(onecli.gatewayRequests.every((r) => r.agent === identifier)).toBe(true);
    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(1);
    for (const r of posts) expect(r.headers.authorization).toBe(`Bearer ${REAL_KEY}`);

    const [id] = await containersOf(g.slug);
    const inspect = await docker.getContainer(id!).inspect();
    expect(JSON.stringify(inspect)).not.toContain(REAL_KEY);

    // Env: exactly what OneCLI returned, plus the relay's own placeholder key and the combined CA path.
    const returned = onecli.configFor(identifier);
    const added = inspect.Config.Env.filter((e) => !imageEnv.includes(e));
    const expected = [
      ...Object.entries(returned.env).map(([k, v]) => `${k}=${v}`),
      `CODEX_RELAY_TOKEN=${ONECLI_PLACEHOLDER_KEY}`,
      `SSL_CERT_FILE=${COMBINED_CA_CONTAINER_PATH}`,
    ];
    expect(added.sort()).toEqual(expected.sort());

    // Mounts: the group's two, plus OneCLI's CA, the combined bundle and each credential stub, all read-only.
    const mounts = Object.fromEntries(inspect.Mounts.map((m) => [m.Destination, m.RW]));
    expect(mounts).toEqual({
      '/workspace': true,
      '/home/codex/.codex': true,
      [FAKE_CA_CONTAINER_PATH]: false,
      [COMBINED_CA_CONTAINER_PATH]: false,
      [FAKE_STUB_CONTAINER_PATH]: false,
    });
    expect(inspect.HostConfig.ExtraHosts).toEqual(['host.docker.internal:host-gateway']);
    const cat = (path: string) => dockerExec(docker, id!, ['cat', path]).then((r) => r.stdout);
    expect(await cat(FAKE_CA_CONTAINER_PATH)).toBe(FAKE_ONECLI_CA);
    expect(await cat(FAKE_STUB_CONTAINER_PATH)).toBe(FAKE_STUB_CONTENT);
    const combined = await cat(COMBINED_CA_CONTAINER_PATH);
    expect(combined.endsWith(FAKE_ONECLI_CA)).toBe(true);
    expect(combined.split('BEGIN CERTIFICATE').length).toBeGreaterThan(10); // system roots too
  }, 120_000);

  it('treats 409 on agent creation as "exists" and starts the next container the same way', async () => {
    const g = app.store.groups.bySlug('via-onecli')!;
    await app.runtimes.find(g.slug)!.stop('test: force a new container');
    const before = onecli.requests.length;
    ask(g, 'a1', 'second container');
    await adapter.waitFor('a1', answered('echo: alice: second container'));
    const later = onecli.requests.slice(before);
    expect(later.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /api/agents 409',
      `GET /v1/container-config?agent=${onecliAgentIdentifier(g.slug)} 200`,
    ]);
    expect(await containersOf(g.slug)).toHaveLength(1);
  }, 120_000);

  it('starts no container and says why when OneCLI refuses', async () => {
    const g = group('refused');
    onecli.refuseWith(403);
    try {
      ask(g, 'r1', 'will this start?');
      const texts = await adapter.waitFor('r1', (t) => t.some((x) => x.includes('could not start the Codex container')));
      expect(texts.join('\n')).toMatch(/OneCLI at http:\/\/127\.0\.0\.1:\d+ refused to create the agent codex-relay-refused: HTTP 403.*check the OneCLI API key/);
      expect(await containersOf(g.slug)).toHaveLength(0);
    } finally {
      onecli.refuseWith(undefined);
    }
  });

  it('refuses locked egress under OneCLI instead of starting an unlocked container', async () => {
    const g = group('locked-onecli', 'locked');
    ask(g, 'l1', 'locked?');
    const texts = await adapter.waitFor('l1', (t) => t.some((x) => x.includes('could not start the Codex container')));
    expect(texts.join('\n')).toContain('not available with OneCLI');
    expect(await containersOf(g.slug)).toHaveLength(0);
  });

  it('starts no container and tells the chat when OneCLI is unreachable', async () => {
    const deadPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'relay-onecli-dead-'));
    const dead = await RelayApp.create(
      loadConfig({
        DATA_DIR: dir,
        OPENAI_UPSTREAM_URL: fake.url,
        ONECLI_URL: `http://127.0.0.1:${deadPort}`,
        AGENT_IMAGE: agentImage(),
        DOCKER_NETWORK: NETWORK,
        RELAY_INSTANCE_ID: `${INSTANCE}-dead`,
        DEFAULT_MODEL: 'gpt-test',
      }),
      createLogger({ level: 'silent' }),
      { agentConfigExtra: FAST_FAIL, progressIntervalMs: 200 },
    );
    try {
      const chat = new RecordingAdapter('local');
      dead.registerAdapter(chat);
      const g = dead.store.groups.create({ slug: 'unreachable', chatKey: 'local:onecli:unreachable', platform: 'local', name: 'unreachable' });
      dead.router.accept({ platform: 'local', chatKey: g.chatKey, threadKey: 'u1', channelId: g.slug, userId: 'U1', userName: 'alice', text: 'hello?', eventId: 'dead-1' });
      const texts = await chat.waitFor('u1', (t) => t.some((x) => x.includes('could not start the Codex container')));
      expect(texts.join('\n')).toContain(`OneCLI at http://127.0.0.1:${deadPort} could not be reached to create the agent codex-relay-unreachable (ECONNREFUSED)`);
      const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_INSTANCE}=${INSTANCE}-dead`] } });
      expect(list).toHaveLength(0);
      expect(dead.store.exchanges.listByThread('unreachable', 'u1').at(-1)?.status).toBe('failed');
    } finally {
      await dead.stop('test done');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}, { agentImage: 'build' });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
