import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { CredentialProxy } from '../../src/vault/credential-proxy.js';
import { StubRegistry } from '../../src/vault/stubs.js';

const REAL_KEY = 'sk-test-REAL-KEY-sentinel-000111222333';

interface Seen {
  headers: IncomingHttpHeaders;
  path: string;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

function get(url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string; firstChunkAt: number; endAt: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body ? 'POST' : 'GET', headers }, (res) => {
      let text = '';
      let firstChunkAt = 0;
      res.on('data', (c: Buffer) => {
        firstChunkAt ||= Date.now();
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, firstChunkAt, endAt: Date.now() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('credential proxy', () => {
  const seen: Seen[] = [];
  let upstream: Server;
  let proxy: CredentialProxy;
  let proxyUrl: string;
  const stubs = new StubRegistry();
  let stub: string;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push({ headers: req.headers, path: req.url ?? '' });
      if (req.method === 'GET' && req.headers.upgrade) {
        res.writeHead(426, { 'content-type': 'text/plain' });
        res.end('upgrade required');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"type":"response.created"}\n\n');
      // The rest arrives 400 ms later: the proxy must not hold the first event back.
      setTimeout(() => res.end('data: {"type":"response.completed"}\n\n'), 400);
    });
    const upstreamUrl = await listen(upstream);
    proxy = new CredentialProxy({ upstream: upstreamUrl, stubs, realKey: () => REAL_KEY, log: silentLogger() });
    proxyUrl = await proxy.listen('127.0.0.1', 0);
    stub = stubs.mint('eng');
  });

  afterAll(async () => {
    await proxy.close();
    await new Promise((r) => upstream.close(r));
  });

  it('refuses a missing or unknown stub with 401 and forwards nothing', async () => {
    const before = seen.length;
    expect((await get(`${proxyUrl}/v1/responses`, {}, '{}')).status).toBe(401);
    expect((await get(`${proxyUrl}/v1/responses`, { authorization: 'Bearer crs_not-a-real-stub-000000000' }, '{}')).status).toBe(401);
    expect(seen.length).toBe(before);
  });

  it('swaps the stub for the real key and streams SSE without buffering', async () => {
    const res = await get(`${proxyUrl}/v1/responses`, { authorization: `Bearer ${stub}`, 'content-type': 'application/json', connection: 'keep-alive, x-hop', 'x-hop': '1' }, '{"model":"m"}');
    expect(res.status).toBe(200);
    expect(res.body).toContain('response.completed');
    expect(res.endAt - res.firstChunkAt).toBeGreaterThanOrEqual(300);
    const last = seen.at(-1)!;
    expect(last.path).toBe('/v1/responses');
    expect(last.headers.authorization).toBe(`Bearer ${REAL_KEY}`);
    expect(last.headers['x-hop']).toBeUndefined();
    expect(proxy.snapshot().requestsByGroup.eng).toBeGreaterThanOrEqual(1);
  });

  it('passes a WebSocket upgrade attempt through (upstream answers 426)', async () => {
    const port = Number(new URL(proxyUrl).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`GET /v1/responses HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nauthorization: Bearer ${stub}\r\n\r\n`);
      });
      let data = '';
      socket.on('data', (c) => (data += c.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1.1 426/);
    expect(seen.at(-1)?.headers.authorization).toBe(`Bearer ${REAL_KEY}`);
  });

  it('revoked stubs stop working', async () => {
    const temp = stubs.mint('tmp');
    stubs.revoke(temp);
    expect((await get(`${proxyUrl}/v1/responses`, { authorization: `Bearer ${temp}` }, '{}')).status).toBe(401);
  });

  it('answers a clear 502 when the upstream is down', async () => {
    const dead = new CredentialProxy({ upstream: 'http://127.0.0.1:1', stubs, realKey: () => REAL_KEY, log: silentLogger() });
    const url = await dead.listen('127.0.0.1', 0);
    try {
      const res = await get(`${url}/v1/responses`, { authorization: `Bearer ${stub}` }, '{}');
      expect(res.status).toBe(502);
      expect(res.body).toContain('could not be reached');
      expect(res.body).not.toContain(REAL_KEY);
    } finally {
      await dead.close();
    }
  });
});
