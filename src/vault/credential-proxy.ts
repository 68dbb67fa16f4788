/**
 * Built-in credential proxy. Agent containers send model requests here with their stub token; the
 * proxy checks the stub, swaps in the real key from the vault and streams the request to the one
 * configured upstream. Responses (SSE) are piped through without buffering; WebSocket upgrades are
 * passed through the same way. The proxy binds to the relay's Docker network gateways, never 0.0.0.0:
 * `listen` is called once per address (the open network's gateway, and the locked network's when a
 * locked group starts), all sharing one stub registry and one set of counters.
 *
 * Invariants: the real key is only ever written into the upstream request; a missing or unknown
 * stub gets 401 before anything is forwarded; logs carry group, method, path and status only.
 */
import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import type { StubRegistry } from './stubs.js';

/** Headers that describe one connection hop and must not be forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

export interface CredentialProxyOptions {
  upstream: string;
  stubs: StubRegistry;
  /** Returns the current real key; read per request so a key rotated in the vault applies at once. */
  realKey: () => string | undefined;
  log: Logger;
}

export interface ProxyStats {
  requestsByGroup: Record<string, number>;
  rejected: number;
  upstreamFailures: number;
}

export function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(value);
  return match?.[1];
}

/** Copies end-to-end headers, dropping hop-by-hop ones and any named in `Connection`. */
export function forwardableHeaders(headers: IncomingHttpHeaders, keepUpgrade = false): Record<string, string | string[]> {
  const connectionListed = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const isUpgradeHeader = lower === 'upgrade' || lower === 'connection';
    if (keepUpgrade && isUpgradeHeader) {
      out[lower] = value;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || connectionListed.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

export class CredentialProxy {
  private readonly servers: Server[] = [];
  /** Upgraded (WebSocket) connections leave the server's bookkeeping; close() ends them itself. */
  private readonly tunnels = new Set<Duplex>();
  /** Own keep-alive pool to the upstream: no TCP/TLS handshake per model request (bench/proxy.ts). */
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly upstream: URL;
  private readonly stats: ProxyStats = { requestsByGroup: {}, rejected: 0, upstreamFailures: 0 };

  constructor(private readonly options: CredentialProxyOptions) {
    this.upstream = new URL(options.upstream);
    this.agent = this.upstream.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  /**
   * Starts listening on one more address; resolves with the URL containers use (http://host:port).
   * May be called once per address. Throws on bind failure.
   */
  async listen(host: string, port = 0): Promise<string> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('upgrade', (req, socket, head) => this.handleUpgrade(req, socket, head));
    // SSE responses can stay open for minutes while the model thinks.
    server.requestTimeout = 0;
    server.headersTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.servers.push(server);
    const address = server.address() as AddressInfo;
    return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  }

  snapshot(): ProxyStats {
    return { ...this.stats, requestsByGroup: { ...this.stats.requestsByGroup } };
  }

  /** Stops every listener and drops open connections. Never throws. */
  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const socket of this.tunnels) socket.destroy();
    this.tunnels.clear();
    this.agent.destroy();
    await Promise.all(
      servers.map((server) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }

  private authorize(req: IncomingMessage): { group: string; key: string } | { status: number; message: string } {
    const stub = bearerOf(req.headers);
    const group = stub ? this.options.stubs.groupFor(stub) : undefined;
    if (!group) return { status: 401, message: 'unknown or revoked relay token' };
    const key = this.options.realKey();
    if (!key) return { status: 503, message: 'no OpenAI credential in the vault; run: npm run setup -- vault set-key' };
    return { group, key };
  }

  private upstreamUrl(path: string | undefined): URL {
    // Keep the upstream's own path prefix (if any) and append the container's path under it.
    const target = new URL(this.upstream.toString());
    const base = target.pathname.replace(/\/$/, '');
    const incoming = new URL(path ?? '/', 'http://x');
    target.pathname = `${base}${incoming.pathname}`;
    target.search = incoming.search;
    return target;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const auth = this.authorize(req);
    if ('status' in auth) {
      this.stats.rejected += 1;
      this.options.log.warn({ method: req.method, path: req.url, status: auth.status }, 'proxy refused request');
      sendJsonError(res, auth.status, auth.message);
      return;
    }
    this.stats.requestsByGroup[auth.group] = (this.stats.requestsByGroup[auth.group] ?? 0) + 1;
    const target = this.upstreamUrl(req.url);
    const headers = forwardableHeaders(req.headers);
    headers.authorization = `Bearer ${auth.key}`;
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamReq = send(target, { method: req.method, headers, agent: this.agent }, (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, forwardableHeaders(upstreamRes.headers));
      // Flush headers at once so the first SSE event is not held back.
      res.flushHeaders();
      // An upstream that resets mid-stream ends the client's response; it never reaches the process.
      upstreamRes.on('error', () => res.destroy());
      upstreamRes.pipe(res);
      this.options.log.debug({ group: auth.group, path: target.pathname, status: upstreamRes.statusCode }, 'proxied');
    });
    upstreamReq.on('error', (err) => {
      this.stats.upstreamFailures += 1;
      this.options.log.warn({ group: auth.group, path: target.pathname, err: err.message }, 'upstream unreachable');
      if (!res.headersSent) sendJsonError(res, 502, `the model API at ${this.upstream.origin} could not be reached (${err.message})`);
      else res.destroy();
    });
    req.on('aborted', () => upstreamReq.destroy());
    req.on('error', () => upstreamReq.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A client that resets before the tunnel is up must not raise an uncaught error.
    socket.on('error', () => socket.destroy());
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
    const auth = this.authorize(req);
    if ('status' in auth) {
      this.stats.rejected += 1;
      socket.end(`HTTP/1.1 ${auth.status} Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    this.stats.requestsByGroup[auth.group] = (this.stats.requestsByGroup[auth.group] ?? 0) + 1;
    const target = this.upstreamUrl(req.url);
    const headers = forwardableHeaders(req.headers, true);
    headers.authorization = `Bearer ${auth.key}`;
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamReq = send(target, { method: req.method, headers });
    upstreamReq.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
      const lines = [`HTTP/1.1 ${upstreamRes.statusCode} ${upstreamRes.statusMessage ?? ''}`];
      for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) lines.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upstreamHead.length) socket.write(upstreamHead);
      if (head.length) upstreamSocket.write(head);
      upstreamSocket.pipe(socket).pipe(upstreamSocket);
      const closeBoth = () => {
        socket.destroy();
        upstreamSocket.destroy();
      };
      socket.on('error', closeBoth);
      upstreamSocket.on('error', closeBoth);
    });
    upstreamReq.on('response', (upstreamRes) => {
      // Upstream declined the upgrade (e.g. 426): relay its answer as a plain HTTP response.
      const lines = [`HTTP/1.1 ${upstreamRes.statusCode} ${upstreamRes.statusMessage ?? ''}`, 'connection: close'];
      const body: Buffer[] = [];
      upstreamRes.on('data', (chunk: Buffer) => body.push(chunk));
      upstreamRes.on('end', () => {
        const payload = Buffer.concat(body);
        lines.push(`content-length: ${payload.length}`);
        socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), payload]));
      });
    });
    upstreamReq.on('error', (err) => {
      this.stats.upstreamFailures += 1;
      this.options.log.warn({ group: auth.group, err: err.message }, 'upstream unreachable (upgrade)');
      socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
    upstreamReq.end();
  }
}

function sendJsonError(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: { message: `codex-relay: ${message}`, type: 'relay_error', code: status } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
