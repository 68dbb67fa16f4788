/**
 * A fake Discord for tests that run the unmodified discord.js client: the REST API under
 * `http://127.0.0.1:PORT/api/v10` and the gateway (`ws` package) at `ws://127.0.0.1:PORT/gateway`.
 * It speaks the wire formats in PLATFORM-FAKES.md: HELLO → IDENTIFY → READY → GUILD_CREATE, acked
 * heartbeats, numeric snowflake ids, `channel_type: 1` DMs, interactions with `entitlements: []`.
 *
 * It enforces what the bot must respect (bot token on every REST call, 2,000-character content,
 * unknown channels → 10003) and records every REST call, message, thread and interaction reply so
 * tests assert on what a Discord user would see. Messages the bot posts come back over the gateway
 * as MESSAGE_CREATE, as on the real platform (the bot must ignore them).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const DISCORD_EPOCH = 1_420_070_400_000n;
let counter = 0n;
/** A numeric snowflake string, increasing, unique in this process. */
export function snowflake(): string {
  counter = (counter + 1n) % 4096n;
  return String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (BigInt(process.pid % 1024) << 12n) | counter);
}

export interface FakeUser { id: string; username: string; bot?: boolean }
export interface FakeMessage {
  id: string;
  channel_id: string;
  content: string;
  author: FakeUser;
  message_reference?: { message_id?: string };
  attachments: Array<{ filename: string; size: number }>;
  edits: string[];
}
export interface RestCall { method: string; path: string; body: unknown }
export interface InteractionReply { interactionId: string; kind: 'callback' | 'edit' | 'followup' | 'delete'; body: unknown }
/** A canned failure for the next matching REST call: an error response, or no answer at all. */
export type InjectedFailure = { status: number; body?: unknown; headers?: Record<string, string> } | { hang: true };
export interface FakeChannel { id: string; type: number; name?: string; parent_id?: string; guild_id?: string; owner_id?: string }

export interface FakeDiscord {
  /** http://127.0.0.1:PORT/api — what DISCORD_API_URL is set to. */
  apiUrl: string;
  token: string;
  appId: string;
  guildId: string;
  bot: FakeUser;
  /** A text channel of the guild, sent in GUILD_CREATE. */
  channelId: string;
  calls: RestCall[];
  messages: FakeMessage[];
  channels: Map<string, FakeChannel>;
  interactionReplies: InteractionReply[];
  /** Bodies of `PUT …/commands`, with the path they went to. */
  commandPuts: Array<{ path: string; body: unknown }>;
  identified: Promise<void>;
  messagesIn(channelId: string): FakeMessage[];
  /** A DM from `user` (MESSAGE_CREATE, channel_type 1, no guild_id). Returns the message id. */
  dm(user: FakeUser, content: string, extra?: Record<string, unknown>): string;
  /** A guild message in `channelId` (a text channel or a thread); `mention` prefixes `<@bot>`. */
  say(user: FakeUser, channelId: string, content: string, opts?: { mention?: boolean; extra?: Record<string, unknown> }): string;
  /** A `/codex <sub>` interaction. `channelId` undefined → the user's DM. Returns the interaction id. */
  command(user: FakeUser, sub: string, options?: Array<{ name: string; type: number; value: string }>, channelId?: string): string;
  dmChannelOf(user: FakeUser): string;
  /** Sends a raw frame to every identified gateway connection. */
  sendRaw(frame: string): void;
  /** Closes every gateway connection with `code` (the client should reconnect). Returns how many. */
  dropGateway(code?: number): number;
  /** Gateway IDENTIFYs received so far. */
  identifies(): number;
  /** The next `count` REST calls `method path…` (path prefix, after /api/v10) fail as given. */
  failNext(method: string, pathPrefix: string, failure: InjectedFailure, count?: number): void;
  dispatch(t: string, d: unknown): void;
  waitFor<T>(check: () => T | undefined | false, timeoutMs?: number, what?: string): Promise<T>;
  close(): Promise<void>;
}

