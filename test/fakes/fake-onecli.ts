/**
 * A fake OneCLI for tests, speaking the HTTP API `@onecli-sh/sdk` 0.3 uses:
 *   control plane (127.0.0.1):
 *     POST /api/agents {name, identifier}    → 201 {id, name, identifier, createdAt}; 409 when the identifier exists
 *     GET  /v1/container-config?agent=<id>   → 200 {env, caCertificate, caCertificateContainerPath, credentialStubs}
 *                                              404 for an unknown agent
 *   both answer 401 without `Authorization: Bearer <apiKey>` when an apiKey is configured.
 *   gateway (optional, on a given host): a plain HTTP forward proxy, the part of OneCLI that swaps
 *     the agent's placeholder for the real key. It accepts absolute-form requests with
 *     `Proxy-Authorization: Basic x:<agent token>` (what HTTP_PROXY=http://x:<token>@host:port makes
 *     clients send), replaces `Authorization` with the real key and forwards to the one allowed
 *     upstream origin. (Real OneCLI also MITMs HTTPS with its CA; tests use an http upstream.)
 * Only node:http.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A self-signed test certificate (its private key was discarded): only its shape matters. */
export const FAKE_ONECLI_CA = `-----BEGIN CERTIFICATE-----
MIIBtTCCAVugAwIBAgIUXD5jzcrkwMYSolctk4MnP1i7uAMwCgYIKoZIzj0EAwIw
LzEtMCsGA1UEAwwkZmFrZSBPbmVDTEkgdGVzdCBDQSAobm8gcHJpdmF0ZSB1c2Up
MCAXDTI2MTEyNTAzMTYyNVoYDzIxMjYxMTAxMDMxNjI1WjAvMS0wKwYDVQQDDCRm
YWtlIE9uZUNMSSB0ZXN0IENBIChubyBwcml2YXRlIHVzZSkwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASKGZGhN5+UQc3n9k1ZkAsrLN5aOs/YBNkFkfimosVEj0R6
NRe78aB9rJV4vwe6dAi7/hjb2smq/UJbHDIIgx2zo1MwUTAdBgNVHQ4EFgQUThu3
OidGtuu58/ntYXji177vNIkwHwYDVR0jBBgwFoAUThu3OidGtuu58/ntYXji177v
NIkwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAzS/t5cfhkREP
eUV0jUITIv0gwEkcuvBuBiA1ELkS4kwCID4p1X3bAG7fc9NFPf+b5Prm+dnHuX1m
MT5XzqHjAd0u
-----END CERTIFICATE-----
`;
export const FAKE_CA_CONTAINER_PATH = '/tmp/onecli-proxy-ca.pem';
export const FAKE_STUB_CONTAINER_PATH = '/tmp/onecli-codex/auth.json';
export const FAKE_STUB_CONTENT = '{"auth_mode":"chatgpt","tokens":{"access_token":"onecli-managed"}}\n';

export interface FakeOneCliRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The status the fake answered with. */
  status?: number;
}

export interface FakeAgent {
  name: string;
  identifier: string;
  /** The agent's placeholder token, carried in its proxy URL. */
  token: string;
}

export interface ContainerConfigWire {
  env: Record<string, string>;
  caCertificate: string;
  caCertificateContainerPath: string;
  credentialStubs: Array<{ containerPath: string; content: string }>;
}

export interface FakeOneCli {
  /** Control plane: http://127.0.0.1:PORT */
  url: string;
  requests: FakeOneCliRequest[];
  agents: Map<string, FakeAgent>;
  /** What GET /v1/container-config returns for an agent. */
  configFor(identifier: string): ContainerConfigWire;
  /** Every control-plane call answers `status` until called with undefined. */
  refuseWith(status: number | undefined): void;
  /** Requests the gateway forwarded (with the headers it sent upstream). */
  gatewayRequests: Array<{ agent: string; method: string; url: string; upstreamHeaders: Record<string, string> }>;
  close(): Promise<void>;
}

export interface FakeOneCliOptions {
  /** Require `Authorization: Bearer <apiKey>` on the control plane. */
  apiKey?: string;
  /** Start the gateway part: listen on `host`, swap in `realKey`, forward only to `upstream`. */
  gateway?: { host: string; realKey: string; upstream: string };
  /** Host name the returned proxy URLs use (default host.docker.internal, as OneCLI does). */
  proxyHostName?: string;
}

const IDENTIFIER = /^[a-z0-9][a-z0-9-]{0,49}$/;

