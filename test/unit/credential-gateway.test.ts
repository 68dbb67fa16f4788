/**
 * The credential gateways without Docker: the egress-lock rule set and its idempotent installation
 * (against a recording iptables), OneCLI identifiers, and the OneCLI gateway against the fake OneCLI
 * (fail-closed answers, config validation, files written for mounting).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerStartError } from '../../src/containers/runtime.js';
import { renderAgentConfig } from '../../src/groups/group-home.js';
import { silentLogger } from '../../src/logger.js';
import { bridgeNameOf, egressChainName, EgressLock, EgressLockError, egressRules, type IptablesRunner } from '../../src/vault/egress-lock.js';
import { COMBINED_CA_CONTAINER_PATH, ONECLI_PLACEHOLDER_KEY, onecliAgentIdentifier, OneCliGateway } from '../../src/vault/onecli-gateway.js';
import { FAKE_CA_CONTAINER_PATH, FAKE_ONECLI_CA, FAKE_STUB_CONTAINER_PATH, FAKE_STUB_CONTENT, startFakeOneCli, type FakeOneCli } from '../fakes/fake-onecli.js';

/** An in-memory iptables: chains of rule strings, answering -N/-L/-C/-A/-I/-D like the real one. */
function fakeIptables(): { run: IptablesRunner; chains: Map<string, string[]>; calls: string[][] } {
  const chains = new Map<string, string[]>([['INPUT', ['-j SOMETHING-ELSE']]]);
  const calls: string[][] = [];
  const run: IptablesRunner = async (args) => {
    calls.push(args);
    const [op, chain = '', ...rest] = args;
    const rule = (op === '-I' && /^\d+$/.test(rest[0] ?? '') ? rest.slice(1) : rest).join(' ');
    const list = chains.get(chain);
    if (op === '-n') return { code: chains.has(rest[0] ?? '') ? 0 : 1, stderr: '' };
    if (op === '-N') {
      if (list) return { code: 1, stderr: 'iptables: Chain already exists.' };
      chains.set(chain, []);
      return { code: 0, stderr: '' };
    }
    if (!list) return { code: 1, stderr: `No chain/target/match by that name (${chain})` };
    if (op === '-C') return { code: list.includes(rule) ? 0 : 1, stderr: '' };
    if (op === '-A') list.push(rule);
    else if (op === '-I') list.unshift(rule);
    else if (op === '-D') {
      const at = list.indexOf(rule);
      if (at === -1) return { code: 1, stderr: 'Bad rule' };
      list.splice(at, 1);
    }
    return { code: 0, stderr: '' };
  };
  return { run, chains, calls };
}

