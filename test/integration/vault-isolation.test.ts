/**
 * Issue 4 end to end with the built-in credential gateway: real Docker, the real codex binary in the
 * agent image, the fake Responses API as the model. Proves that the real key reaches the model on
 * every request while the container never holds it, that stubs are worthless outside a running
 * container, that the proxy only listens on the Docker gateways, that `locked` egress leaves the
 * proxy as the only reachable host service, and that an unreachable upstream ends in a clear reply.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RelayApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { LABEL_GROUP, LABEL_INSTANCE } from '../../src/containers/docker-runtime.js';
import type { Group } from '../../src/db/rows.js';
import { createLogger } from '../../src/logger.js';
import { lockedNetworkName } from '../../src/vault/create-gateway.js';
import { bridgeNameOf, egressChainName, removeEgressChain } from '../../src/vault/egress-lock.js';
import { reply, startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';
import { canConnectFrom, defaultBridgeAddress, dockerExec, scanContainerExport } from '../helpers/docker-exec.js';
import { agentImage, describeDocker, testDocker } from '../helpers/docker.js';
import { answered, RecordingAdapter } from '../helpers/recording-adapter.js';

const REAL_KEY = 'sk-test-vault-SENTINEL-4c1d9e8f7a6b5c4d3e2f';
const RUN = `${process.pid}-${Date.now().toString(36)}`;
const INSTANCE = `test-vault-${RUN}`;
const NETWORK = `crv-${RUN}`;
const FAST_FAIL = 'request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 60000';

describeDocker('vault-only auth through Docker (built-in proxy)', () => {
  const docker = testDocker();
  let fake: FakeResponses;
  let app: RelayApp;
  let config: Config;
  let adapter: RecordingAdapter;
  let dataDir: string;
  let logLines: string[];
  let events = 0;

  beforeAll(async () => {
    fake = await startFakeResponses();
    dataDir = mkdtempSync(join(tmpdir(), 'relay-vault-'));
    config = loadConfig({
      DATA_DIR: dataDir,
      OPENAI_UPSTREAM_URL: fake.url,
      AGENT_IMAGE: agentImage(),
      DOCKER_NETWORK: NETWORK,
      RELAY_INSTANCE_ID: INSTANCE,
      DEFAULT_MODEL: 'gpt-test',
      LOG_LEVEL: 'debug',
    });
    logLines = [];
    const sink = { write: (line: string) => void logLines.push(line) };
    app = await RelayApp.create(config, createLogger({ level: 'debug', destination: sink as unknown as NodeJS.WritableStream }), {
      agentConfigExtra: FAST_FAIL,
      progressIntervalMs: 200,
    });
    app.vault.setOpenaiApiKey(REAL_KEY);
    adapter = new RecordingAdapter('local');
    app.registerAdapter(adapter);
  }, 120_000);

  afterAll(async () => {
    await app?.stop('test done');
    await fake?.close();
    await removeNetworks(docker, [NETWORK, lockedNetworkName({ dockerNetwork: NETWORK })]);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  function group(slug: string, egress: Group['egress'] = 'open'): Group {
    app.store.groups.create({ slug, chatKey: `local:vault:${slug}`, platform: 'local', name: slug });
    return app.store.groups.update(slug, { egress });
  }

  function ask(g: Group, threadKey: string, text: string): void {
    events += 1;
    const result = app.router.accept({ platform: 'local', chatKey: g.chatKey, threadKey, channelId: g.slug, userId: 'U1', userName: 'alice', text, eventId: `vault-${events}` });
    expect(result.status).toBe('accepted');
  }

  async function containerOf(slug: string): Promise<string> {
    const list = await docker.listContainers({ filters: { label: [`${LABEL_GROUP}=${slug}`, `${LABEL_INSTANCE}=${INSTANCE}`] } });
    expect(list).toHaveLength(1);
    return list[0]!.Id;
  }

  /** The proxy URL a group's container was given (its config.toml base_url, without /v1). */
  function proxyUrlOf(slug: string): URL {
    const toml = readFileSync(join(dataDir, 'groups', slug, 'codex-home', 'config.toml'), 'utf8');
    const base = /^base_url = "(.*)"$/m.exec(toml)?.[1];
    if (!base) throw new Error(`no base_url in ${slug}'s config.toml`);
    return new URL(base.replace(/\/v1$/, ''));
  }

  it('sends the sentinel key upstream on every model request while the container, logs and archive never hold it', async () => {
    const g = group('secret-scan');
    const before = fake.requests.length;
    const countedBefore = app.credentials.stats().requestsByGroup[g.slug] ?? 0;
    fake.script((req) => {
      const last = (req.body as { input?: Array<{ type?: string }> }).input?.at(-1);
      return last?.type === 'function_call_output' ? undefined : reply.shellCall('echo scanned > scan.txt && env | sort');
    });
    try {
      ask(g, 's1', 'run something');
      await adapter.waitFor('s1', answered('tool finished'));
    } finally {
      fake.script(() => undefined);
    }

    // Every model request of the turn carried the real key, and the proxy counted each one for this group.
    const modelCalls = fake.requests.slice(before).filter((r) => r.method === 'POST');
    // The command's `env` reached the model, without the stub: commands codex runs do not inherit it.
    const toolOutput = JSON.stringify((modelCalls.at(-1)!.body as { input: unknown[] }).input.at(-1));
    expect(toolOutput).toContain('HOME=/home/codex');
    expect(toolOutput).not.toContain('CODEX_RELAY_TOKEN');
    expect(modelCalls.length).toBeGreaterThanOrEqual(2);
    for (const r of modelCalls) expect(r.headers.authorization).toBe(`Bearer ${REAL_KEY}`);
    expect((app.credentials.stats().requestsByGroup[g.slug] ?? 0) - countedBefore).toBe(modelCalls.length);

    const id = await containerOf(g.slug);
    // docker inspect: env, labels, mounts, command. The stub is there, the key is not.
    const inspect = await docker.getContainer(id).inspect();
    const inspectText = JSON.stringify(inspect);
    expect(inspectText).not.toContain(REAL_KEY);
    expect(inspect.Config.Env.find((e) => e.startsWith('CODEX_RELAY_TOKEN='))).toMatch(/^CODEX_RELAY_TOKEN=crs_/);
    expect(inspect.Mounts.map((m) => m.Destination).sort()).toEqual(['/home/codex/.codex', '/workspace']);
    expect(JSON.stringify(await docker.getImage(inspect.Image).inspect())).not.toContain(REAL_KEY);

    // Every process's environment inside the container (read as the agent user, who owns them all).
    const environ = await dockerExec(docker, id, ['sh', '-c', 'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f"; done']);
    expect(environ.stdout).toContain('CODEX_RELAY_TOKEN=crs_'); // we did read the agent's environment
    expect(environ.stdout).not.toContain(REAL_KEY);

    // The whole filesystem as the agent sees it, mounts included (grep exit 1 = no match anywhere readable).
    const grep = await dockerExec(docker, id, ['grep', '-rlsF', '-D', 'skip', '--exclude-dir=proc', '--exclude-dir=sys', '--exclude-dir=dev', REAL_KEY, '/'], { timeoutMs: 120_000 });
    expect(grep.stdout).toBe('');
    expect(grep.exitCode).not.toBe(0);
    const sanity = await dockerExec(docker, id, ['grep', '-rlsF', 'scanned', '/workspace']);
    expect(sanity.stdout.trim()).toBe('/workspace/scan.txt'); // the same grep does find what is there

    // The complete root filesystem as the engine exports it (image layers + container writes), unreadable files included.
    const exported = await scanContainerExport(docker, id, [REAL_KEY, 'CODEX_CA_CERTIFICATE']);
    expect(exported.bytes).toBeGreaterThan(50_000_000);
    expect(exported.hits.CODEX_CA_CERTIFICATE).toBeGreaterThan(0); // the scan does see the codex binary's bytes
    expect(exported.hits[REAL_KEY]).toBe(0);

    // Host side: the service logs, and every file of the data dir but the vault (SQLite + WAL, archives, codex homes).
    expect(logLines.filter((l) => l.includes('"proxied"')).length).toBeGreaterThanOrEqual(modelCalls.length); // debug lines captured
    expect(logLines.join('')).not.toContain(REAL_KEY);
    const exchange = app.store.exchanges.listByThread(g.slug, 's1').at(-1);
    expect(exchange?.status).toBe('completed');
    expect(JSON.stringify(app.store.exchanges.listByThread(g.slug, 's1'))).not.toContain(REAL_KEY);
    expect(JSON.stringify(app.store.exchanges.listByThread(g.slug, 's1'))).not.toContain('crs_'); // nor the stub
    const files = filesUnder(dataDir).filter((f) => !f.endsWith('vault.json'));
    expect(files.some((f) => f.endsWith('relay.sqlite'))).toBe(true);
    for (const f of files) expect(readFileSync(f).includes(REAL_KEY), f).toBe(false);
    expect(readFileSync(join(dataDir, 'vault.json'), 'utf8')).toContain(REAL_KEY);
    expect(statSync(join(dataDir, 'vault.json')).mode & 0o777).toBe(0o600);
  }, 240_000);

  it('answers 401 to unknown stubs and to the stub of a stopped container', async () => {
    const g = group('revoke');
    ask(g, 'r1', 'hello');
    await adapter.waitFor('r1', answered('echo: alice: hello'));
    const id = await containerOf(g.slug);
    const stub = (await docker.getContainer(id).inspect()).Config.Env.find((e) => e.startsWith('CODEX_RELAY_TOKEN='))!.split('=')[1]!;
    const proxy = proxyUrlOf(g.slug);

    expect((await post(proxy, undefined)).status).toBe(401);
    expect((await post(proxy, 'crs_not-a-stub-000000000000000000000000000')).status).toBe(401);
    const live = await post(proxy, stub);
    expect(live.status).toBe(200);
    expect(live.body).toContain('response.completed');

    await app.runtimes.find(g.slug)!.stop('test: stop');
    const revoked = await post(proxy, stub);
    expect(revoked.status).toBe(401);
    expect(revoked.body).toContain('unknown or revoked relay token');
  }, 120_000);

  it('listens on the Docker gateway only: 127.0.0.1 and the other host addresses refuse', async () => {
    const proxy = proxyUrlOf('revoke');
    const port = Number(proxy.port);
    const gateways = new Set([proxy.hostname]);
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !gateways.has(a.address))
      .map((a) => a!.address);
    expect(others).toContain('127.0.0.1');
    for (const address of others) expect(await tcpConnects(address, port), address).toBe(false);
    expect(await tcpConnects(proxy.hostname, port)).toBe(true);
  });

  it('locks egress: a locked container reaches the proxy and nothing else on the host, and a Codex turn works', async () => {
    const listener = await listenAnywhere();
    const port = (listener.address() as { port: number }).port;
    try {
      const g = group('locked', 'locked');
      ask(g, 'l1', 'hello from a locked box');
      await adapter.waitFor('l1', answered('echo: alice: hello from a locked box'));
      const lockedId = await containerOf(g.slug);
      const lockedProxy = proxyUrlOf(g.slug);
      const openProxy = proxyUrlOf('revoke');

      const inspect = await docker.getContainer(lockedId).inspect();
      expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([lockedNetworkName(config)]);
      expect((await docker.getNetwork(lockedNetworkName(config)).inspect()).Internal).toBe(true);
      expect(lockedProxy.hostname).not.toBe(openProxy.hostname);

      // The proxy is reachable; a host service on the same gateway address, on the open network's
      // gateway and on docker0 is not — though it listens on 0.0.0.0.
      expect(await canConnectFrom(docker, lockedId, lockedProxy.hostname, Number(lockedProxy.port))).toBe(true);
      expect(await canConnectFrom(docker, lockedId, lockedProxy.hostname, port)).toBe(false);
      expect(await canConnectFrom(docker, lockedId, openProxy.hostname, port)).toBe(false);
      expect(await canConnectFrom(docker, lockedId, openProxy.hostname, Number(openProxy.port))).toBe(false);
      expect(await canConnectFrom(docker, lockedId, await defaultBridgeAddress(docker), port)).toBe(false);

      // Control: from an open container the same listener answers, so the block above is the lock's doing.
      const o = group('open-control');
      ask(o, 'o1', 'hi');
      await adapter.waitFor('o1', answered('echo: alice: hi'));
      expect(await canConnectFrom(docker, await containerOf(o.slug), openProxy.hostname, port)).toBe(true);

      // A second turn in the locked container still goes through.
      ask(g, 'l1', 'second locked turn');
      await adapter.waitFor('l1', answered('echo: alice: second locked turn'));
    } finally {
      await new Promise((r) => listener.close(r));
    }
  }, 180_000);

  it('tells the chat clearly when the model API is down, without hanging', async () => {
    const deadPort = await freePort();
    const downDir = mkdtempSync(join(tmpdir(), 'relay-vault-down-'));
    const down = await RelayApp.create(
      loadConfig({ ...envOf(config), DATA_DIR: downDir, OPENAI_UPSTREAM_URL: `http://127.0.0.1:${deadPort}`, RELAY_INSTANCE_ID: `${INSTANCE}-down` }),
      createLogger({ level: 'silent' }),
      // codex's default retry settings on purpose: 5xx is retried (about 25 s, APP-SERVER-NOTES §6.5), then it must end.
      { progressIntervalMs: 200 },
    );
    try {
      down.vault.setOpenaiApiKey(REAL_KEY);
      const chat = new RecordingAdapter('local');
      down.registerAdapter(chat);
      const g = down.store.groups.create({ slug: 'down', chatKey: 'local:vault:down', platform: 'local', name: 'down' });
      const started = Date.now();
      down.router.accept({ platform: 'local', chatKey: g.chatKey, threadKey: 'd1', channelId: g.slug, userId: 'U1', userName: 'alice', text: 'anyone there?', eventId: 'down-1' });
      const texts = await chat.waitFor('d1', (t) => t.some((x) => /HTTP 502|could not be reached/.test(x)), 90_000);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(texts.join('\n')).toMatch(/The model API is failing \(HTTP 502\)\. Please try again/);
      const stats = down.credentials.stats();
      expect(stats.upstreamFailures).toBeGreaterThanOrEqual(1);
      expect(stats.upstreamFailures).toBe(stats.requestsByGroup.down); // every attempt reached the proxy and failed there
      const row = down.store.exchanges.listByThread('down', 'd1').at(-1);
      expect(row?.status).toBe('failed');
      expect(down.runtimes.find('down')?.status().agent).toBe('running'); // the agent survives; only the turn failed
    } finally {
      await down.stop('test done');
      rmSync(downDir, { recursive: true, force: true });
    }
  }, 150_000);
}, { agentImage: 'build' });