export async function startFakeOneCli(options: FakeOneCliOptions = {}): Promise<FakeOneCli> {
  const requests: FakeOneCliRequest[] = [];
  const gatewayRequests: FakeOneCli['gatewayRequests'] = [];
  const agents = new Map<string, FakeAgent>();
  let refusing: number | undefined;
  let gateway: Server | undefined;
  let gatewayPort = 10255;

  if (options.gateway) {
    const { realKey, upstream } = options.gateway;
    const allowed = new URL(upstream).origin;
    gateway = createServer((req, res) => {
      const presented = /^Basic\s+(\S+)$/i.exec(String(req.headers['proxy-authorization'] ?? ''))?.[1];
      const token = presented ? Buffer.from(presented, 'base64').toString('utf8').split(':').slice(1).join(':') : '';
      const agent = [...agents.values()].find((a) => a.token === token);
      if (!agent) {
        res.writeHead(407, { 'proxy-authenticate': 'Basic realm="onecli"' }).end('proxy authentication required');
        return;
      }
      let target: URL;
      try {
        target = new URL(req.url ?? '');
      } catch {
        res.writeHead(400).end('absolute-form request expected');
        return;
      }
      if (target.origin !== allowed) {
        res.writeHead(403).end(`fake OneCLI only forwards to ${allowed}`);
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined || ['proxy-authorization', 'proxy-connection', 'connection', 'host', 'keep-alive'].includes(k)) continue;
        headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      headers.authorization = `Bearer ${realKey}`;
      gatewayRequests.push({ agent: agent.identifier, method: req.method ?? 'GET', url: target.toString(), upstreamHeaders: { ...headers } });
      const up = httpRequest(target, { method: req.method, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', (err) => res.writeHead(502).end(`upstream: ${err.message}`));
      req.pipe(up);
    });
    await new Promise<void>((resolve, reject) => {
      gateway!.once('error', reject);
      gateway!.listen(0, options.gateway!.host, () => resolve());
    });
    gatewayPort = (gateway.address() as AddressInfo).port;
  }

  const proxyHost = options.proxyHostName ?? 'host.docker.internal';
  const configFor = (identifier: string): ContainerConfigWire => {
    const agent = agents.get(identifier);
    const proxy = `http://x:${agent?.token ?? 'none'}@${proxyHost}:${gatewayPort}`;
    return {
      env: { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, NODE_EXTRA_CA_CERTS: FAKE_CA_CONTAINER_PATH, NODE_USE_ENV_PROXY: '1' },
      caCertificate: FAKE_ONECLI_CA,
      caCertificateContainerPath: FAKE_CA_CONTAINER_PATH,
      credentialStubs: [{ containerPath: FAKE_STUB_CONTAINER_PATH, content: FAKE_STUB_CONTENT }],
    };
  };

  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    const last = requests.at(-1);
    if (last) last.status = status;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const control = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = raw;
      }
      const url = new URL(req.url ?? '/', 'http://x');
      requests.push({ method: req.method ?? 'GET', path: `${url.pathname}${url.search}`, headers: req.headers, body });
      if (refusing !== undefined) return json(res, refusing, { error: `fake OneCLI refusing with ${refusing}` });
      if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) return json(res, 401, { error: 'Unauthorized' });
      if (req.method === 'POST' && url.pathname === '/api/agents') {
        const input = body as { name?: unknown; identifier?: unknown } | null;
        if (typeof input?.name !== 'string' || typeof input.identifier !== 'string' || !IDENTIFIER.test(input.identifier)) {
          return json(res, 400, { error: 'name and a valid identifier are required' });
        }
        if (agents.has(input.identifier)) return json(res, 409, { error: 'An agent with this identifier already exists.' });
        const agent = { name: input.name, identifier: input.identifier, token: `aoc_${randomBytes(16).toString('hex')}` };
        agents.set(agent.identifier, agent);
        return json(res, 201, { id: `agent_${agents.size}`, name: agent.name, identifier: agent.identifier, createdAt: new Date().toISOString() });
      }
      if (req.method === 'GET' && url.pathname === '/v1/container-config') {
        const identifier = url.searchParams.get('agent') ?? '';
        if (!agents.has(identifier)) return json(res, 404, { error: 'Agent not found.' });
        return json(res, 200, configFor(identifier));
      }
      json(res, 404, { error: 'not found' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(0, '127.0.0.1', () => resolve());
  });

  const closeServer = (server: Server | undefined) =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.closeAllConnections();
      server.close(() => resolve());
    });

  return {
    url: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    requests,
    agents,
    configFor,
    refuseWith(status) {
      refusing = status;
    },
    gatewayRequests,
    close: async () => {
      await Promise.all([closeServer(control), closeServer(gateway)]);
    },
  };
}