export async function startFakeDiscord(): Promise<FakeDiscord> {
  const token = `${Buffer.from(snowflake()).toString('base64url')}.fake.${randomBytes(8).toString('hex')}`;
  const appId = snowflake();
  const guildId = snowflake();
  const channelId = snowflake();
  const bot: FakeUser = { id: appId, username: 'codex', bot: true };
  const calls: RestCall[] = [];
  const messages: FakeMessage[] = [];
  const interactionReplies: InteractionReply[] = [];
  const commandPuts: Array<{ path: string; body: unknown }> = [];
  const channels = new Map<string, FakeChannel>([[channelId, { id: channelId, type: 0, name: 'general', guild_id: guildId }]]);
  const dmChannels = new Map<string, string>();
  const interactionTokens = new Map<string, string>();
  const sockets = new Set<WebSocket>();
  let seq = 0;
  let identifyCount = 0;
  const failures: Array<{ method: string; pathPrefix: string; failure: InjectedFailure; left: number }> = [];
  let resolveIdentified!: () => void;
  const identified = new Promise<void>((r) => (resolveIdentified = r));

  const userJson = (u: FakeUser) => ({ id: u.id, username: u.username, global_name: u.username, discriminator: '0', avatar: null, bot: u.bot ?? false });
  const messageJson = (m: FakeMessage, extra: Record<string, unknown> = {}) => {
    const ch = channels.get(m.channel_id);
    return {
      id: m.id, channel_id: m.channel_id, type: m.message_reference ? 19 : 0, content: m.content, author: userJson(m.author),
      attachments: m.attachments.map((a) => ({ id: snowflake(), filename: a.filename, size: a.size, url: `https://cdn.invalid/${a.filename}`, proxy_url: `https://cdn.invalid/${a.filename}` })),
      embeds: [], mentions: [], mention_roles: [], mention_everyone: false, pinned: false, tts: false, flags: 0, components: [],
      timestamp: new Date().toISOString(), edited_timestamp: m.edits.length ? new Date().toISOString() : null,
      ...(m.message_reference ? { message_reference: { ...m.message_reference, channel_id: m.channel_id } } : {}),
      ...(ch?.guild_id ? { guild_id: ch.guild_id } : {}),
      ...extra,
    };
  };
  const dispatch = (t: string, d: unknown) => {
    seq += 1;
    for (const ws of sockets) ws.send(JSON.stringify({ op: 0, t, s: seq, d }));
  };
  const guildCreate = () => ({
    id: guildId, name: 'Test Guild', owner_id: snowflake(), unavailable: false, member_count: 2, large: false, joined_at: new Date().toISOString(),
    roles: [{ id: guildId, name: '@everyone', permissions: '1071698660928', position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
    channels: [...channels.values()].filter((c) => c.guild_id === guildId && c.type === 0).map((c) => ({ ...c, position: 0, permission_overwrites: [] })),
    threads: [], members: [{ user: userJson(bot), roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false }],
    emojis: [], stickers: [], features: [], presences: [], voice_states: [], stage_instances: [], guild_scheduled_events: [],
  });

  function dmChannelOf(user: FakeUser): string {
    let id = dmChannels.get(user.id);
    if (!id) {
      id = snowflake();
      dmChannels.set(user.id, id);
      channels.set(id, { id, type: 1 });
    }
    return id;
  }

  function inject(m: FakeMessage, extra: Record<string, unknown>): string {
    messages.push(m);
    dispatch('MESSAGE_CREATE', messageJson(m, extra));
    return m.id;
  }

  const problem = (status: number, code: number, message: string, errors?: unknown) => ({ status, body: { code, message, ...(errors ? { errors } : {}) } });

  /** Routes one REST call; returns status + JSON body (undefined body → 204). */
  function route(method: string, path: string, body: Record<string, unknown>): { status: number; body?: unknown } {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const [a, b, c, d, e] = parts;
    if (method === 'GET' && a === 'gateway' && b === 'bot') {
      return { status: 200, body: { url: `ws://127.0.0.1:${port}/gateway`, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 86_400_000, max_concurrency: 1 } } };
    }
    if (a === 'channels' && b) {
      const channel = channels.get(b);
      if (!channel) return problem(404, 10003, 'Unknown Channel');
      if (method === 'GET' && !c) return { status: 200, body: channel };
      if (method === 'POST' && c === 'typing') return { status: 204 };
      if (method === 'POST' && c === 'messages' && !d) {
        const content = typeof body.content === 'string' ? body.content : '';
        if (content.length > 2000) return problem(400, 50035, 'Invalid Form Body', { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }] } });
        const ref = body.message_reference as { message_id?: string } | undefined;
        const files = (body.attachments as Array<{ filename: string }> | undefined) ?? [];
        const m: FakeMessage = { id: snowflake(), channel_id: b, content, author: bot, attachments: files.map((f) => ({ filename: f.filename, size: 0 })), edits: [], ...(ref?.message_id ? { message_reference: { message_id: ref.message_id } } : {}) };
        inject(m, {});
        return { status: 200, body: messageJson(m) };
      }
      if (method === 'PATCH' && c === 'messages' && d) {
        const m = messages.find((x) => x.id === d && x.channel_id === b);
        if (!m) return problem(404, 10008, 'Unknown Message');
        const content = typeof body.content === 'string' ? body.content : m.content;
        if (content.length > 2000) return problem(400, 50035, 'Invalid Form Body');
        m.edits.push(m.content);
        m.content = content;
        return { status: 200, body: messageJson(m) };
      }
      if (method === 'POST' && c === 'messages' && d && e === 'threads') {
        if (!messages.some((x) => x.id === d && x.channel_id === b)) return problem(404, 10008, 'Unknown Message');
        if (channels.has(d)) return problem(400, 160004, 'A thread has already been created for this message');
        // As on Discord, a thread started from a message has the message's id.
        const thread = { id: d, type: 11, guild_id: guildId, parent_id: b, owner_id: bot.id, name: String(body.name ?? 'thread'), message_count: 0, member_count: 1, thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false } };
        channels.set(d, thread);
        dispatch('THREAD_CREATE', { ...thread, newly_created: true });
        return { status: 201, body: thread };
      }
    }
    if (method === 'POST' && a === 'interactions' && b && c && d === 'callback') {
      if (interactionTokens.get(b) !== c) return problem(404, 10062, 'Unknown interaction');
      interactionReplies.push({ interactionId: b, kind: 'callback', body });
      return { status: 204 };
    }
    if (a === 'webhooks' && b === appId && c) {
      const interactionId = [...interactionTokens].find(([, t]) => t === c)?.[0];
      if (!interactionId) return problem(404, 10015, 'Unknown Webhook');
      const kind = method === 'POST' && !d ? 'followup' : method === 'PATCH' && e === '@original' ? 'edit' : method === 'DELETE' && e === '@original' ? 'delete' : undefined;
      if (!kind) return problem(404, 0, '404: Not Found');
      const content = typeof body.content === 'string' ? body.content : '';
      if (content.length > 2000) return problem(400, 50035, 'Invalid Form Body');
      interactionReplies.push({ interactionId, kind, body });
      if (kind === 'delete') return { status: 204 };
      return { status: 200, body: messageJson({ id: snowflake(), channel_id: channelId, content, author: bot, attachments: [], edits: [] }, { flags: Number(body.flags ?? 0) }) };
    }
    if (method === 'PUT' && a === 'applications' && b === appId && (c === 'commands' || (c === 'guilds' && e === 'commands'))) {
      commandPuts.push({ path, body });
      const list = Array.isArray(body) ? (body as Array<Record<string, unknown>>) : [];
      return { status: 200, body: list.map((cmd) => ({ ...cmd, id: snowflake(), application_id: appId, version: snowflake(), type: 1, ...(c === 'guilds' ? { guild_id: d } : {}) })) };
    }
    return problem(404, 0, '404: Not Found');
  }

  async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      // discord.js sends files as multipart: `payload_json` plus `files[n]` parts.
      const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
      const payload = JSON.parse(String(form.get('payload_json') ?? '{}')) as Record<string, unknown>;
      const files = [...form.entries()].filter(([k]) => k.startsWith('files[')).map(([, v]) => v as File);
      return { ...payload, attachments: files.map((f) => ({ filename: f.name, size: f.size })) };
    }
    if (raw.length === 0) return {};
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    return Array.isArray(parsed) ? (parsed as unknown as Record<string, unknown>) : (parsed as Record<string, unknown>);
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = url.pathname.replace(/^\/api\/v10/, '');
      const body = await readBody(req).catch(() => ({}));
      calls.push({ method: req.method ?? 'GET', path, body });
      const injected = failures.find((f) => f.left > 0 && f.method === req.method && path.startsWith(f.pathPrefix));
      if (injected) {
        injected.left -= 1;
        if ('hang' in injected.failure) return; // never answered; the client must time out
        const { status, body: errorBody, headers } = injected.failure;
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(errorBody ?? {}));
        return;
      }
      const needsBot = !path.startsWith('/interactions/') && !path.startsWith('/webhooks/');
      const result = needsBot && req.headers.authorization !== `Bot ${token}` ? problem(401, 0, '401: Unauthorized') : route(req.method ?? 'GET', path, body);
      if (result.body === undefined) res.writeHead(result.status).end();
      else res.writeHead(result.status, { 'content-type': 'application/json' }).end(JSON.stringify(result.body));
    })();
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith('/gateway')) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 41_250 }, s: null, t: null }));
      ws.on('message', (data) => {
        let frame: { op?: number; d?: unknown };
        try {
          frame = JSON.parse(String(data)) as typeof frame;
        } catch {
          return;
        }
        if (frame.op === 1) ws.send(JSON.stringify({ op: 11 }));
        else if (frame.op === 6) ws.send(JSON.stringify({ op: 9, d: false })); // no resume: identify again
        else if (frame.op === 2) {
          if ((frame.d as { token?: string }).token !== token) return ws.close(4004, 'Authentication failed');
          sockets.add(ws);
          identifyCount += 1;
          dispatch('READY', { v: 10, user: userJson(bot), guilds: [{ id: guildId, unavailable: true }], session_id: randomBytes(8).toString('hex'), resume_gateway_url: `ws://127.0.0.1:${port}/gateway`, shard: [0, 1], application: { id: appId, flags: 0 } });
          dispatch('GUILD_CREATE', guildCreate());
          resolveIdentified();
        }
      });
      ws.on('close', () => sockets.delete(ws));
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    apiUrl: `http://127.0.0.1:${port}/api`,
    token, appId, guildId, bot, channelId, calls, messages, channels, interactionReplies, commandPuts, identified,
    messagesIn: (id) => messages.filter((m) => m.channel_id === id),
    dm(user, content, extra = {}) {
      const ch = dmChannelOf(user);
      return inject({ id: snowflake(), channel_id: ch, content, author: user, attachments: [], edits: [] }, { channel_type: 1, ...extra });
    },
    say(user, ch, content, opts = {}) {
      const text = opts.mention ? `<@${bot.id}> ${content}` : content;
      const channel = channels.get(ch);
      return inject({ id: snowflake(), channel_id: ch, content: text, author: user, attachments: [], edits: [] }, {
        guild_id: guildId, channel_type: channel?.type ?? 0,
        member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false },
        mentions: opts.mention ? [{ ...userJson(bot), member: { roles: [], joined_at: new Date().toISOString() } }] : [],
        ...opts.extra,
      });
    },
    command(user, sub, options = [], ch) {
      const id = snowflake();
      const interactionToken = `itok-${randomBytes(12).toString('hex')}`;
      interactionTokens.set(id, interactionToken);
      const channel = ch ? channels.get(ch) : undefined;
      const inGuild = Boolean(channel?.guild_id);
      dispatch('INTERACTION_CREATE', {
        id, application_id: appId, type: 2, token: interactionToken, version: 1, locale: 'en-US', app_permissions: '1071698660928',
        data: { id: snowflake(), name: 'codex', type: 1, options: [{ type: 1, name: sub, options }] },
        channel: channel ?? { id: dmChannelOf(user), type: 1 },
        channel_id: channel?.id ?? dmChannelOf(user),
        ...(inGuild ? { guild_id: guildId, guild_locale: 'en-US', member: { user: userJson(user), roles: [], permissions: '1071698660928', joined_at: new Date().toISOString(), deaf: false, mute: false } } : { user: userJson(user) }),
        entitlements: [],
        authorizing_integration_owners: inGuild ? { '0': guildId } : { '1': user.id },
        context: inGuild ? 0 : 1,
      });
      return id;
    },
    dmChannelOf,
    sendRaw(frame) {
      for (const ws of sockets) ws.send(frame);
    },
    dropGateway(code = 4000) {
      const open = [...sockets];
      for (const ws of open) ws.close(code, 'fake: dropped');
      return open.length;
    },
    identifies: () => identifyCount,
    failNext(method, pathPrefix, failure, count = 1) {
      failures.push({ method, pathPrefix, failure, left: count });
    },
    dispatch,
    waitFor(check, timeoutMs = 30_000, what = 'condition') {
      return new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const poll = (): void => {
          const value = check();
          if (value !== undefined && value !== false) return resolve(value);
          if (Date.now() > deadline) return reject(new Error(`fake discord: ${what} not met within ${timeoutMs} ms`));
          setTimeout(poll, 50);
        };
        poll();
      });
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
