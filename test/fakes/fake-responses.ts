/**
 * A fake OpenAI Responses API for tests that run the real codex binary: `POST /v1/responses`
 * answered with Server-Sent Events, speaking the wire format codex expects (see
 * APP-SERVER-NOTES §7). Only node:http; binds 127.0.0.1 on a free port.
 *
 * Replies are chosen per request: first from the queue (`script([...])`), then from the handler
 * (`script(fn)`, may return undefined), then the default — a text answer to a tool output, or
 * `echo: <last user text>`. WebSocket upgrades get HTTP 426 so codex falls back to HTTP at once.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; null when the body was empty or not JSON. */
  body: unknown;
}

export type Reply =
  | { kind: 'text'; text: string; deltas?: string[]; delayMs?: number }
  | { kind: 'shellCall'; cmd: string; delayMs?: number }
  | { kind: 'applyPatch'; patch: string; delayMs?: number }
  | { kind: 'error'; status: number; body: unknown; headers?: Record<string, string>; delayMs?: number }
  | { kind: 'dropAfterCreated'; delayMs?: number }
  | { kind: 'hang' }
  | { kind: 'responseFailed'; message: string; delayMs?: number };

export type ScriptHandler = (request: RecordedRequest) => Reply | undefined;

/** Reply builders. `delayMs` waits after `response.created` (the stream is open meanwhile). */
export const reply = {
  text: (text: string, opts: { deltas?: string[]; delayMs?: number } = {}): Reply => ({ kind: 'text', text, ...opts }),
  shellCall: (cmd: string, opts: { delayMs?: number } = {}): Reply => ({ kind: 'shellCall', cmd, ...opts }),
  /** A freeform `apply_patch` call (`*** Begin Patch…`); codex offers that tool only to catalog models such as gpt-5.5. */
  applyPatch: (patch: string, opts: { delayMs?: number } = {}): Reply => ({ kind: 'applyPatch', patch, ...opts }),
  error: (
    status: number,
    body: unknown = { error: { message: `mock ${status}`, type: 'server_error', code: null } },
    headers?: Record<string, string>,
    opts: { delayMs?: number } = {},
  ): Reply => ({ kind: 'error', status, body, headers, ...opts }),
  dropAfterCreated: (opts: { delayMs?: number } = {}): Reply => ({ kind: 'dropAfterCreated', ...opts }),
  hang: (): Reply => ({ kind: 'hang' }),
  responseFailed: (message: string, opts: { delayMs?: number } = {}): Reply => ({ kind: 'responseFailed', message, ...opts }),
};

