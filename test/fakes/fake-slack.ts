/**
 * A fake Slack for tests that run the real @slack/bolt: the Web API methods the relay calls, the
 * Socket Mode WebSocket (`apps.connections.open` → ws://…/link), `response_url`, the external file
 * upload URL and private file downloads. Binds 127.0.0.1 on a free port; records everything.
 * Wire facts and pitfalls: ../../../shared/PLATFORM-FAKES.md.
 *
 * Scripted failures: `failNext('chat.postMessage', { status: 429, retryAfter: 1 })` or
 * `{ error: 'channel_not_found' }` answer the next call of that method once each, in order.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export const TEAM = 'T0TEAM';
export const BOT_USER = 'U0BOT';
export const BOT_ID = 'B0BOT';
export const APP_ID = 'A0APP';

export interface ApiCall {
  method: string;
  token: string | undefined;
  args: Record<string, string>;
  /** 'ok', the Slack error string, or 'http-<status>' for a scripted HTTP failure. */
  outcome: string;
}

export interface SlackMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  user: string;
  text: string;
  bot_id?: string;
  /** Earlier texts, oldest first (chat.update). */
  edits: string[];
}

export type Failure = { status: 429; retryAfter: number } | { status: number } | { error: string };

export interface FakeSlackOptions {
  botToken: string;
  appToken: string;
  users?: Record<string, string>;
}