describe('egress lock', () => {
  const spec = { bridge: 'br-0123456789ab', gateway: '172.30.0.1', port: 41234, chain: egressChainName('0123456789abcdef') };

  it('names the chain and bridge from the network', () => {
    expect(spec.chain).toBe('CRL-0123456789ab');
    expect(spec.chain.length).toBeLessThanOrEqual(28);
    expect(bridgeNameOf({ Id: 'abcdef0123456789', Options: {} })).toBe('br-abcdef012345');
    expect(bridgeNameOf({ Id: 'abcdef0123456789', Options: { 'com.docker.network.bridge.name': 'relaylock0' } })).toBe('relaylock0');
  });

  it('allows exactly the proxy address:port and rejects the rest', () => {
    const rules = egressRules(spec);
    expect(rules.jump).toEqual(['INPUT', '-i', 'br-0123456789ab', '-j', 'CRL-0123456789ab']);
    expect(rules.accept).toEqual(['CRL-0123456789ab', '-p', 'tcp', '-d', '172.30.0.1/32', '--dport', '41234', '-j', 'ACCEPT']);
    expect(rules.rejectTcp.slice(-4)).toEqual(['-j', 'REJECT', '--reject-with', 'tcp-reset']);
    expect(rules.rejectRest.slice(-4)).toEqual(['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable']);
  });

  it('installs once, in order, repairs what was removed, and releases only its own rule', async () => {
    const ipt = fakeIptables();
    const lock = new EgressLock(spec, ipt.run);
    await lock.ensure();
    expect(ipt.chains.get('INPUT')![0]).toBe('-i br-0123456789ab -j CRL-0123456789ab');
    expect(ipt.chains.get(spec.chain)).toEqual([
      '-p tcp -d 172.30.0.1/32 --dport 41234 -j ACCEPT',
      '-p tcp -j REJECT --reject-with tcp-reset',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);

    ipt.calls.length = 0;
    await lock.ensure();
    expect(ipt.calls.every((c) => c[0] === '-n' || c[0] === '-C')).toBe(true); // second time: checks only

    ipt.chains.set('INPUT', ['-j SOMETHING-ELSE']); // e.g. a firewall reload wiped our jump
    await lock.ensure();
    expect(ipt.chains.get('INPUT')![0]).toBe('-i br-0123456789ab -j CRL-0123456789ab');

    const other = new EgressLock({ ...spec, port: 50000 }, ipt.run); // a second relay on the same network
    await other.ensure();
    await lock.release();
    expect(ipt.chains.get(spec.chain)).toEqual([
      '-p tcp -d 172.30.0.1/32 --dport 50000 -j ACCEPT',
      '-p tcp -j REJECT --reject-with tcp-reset',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
  });

  it('fails closed with a plain reason when iptables is missing or refuses', async () => {
    const missing = new EgressLock(spec, async () => {
      throw Object.assign(new Error('spawn iptables ENOENT'), { code: 'ENOENT' });
    });
    await expect(missing.ensure()).rejects.toThrow(new EgressLockError('iptables is not installed on the relay host'));
    const notRoot = new EgressLock(spec, async () => ({ code: 4, stderr: 'iptables v1.8.9: Permission denied (you must be root)\n' }));
    await expect(notRoot.ensure()).rejects.toThrow(/Permission denied \(you must be root\)/);
  });
});

describe('stub hygiene in the agent config', () => {
  it('keeps the stub env var out of the commands codex runs', () => {
    const toml = renderAgentConfig({ model: 'gpt-5.5', reasoningEffort: 'low', approvalPolicy: 'never', proxyUrl: 'http://172.18.0.1:4000', extraToml: 'request_max_retries = 0' });
    expect(toml).toMatch(/\[shell_environment_policy\]\nexclude = \["CODEX_RELAY_TOKEN"\]\n/);
    // extraToml still lands in the provider table (it is appended after the provider keys).
    expect(toml.indexOf('request_max_retries')).toBeGreaterThan(toml.indexOf('[model_providers.codex-relay]'));
  });
});

describe('OneCLI gateway', () => {
  let onecli: FakeOneCli;
  let dataDir: string;
  const group = { slug: 'eng-team', name: 'Engineering', egress: 'open' as const };
  const gateway = (url: string, extra: Partial<ConstructorParameters<typeof OneCliGateway>[0]> = {}) =>
    new OneCliGateway({ url, apiKey: () => 'oc_unit_key_0000', network: 'relay-net', modelBaseUrl: 'https://api.openai.com', dataDir, log: silentLogger(), ...extra });

  beforeAll(async () => {
    onecli = await startFakeOneCli({ apiKey: 'oc_unit_key_0000' });
    dataDir = mkdtempSync(join(tmpdir(), 'relay-onecli-unit-'));
  });
  afterAll(async () => {
    await onecli.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.each([
    ['eng', 'codex-relay-eng'],
    ['a'.repeat(38), `codex-relay-${'a'.repeat(38)}`],
  ])('identifier for %s', (slug, id) => expect(onecliAgentIdentifier(slug)).toBe(id));

  it('shortens long slugs to 50 chars, stably and distinctly', () => {
    const a = onecliAgentIdentifier('x'.repeat(63));
    const b = onecliAgentIdentifier(`${'x'.repeat(62)}y`);
    expect(a).toHaveLength(50);
    expect(a).toMatch(/^[a-z][a-z0-9-]*$/);
    expect(a).not.toBe(b);
    expect(onecliAgentIdentifier('x'.repeat(63))).toBe(a);
  });

  it('applies the container config: env as returned, CA + combined bundle + stubs as read-only files', async () => {
    const systemCa = join(dataDir, 'system-ca.pem');
    writeFileSync(systemCa, '-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n');
    const creds = await gateway(onecli.url, { systemCaPaths: [join(dataDir, 'missing.pem'), systemCa] }).prepare(group);
    const returned = onecli.configFor('codex-relay-eng-team');
    expect(creds.env).toEqual({ ...returned.env, SSL_CERT_FILE: COMBINED_CA_CONTAINER_PATH, CODEX_RELAY_TOKEN: ONECLI_PLACEHOLDER_KEY });
    expect(creds.modelBaseUrl).toBe('https://api.openai.com');
    expect(creds.network).toBe('relay-net');
    expect(creds.extraHosts).toEqual(['host.docker.internal:host-gateway']);
    const byTarget = Object.fromEntries(creds.mounts.map((m) => [m.target, m]));
    expect(Object.keys(byTarget).sort()).toEqual([COMBINED_CA_CONTAINER_PATH, FAKE_STUB_CONTAINER_PATH, FAKE_CA_CONTAINER_PATH].sort());
    expect(creds.mounts.every((m) => m.readOnly === true && m.source.startsWith(join(dataDir, 'onecli', 'eng-team')))).toBe(true);
    expect(readFileSync(byTarget[FAKE_CA_CONTAINER_PATH]!.source, 'utf8')).toBe(FAKE_ONECLI_CA);
    expect(readFileSync(byTarget[FAKE_STUB_CONTAINER_PATH]!.source, 'utf8')).toBe(FAKE_STUB_CONTENT);
    expect(readFileSync(byTarget[COMBINED_CA_CONTAINER_PATH]!.source, 'utf8')).toBe(`-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n${FAKE_ONECLI_CA}`);
    expect(statSync(byTarget[FAKE_CA_CONTAINER_PATH]!.source).mode & 0o004).toBe(0o004); // readable by the agent's uid
  });

  it('refuses with the reason: wrong API key, malformed config, no answer', async () => {
    await expect(gateway(onecli.url, { apiKey: () => 'oc_wrong_key_000' }).prepare(group)).rejects.toThrow(
      /refused to create the agent codex-relay-eng-team: HTTP 401 .*check the OneCLI API key/,
    );

    const broken = createServer((req, res) => {
      if (req.url?.startsWith('/api/agents')) return void res.writeHead(201).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ env: { 'BAD NAME': 'x' }, caCertificate: FAKE_ONECLI_CA, caCertificateContainerPath: '/tmp/ca.pem' }));
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(broken.address() as { port: number }).port}`;
      const err = await gateway(url).prepare(group).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ContainerStartError);
      expect((err as Error).message).toMatch(/container config the relay does not understand \(env\.BAD NAME: .+\); the agent was not started/);
    } finally {
      await new Promise((r) => broken.close(r));
    }

    const silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      await expect(gateway(url, { timeoutMs: 300 }).prepare(group)).rejects.toThrow(/could not be reached to create the agent .*\(no answer within 300 ms\)/);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});
