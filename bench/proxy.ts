/**
 * Credential proxy benchmark: what the proxy adds to a streamed model response, against the same
 * fake upstream called directly, in the same run.
 *
 * Three processes, as in production (model API elsewhere, proxy in the relay, client in a container),
 * so the proxied path is not charged for sharing one event loop with the upstream and the client:
 *   upstream  child process, node:http on 127.0.0.1: POST /v1/responses → `text/event-stream`,
 *             1 MiB per response as 256 SSE events of 4 KiB.
 *   proxy     this process: the real CredentialProxy (stub check, key swap, hop-by-hop stripping,
 *             streaming pipe) on 127.0.0.1.
 *   client    child process with keep-alive agents (codex keeps its provider connection open);
 *             alternates direct and proxied requests so both see the same machine noise.
 * Two upstream pacings, 200 responses each way per pacing:
 *   burst     all 256 events written as fast as the socket takes them: a throughput worst case, no
 *             real model sends 1 MiB that fast;
 *   streamed  one event per millisecond (about 0.26 s per response), like a fast model stream.
 * Reported: time to first byte and to last byte (p50 / p99), the proxy's added first-byte latency,
 * and the proxied/direct last-byte ratio. Targets (issue 4): ratio ≤ 1.05 for 1 MB streamed, ≤ 2 ms
 * added to first byte at p99.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { silentLogger } from '../src/logger.js';
import { CredentialProxy } from '../src/vault/credential-proxy.js';
import { StubRegistry } from '../src/vault/stubs.js';
import { median, ms, percentile } from './stats.js';

const RESPONSES = 200;
const WARMUP = 20;
const RESPONSE_BYTES = 1024 * 1024;
const EVENT_BYTES = 4096;
const STREAM_EVENT_INTERVAL_MS = 1;
const KEY = 'sk-bench-proxy-not-a-real-key-0000';

export type Pacing = 'burst' | 'streamed';

export interface ProxyPacingResults {
  pacing: Pacing;
  directTtfbP50Ms: number;
  directTtfbP99Ms: number;
  proxiedTtfbP50Ms: number;
  proxiedTtfbP99Ms: number;
  addedTtfbP50Ms: number;
  addedTtfbP99Ms: number;
  directTtlbP50Ms: number;
  directTtlbP99Ms: number;
  proxiedTtlbP50Ms: number;
  proxiedTtlbP99Ms: number;
  ttlbRatioP50: number;
  ttlbRatioP99: number;
}

interface Sample {
  ttfb: number;
  ttlb: number;
}

/** The fake upstream, as plain CommonJS for `node -e`. Prints its port, then serves until killed. */
const UPSTREAM_JS = `
const http = require('node:http');
const [responseBytes, eventBytes, intervalMs] = process.argv.slice(1).map(Number);
const head = 'data: {"type":"response.output_text.delta","delta":"';
const tail = '"}\\n\\n';
const event = Buffer.from(head + 'x'.repeat(eventBytes - head.length - tail.length) + tail);
const events = responseBytes / eventBytes;
const keys = new Set();
const server = http.createServer((req, res) => {
  keys.add(String(req.headers.authorization));
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-keys-seen': String(keys.size) });
    let sent = 0;
    const next = () => {
      while (sent < events) {
        sent += 1;
        if (sent === events) return void res.end(event);
        const more = res.write(event);
        if (intervalMs > 0) return void setTimeout(next, intervalMs);
        if (!more) return void res.once('drain', next);
      }
    };
    next();
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/** The client, as plain CommonJS for `node -e`. Prints one JSON line {direct, proxied} of samples. */
const CLIENT_JS = `
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const cfg = JSON.parse(process.argv[1]);
const agents = { direct: new http.Agent({ keepAlive: true, maxSockets: 1 }), proxied: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
function once(path) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let ttfb = 0, bytes = 0;
    const req = http.request(cfg[path].url + '/v1/responses', { method: 'POST', agent: agents[path], headers: { 'content-type': 'application/json', authorization: 'Bearer ' + cfg[path].token } }, (res) => {
      if (res.statusCode !== 200) reject(new Error('HTTP ' + res.statusCode + ' on ' + path));
      res.on('data', (c) => { if (bytes === 0) ttfb = performance.now() - start; bytes += c.length; });
      res.on('end', () => bytes === cfg.bytes ? resolve({ ttfb, ttlb: performance.now() - start }) : reject(new Error(path + ': ' + bytes + ' bytes')));
    });
    req.on('error', reject);
    req.end('{"model":"gpt-test","stream":true}');
  });
}
(async () => {
  const out = { direct: [], proxied: [] };
  for (let i = 0; i < cfg.warmup + cfg.count; i += 1) {
    // Alternate which path goes first, so neither always follows the other's GC or cache effects.
    for (const path of i % 2 ? ['proxied', 'direct'] : ['direct', 'proxied']) {
      const s = await once(path);
      if (i >= cfg.warmup) out[path].push(s);
    }
  }
  console.log(JSON.stringify(out));
  agents.direct.destroy(); agents.proxied.destroy();
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Runs `node -e code args…`; resolves with its first stdout line (the child keeps running). */
function spawnNode(code: string, args: string[]): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(process.execPath, ['-e', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const firstLine = new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench child exited with ${code} before answering`)));
  });
  return { child, firstLine };
}

async function runPacing(pacing: Pacing, stubs: StubRegistry, stub: string, print: (line: string) => void): Promise<ProxyPacingResults> {
  const interval = pacing === 'streamed' ? STREAM_EVENT_INTERVAL_MS : 0;
  const upstream = spawnNode(UPSTREAM_JS, [String(RESPONSE_BYTES), String(EVENT_BYTES), String(interval)]);
  try {
    const port = Number(await upstream.firstLine);
    const upstreamUrl = `http://127.0.0.1:${port}`;
    const proxy = new CredentialProxy({ upstream: upstreamUrl, stubs, realKey: () => KEY, log: silentLogger() });
    const url = await proxy.listen('127.0.0.1', 0);
    try {
      print(`(p) credential proxy, ${pacing}: ${RESPONSES} responses of ${RESPONSE_BYTES / 1024} KiB (${RESPONSE_BYTES / EVENT_BYTES} SSE events${interval ? `, one per ${interval} ms` : ''}) each way …`);
      const cfg = { count: RESPONSES, warmup: WARMUP, bytes: RESPONSE_BYTES, direct: { url: upstreamUrl, token: KEY }, proxied: { url, token: stub } };
      const client = spawnNode(CLIENT_JS, [JSON.stringify(cfg)]);
      const { direct, proxied } = JSON.parse(await client.firstLine) as { direct: Sample[]; proxied: Sample[] };
      const stats = proxy.snapshot();
      if (stats.requestsByGroup.bench !== WARMUP + RESPONSES || stats.rejected !== 0) throw new Error(`proxy counted ${JSON.stringify(stats)}`);
      return summarize(pacing, direct, proxied);
    } finally {
      await proxy.close();
    }
  } finally {
    upstream.child.kill();
  }
}

function summarize(pacing: Pacing, direct: Sample[], proxied: Sample[]): ProxyPacingResults {
  const ttfb = (s: Sample[]) => s.map((x) => x.ttfb);
  const ttlb = (s: Sample[]) => s.map((x) => x.ttlb);
  return {
    pacing,
    directTtfbP50Ms: median(ttfb(direct)),
    directTtfbP99Ms: percentile(ttfb(direct), 99),
    proxiedTtfbP50Ms: median(ttfb(proxied)),
    proxiedTtfbP99Ms: percentile(ttfb(proxied), 99),
    addedTtfbP50Ms: median(ttfb(proxied)) - median(ttfb(direct)),
    addedTtfbP99Ms: percentile(ttfb(proxied), 99) - percentile(ttfb(direct), 99),
    directTtlbP50Ms: median(ttlb(direct)),
    directTtlbP99Ms: percentile(ttlb(direct), 99),
    proxiedTtlbP50Ms: median(ttlb(proxied)),
    proxiedTtlbP99Ms: percentile(ttlb(proxied), 99),
    ttlbRatioP50: median(ttlb(proxied)) / median(ttlb(direct)),
    ttlbRatioP99: percentile(ttlb(proxied), 99) / percentile(ttlb(direct), 99),
  };
}

export async function runProxyBench(print: (line: string) => void): Promise<ProxyPacingResults[]> {
  const stubs = new StubRegistry();
  const stub = stubs.mint('bench');
  const results: ProxyPacingResults[] = [];
  for (const pacing of ['streamed', 'burst'] as const) results.push(await runPacing(pacing, stubs, stub, print));
  const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
  print('');
  print(`credential proxy (same fake upstream, same run, ${RESPONSES} × 1 MiB SSE each way; upstream, proxy, client in separate processes)`);
  for (const r of results) {
    const targets = r.pacing === 'streamed';
    print(`  ${r.pacing}${targets ? '' : ' (worst case, informational)'}`);
    print(`    first byte  direct  p50 ${ms(r.directTtfbP50Ms)}, p99 ${ms(r.directTtfbP99Ms)}; proxied p50 ${ms(r.proxiedTtfbP50Ms)}, p99 ${ms(r.proxiedTtfbP99Ms)}`);
    print(`                added   p50 ${ms(r.addedTtfbP50Ms)}, p99 ${ms(r.addedTtfbP99Ms)}${targets ? `   [target p99 ≤ 2 ms: ${verdict(r.addedTtfbP99Ms <= 2)}]` : ''}`);
    print(`    last byte   direct  p50 ${ms(r.directTtlbP50Ms)}, p99 ${ms(r.directTtlbP99Ms)}; proxied p50 ${ms(r.proxiedTtlbP50Ms)}, p99 ${ms(r.proxiedTtlbP99Ms)}`);
    print(`                proxied/direct p50 ${r.ttlbRatioP50.toFixed(3)}, p99 ${r.ttlbRatioP99.toFixed(3)}${targets ? `   [target ≤ 1.05: ${verdict(r.ttlbRatioP50 <= 1.05)}]` : ''}`);
  }
  return results;
}