export async function startFakeSlack(options: FakeSlackOptions) {
  const calls: ApiCall[] = [];
  const messages: SlackMessage[] = [];
  const ephemerals: Array<{ channel: string; user: string; text: string; thread_ts?: string }> = [];
  const responses: Array<{ path: string; body: Record<string, unknown> }> = [];
  const uploads = new Map<string, { filename: string; length: number; body: string; completed?: Record<string, string> }>();
  const files = new Map<string, { name: string; content: Buffer; mimetype: string; chunked: boolean }>();
  const downloads: Array<{ url: string; token: string | undefined }> = [];
  const acks: Array<{ envelope_id: string; payload: unknown }> = [];
  const failures = new Map<string, Failure[]>();
  const sockets = new Set<WebSocket>();
  let tsCounter = 0;
  let fileCounter = 0;
  let waiters: Array<() => void> = [];
  const notify = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const nextTs = () => `1700000000.${String(++tsCounter).padStart(6, '0')}`;
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

  const api = (method: string, a: Record<string, string>): Record<string, unknown> => {
    const find = (channel: string | undefined, ts: string | undefined) => messages.find((m) => m.channel === channel && m.ts === ts);
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'codex', team_id: TEAM, user_id: BOT_USER, bot_id: BOT_ID };
      case 'apps.connections.open':
        return { ok: true, url: `${wsUrl}/link/?ticket=${randomUUID()}` };
      case 'chat.postMessage': {
        if (!a.channel) return { ok: false, error: 'channel_not_found' };
        if (!a.text) return { ok: false, error: 'no_text' };
        const m: SlackMessage = { channel: a.channel, ts: nextTs(), user: BOT_USER, bot_id: BOT_ID, text: a.text, edits: [], ...(a.thread_ts ? { thread_ts: a.thread_ts } : {}) };
        messages.push(m);
        return { ok: true, channel: m.channel, ts: m.ts, message: { type: 'message', text: m.text, user: m.user, ts: m.ts, bot_id: BOT_ID } };
      }
      case 'chat.update': {
        const m = find(a.channel, a.ts);
        if (!m) return { ok: false, error: 'message_not_found' };
        m.edits.push(m.text);
        m.text = a.text ?? '';
        return { ok: true, channel: m.channel, ts: m.ts, text: m.text };
      }
      case 'chat.postEphemeral':
        ephemerals.push({ channel: a.channel ?? '', user: a.user ?? '', text: a.text ?? '', ...(a.thread_ts ? { thread_ts: a.thread_ts } : {}) });
        return { ok: true, message_ts: nextTs() };
      case 'conversations.replies': {
        const thread = messages.filter((m) => m.channel === a.channel && (m.ts === a.ts || m.thread_ts === a.ts));
        if (thread.length === 0) return { ok: false, error: 'thread_not_found' };
        return { ok: true, has_more: false, messages: thread.map(({ edits: _e, channel: _c, ...m }) => ({ type: 'message', ...m })) };
      }
      case 'users.info': {
        const name = options.users?.[a.user ?? ''];
        return name ? { ok: true, user: { id: a.user, name, real_name: name, profile: { display_name: name } } } : { ok: false, error: 'user_not_found' };
      }
      case 'files.getUploadURLExternal': {
        const id = `F0UP${++fileCounter}`;
        uploads.set(id, { filename: a.filename ?? '', length: Number(a.length), body: '' });
        return { ok: true, upload_url: `${httpUrl}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const list = JSON.parse(a.files ?? '[]') as Array<{ id: string; title?: string }>;
        for (const f of list) {
          const u = uploads.get(f.id);
          if (!u) return { ok: false, error: 'file_not_found' };
          u.completed = { ...a, title: f.title ?? '' };
        }
        return { ok: true, files: list.map((f) => ({ id: f.id, title: f.title })) };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = await readBody(req);
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (req.method === 'POST' && url.pathname.startsWith('/api/')) {
        const method = url.pathname.slice('/api/'.length);
        const type = req.headers['content-type'] ?? '';
        const args = type.includes('json') ? (JSON.parse(body.toString() || '{}') as Record<string, string>) : Object.fromEntries(new URLSearchParams(body.toString()));
        const wanted = method === 'apps.connections.open' ? options.appToken : options.botToken;
        const failure = failures.get(method)?.shift();
        if (failure && 'status' in failure) {
          calls.push({ method, token, args, outcome: `http-${failure.status}` });
          notify();
          return json(res, failure.status, { ok: false, error: 'ratelimited' }, 'retryAfter' in failure ? { 'retry-after': String(failure.retryAfter) } : {});
        }
        const result = token !== wanted ? { ok: false, error: 'invalid_auth' } : failure ? { ok: false, error: failure.error } : api(method, args);
        calls.push({ method, token, args, outcome: result.ok ? 'ok' : String(result.error) });
        notify();
        return json(res, 200, result);
      }
      if (req.method === 'POST' && url.pathname.startsWith('/upload/')) {
        const upload = uploads.get(url.pathname.slice('/upload/'.length));
        if (!upload) return json(res, 404, { ok: false });
        upload.body = body.toString('utf8');
        notify();
        return void res.writeHead(200, { 'content-type': 'text/plain' }).end('OK - 1');
      }
      if (req.method === 'POST' && url.pathname.startsWith('/response/')) {
        responses.push({ path: url.pathname, body: JSON.parse(body.toString() || '{}') as Record<string, unknown> });
        notify();
        return json(res, 200, { ok: true });
      }
      if (req.method === 'GET' && url.pathname.startsWith('/files/')) {
        downloads.push({ url: `${httpUrl}${req.url}`, token });
        const file = files.get(url.pathname.split('/')[2] ?? '');
        if (token !== options.botToken) return void res.writeHead(401).end();
        if (!file) return void res.writeHead(404).end();
        // `chunked`: no content-length, so only the bytes received can tell the size.
        res.writeHead(200, { 'content-type': file.mimetype, ...(file.chunked ? {} : { 'content-length': String(file.content.length) }) });
        return void res.end(file.content);
      }
      if (req.method === 'GET' && url.pathname === '/redirect') {
        return void res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
      }
      res.writeHead(404).end();
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith('/link')) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => {
        sockets.delete(ws);
        notify();
      });
      ws.on('message', (data) => {
        try {
          const msg = JSON.parse(String(data)) as { envelope_id?: string; payload?: unknown };
          if (msg.envelope_id) acks.push({ envelope_id: msg.envelope_id, payload: msg.payload });
        } catch {
          // the client only sends JSON acks; anything else is ignored
        }
        notify();
      });
      ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: APP_ID } }));
      notify();
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const httpUrl = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}`;

  const send = (envelope: unknown): void => {
    const raw = typeof envelope === 'string' ? envelope : JSON.stringify(envelope);
    for (const ws of sockets) ws.send(raw);
  };

  const fake = {
    url: httpUrl,
    apiUrl: `${httpUrl}/api/`,
    calls,
    messages,
    ephemerals,
    responses,
    uploads,
    downloads,
    acks,
    nextTs,
    connections: () => sockets.size,
    failNext(method: string, ...list: Failure[]): void {
      failures.set(method, [...(failures.get(method) ?? []), ...list]);
    },
    /** A human message already in the channel (for thread context); returns its ts. */
    seedMessage(channel: string, user: string, text: string, threadTs?: string): string {
      const ts = nextTs();
      messages.push({ channel, ts, user, text, edits: [], ...(threadTs ? { thread_ts: threadTs } : {}) });
      return ts;
    },
    /** A private file the bot may download with its token; returns the `files[]` entry of an event. */
    addFile(name: string, content: string | Buffer, mimetype = 'text/plain', opts: { chunked?: boolean } = {}) {
      const id = `F0DL${++fileCounter}`;
      const bytes = Buffer.from(content);
      files.set(id, { name, content: bytes, mimetype, chunked: opts.chunked ?? false });
      const url = `${httpUrl}/files/${id}/${encodeURIComponent(name)}`;
      return { id, name, title: name, mimetype, size: bytes.length, mode: 'hosted', url_private: url, url_private_download: url };
    },
    /** Sends an Events API envelope; returns its envelope id. */
    sendEvent(event: Record<string, unknown>, opts: { eventId?: string; retryAttempt?: number } = {}): string {
      const envelopeId = randomUUID();
      send({
        envelope_id: envelopeId,
        type: 'events_api',
        accepts_response_payload: false,
        retry_attempt: opts.retryAttempt ?? 0,
        retry_reason: opts.retryAttempt ? 'timeout' : '',
        payload: {
          type: 'event_callback',
          team_id: TEAM,
          api_app_id: APP_ID,
          event_id: opts.eventId ?? `Ev${randomUUID().slice(0, 8)}`,
          event_time: 1700000000,
          authorizations: [{ team_id: TEAM, user_id: BOT_USER, is_bot: true, is_enterprise_install: false }],
          event: { event_ts: event.ts, ...event },
        },
      });
      return envelopeId;
    },
    /** Sends `/codex <text>`; the answer arrives at `responseUrl` (see `responses`). */
    sendCommand(p: { text: string; user: string; channel: string; channelName?: string }): { envelopeId: string; responseUrl: string } {
      const envelopeId = randomUUID();
      const responseUrl = `${httpUrl}/response/${envelopeId}`;
      send({
        envelope_id: envelopeId,
        type: 'slash_commands',
        accepts_response_payload: true,
        payload: {
          token: 'verification-token',
          command: '/codex',
          text: p.text,
          team_id: TEAM,
          team_domain: 'fake',
          channel_id: p.channel,
          channel_name: p.channelName ?? (p.channel.startsWith('D') ? 'directmessage' : 'general'),
          user_id: p.user,
          user_name: options.users?.[p.user] ?? p.user.toLowerCase(),
          api_app_id: APP_ID,
          is_enterprise_install: 'false',
          response_url: responseUrl,
          trigger_id: `${envelopeId}.trigger`,
        },
      });
      return { envelopeId, responseUrl };
    },
    /** Anything at all down the socket, for malformed-envelope tests. */
    sendRaw: send,
    /** Resolves when `check` returns a value other than undefined/false; rejects after `timeoutMs`. */
    async waitFor<T>(check: () => T | undefined | false, timeoutMs = 60_000, what = 'condition'): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = check();
        if (value !== undefined && value !== false) return value;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`fake Slack: timed out waiting for ${what}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    /** Bot messages in a thread (or a DM's top level when `threadTs` is undefined), in order. */
    botMessages(channel: string, threadTs: string | undefined): SlackMessage[] {
      return messages.filter((m) => m.channel === channel && m.bot_id === BOT_ID && m.thread_ts === threadTs);
    },
    /** Resolves once every Socket Mode connection has closed (bolt's stop does not wait for it). */
    waitForDisconnect(timeoutMs = 10_000): Promise<true> {
      return fake.waitFor(() => sockets.size === 0, timeoutMs, 'socket close');
    },
    async close(): Promise<void> {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

export type FakeSlack = Awaited<ReturnType<typeof startFakeSlack>>;