// ── helpers ────────────────────────────────────────────────────────────────────────────────────

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

function post(proxy: URL, stub: string | undefined): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (stub) headers.authorization = `Bearer ${stub}`;
  return fetch(new URL('/v1/responses', proxy), {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'gpt-test', input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'direct' }] }] }),
  }).then(async (res) => ({ status: res.status, body: await res.text() }));
}

function tcpConnects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function listenAnywhere(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      // A probe from a container may reset the connection; that must not become an uncaught error.
      s.on('error', () => undefined);
      s.end('host service\n');
    });
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => resolve(server));
  });
}

async function freePort(): Promise<number> {
  const server = await new Promise<Server>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** The env that produced a config, so a second app can reuse it with a few changes. */
function envOf(c: Config): Record<string, string> {
  return { AGENT_IMAGE: c.agentImage, DOCKER_NETWORK: c.dockerNetwork, DEFAULT_MODEL: c.groupDefaults.model };
}

async function removeNetworks(docker: ReturnType<typeof testDocker>, names: string[]): Promise<void> {
  for (const name of names) {
    try {
      const info = await docker.getNetwork(name).inspect();
      if (info.Internal) await removeEgressChain(bridgeNameOf(info), egressChainName(info.Id));
      await docker.getNetwork(name).remove();
    } catch {
      // never created, or already gone
    }
  }
}