export interface FakeResponses {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + '/v1' — the provider base_url. */
  baseUrl: string;
  /** Every request received, in order (including WebSocket upgrade attempts). */
  requests: RecordedRequest[];
  /** Queue replies (array, consumed in order) or set the handler consulted when the queue is empty. */
  script(replies: Reply[] | ScriptHandler): void;
  /** Resolves once `count` POSTs to /v1/responses have been received. */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

// ---- request inspection (also handy in assertions) --------------------------------------------

type InputItem = { type?: string; role?: string; content?: unknown; output?: unknown };

/** The `input` array of a Responses request body ([] when absent). */
export function inputItems(body: unknown): InputItem[] {
  const input = typeof body === 'object' && body !== null ? (body as { input?: unknown }).input : undefined;
  return Array.isArray(input) ? (input as InputItem[]) : [];
}

function textOf(item: InputItem): string {
  if (typeof item.content === 'string') return item.content;
  if (!Array.isArray(item.content)) return '';
  return item.content.map((p: { text?: unknown }) => (typeof p?.text === 'string' ? p.text : '')).join('');
}

/** Texts of the `user` / `assistant` messages in a request body, in order. */
export function messageTexts(body: unknown, role: 'user' | 'assistant'): string[] {
  return inputItems(body)
    .filter((i) => (i.type === 'message' || i.type === undefined) && i.role === role)
    .map(textOf);
}

function defaultReply(body: unknown): Reply {
  const last = inputItems(body).at(-1);
  if (last?.type === 'function_call_output' || last?.type === 'custom_tool_call_output') {
    const output = typeof last.output === 'string' ? last.output : JSON.stringify(last.output);
    return reply.text(`tool finished: ${output.slice(0, 200)}`);
  }
  return reply.text(`echo: ${messageTexts(body, 'user').at(-1) ?? ''}`);
}

// ---- SSE framing ------------------------------------------------------------------------------

function sse(data: { type: string } & Record<string, unknown>): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

const USAGE = {
  input_tokens: 10,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 5,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 15,
};

function completed(id: string): string {
  return sse({ type: 'response.completed', response: { id, usage: USAGE } });
}

function textEvents(id: string, text: string, deltas: string[] | undefined): string[] {
  const msgId = `msg_${id}`;
  const done = { type: 'message', role: 'assistant', id: msgId, content: [{ type: 'output_text', text, annotations: [] }] };
  const events = [sse({ type: 'response.output_item.added', output_index: 0, item: { type: 'message', role: 'assistant', id: msgId, content: [] } })];
  for (const delta of deltas ?? [text]) {
    events.push(sse({ type: 'response.output_text.delta', item_id: msgId, output_index: 0, content_index: 0, delta }));
  }
  events.push(sse({ type: 'response.output_item.done', output_index: 0, item: done }), completed(id));
  return events;
}

function shellEvents(id: string, cmd: string): string[] {
  const item = { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name: 'exec_command', arguments: JSON.stringify({ cmd }) };
  return [sse({ type: 'response.output_item.done', output_index: 0, item }), completed(id)];
}

function applyPatchEvents(id: string, patch: string): string[] {
  const item = { type: 'custom_tool_call', id: `ctc_${id}`, call_id: `call_${id}`, name: 'apply_patch', input: patch };
  return [sse({ type: 'response.output_item.done', output_index: 0, item }), completed(id)];
}

// ---- server -----------------------------------------------------------------------------------

export async function startFakeResponses({ host = '127.0.0.1', port = 0 }: { host?: string; port?: number } = {}): Promise<FakeResponses> {
  const requests: RecordedRequest[] = [];
  const queue: Reply[] = [];
  let handler: ScriptHandler | undefined;
  let seq = 0;
  let waiters: Array<() => void> = [];

  const send = (res: ServerResponse, r: Reply): void => {
    const id = `resp_${++seq}`;
    if (r.kind === 'error') {
      const body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      const answer = (): void => void (res.destroyed || res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers }).end(body));
      if (r.delayMs) setTimeout(answer, r.delayMs);
      else answer();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (r.kind === 'hang') {
      res.write(sse({ type: 'response.created', response: { id } })); // held open until the client goes away or close()
      return;
    }
    const finish = (): void => {
      if (res.destroyed) return;
      if (r.kind === 'dropAfterCreated') res.socket?.destroy();
      else if (r.kind === 'responseFailed') res.end(sse({ type: 'response.failed', response: { id, error: { code: 'server_error', message: r.message } } }));
      else if (r.kind === 'applyPatch') res.end(applyPatchEvents(id, r.patch).join(''));
      else res.end((r.kind === 'text' ? textEvents(id, r.text, r.deltas) : shellEvents(id, r.cmd)).join(''));
    };
    // The rest waits until `response.created` is flushed, so a drop is a real mid-stream drop.
    res.write(sse({ type: 'response.created', response: { id } }), () => {
      if (!r.delayMs) return finish();
      const timer = setTimeout(finish, r.delayMs);
      res.once('close', () => clearTimeout(timer));
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = null;
      }
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body };
      requests.push(recorded);
      if (req.method === 'GET' && req.headers.upgrade) {
        res.writeHead(426, { 'content-type': 'text/plain' }).end('websocket not supported by fake');
        return;
      }
      if (req.method !== 'POST' || path !== '/v1/responses') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      for (const wake of waiters) wake();
      const r = queue.shift() ?? handler?.(recorded) ?? defaultReply(body);
      send(res, r);
    });
  });
  // Upgrade requests bypass the request handler once an 'upgrade' listener exists: answer raw.
  server.on('upgrade', (req, socket) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: null });
    socket.end('HTTP/1.1 426 Upgrade Required\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: actual } = server.address() as AddressInfo;
  const url = `http://${host}:${actual}`;
  const posts = (): RecordedRequest[] => requests.filter((r) => r.method === 'POST' && r.path === '/v1/responses');

  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    script(replies) {
      if (typeof replies === 'function') handler = replies;
      else queue.push(...replies);
    },
    waitForRequests(count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (posts().length < count) return false;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== wake);
          resolve(posts());
          return true;
        };
        const wake = (): void => void setImmediate(check);
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== wake);
          reject(new Error(`fake responses: ${posts().length}/${count} requests after ${timeoutMs} ms`));
        }, timeoutMs);
        if (!check()) waiters.push(wake);
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
