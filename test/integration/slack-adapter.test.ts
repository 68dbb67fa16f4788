/**
 * The Slack adapter on the real @slack/bolt (Socket Mode and HTTP receivers, WebClient) against the
 * fake Slack, with the real Store and Router; only the group runtimes are a recorder, so these run
 * without Docker. The full path through a container is test/integration/slack.test.ts.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSlack, type SlackRuntime } from '../../adapters/slack/index.js';
import { TEXT } from '../../adapters/slack/inbound-handler.js';
import { AccessPolicy } from '../../src/commands/access.js';
import { CommandHandler, type TranscriptSource } from '../../src/commands/handler.js';
import type { ChatAdapter } from '../../src/chat/adapter.js';
import { loadConfig, type SlackConfig } from '../../src/config.js';
import type { InboxRow } from '../../src/db/rows.js';
import { Store } from '../../src/db/store.js';
import { createLogger } from '../../src/logger.js';
import type { GroupRuntimes } from '../../src/router/group-runtimes.js';
import { Router } from '../../src/router/router.js';
import { BOT_USER, startFakeSlack, TEAM, type FakeSlack } from '../fakes/fake-slack.js';

const BOT_TOKEN = 'xoxb-test-adapter';
const APP_TOKEN = 'xapp-test-adapter';
const SIGNING_SECRET = 'test-signing-secret';
const ADMIN = 'U0ADMIN';
const ALICE = 'U0ALICE';
const FAST = { retries: 2, factor: 1, minTimeout: 50, maxTimeout: 100 };

describe('Slack adapter on real bolt against a fake Slack', () => {
  let fake: FakeSlack;
  let dataDir: string;
  let store: Store;
  let slack: SlackRuntime;
  let submitted: InboxRow[];
  let logLines: string[];
  let registered: ChatAdapter[];
  let unhandled: unknown[];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  function slackConfig(extra: Record<string, string> = {}): SlackConfig {
    return loadConfig({ DATA_DIR: dataDir, SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: APP_TOKEN, SLACK_API_URL: fake.apiUrl, ...extra }).slack!;
  }

  async function start(config: SlackConfig, transcripts?: TranscriptSource): Promise<SlackRuntime> {
    const log = createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } as unknown as NodeJS.WritableStream });
    const runtimes = { get: () => ({ submit: (row: InboxRow) => void submitted.push(row) }) } as unknown as GroupRuntimes;
    const router = new Router(store, runtimes, log);
    const access = new AccessPolicy({ ownerIds: [`slack:${ADMIN}`], adminIds: [], admins: store.admins });
    const commands = new CommandHandler({ store, runtimes: { find: () => undefined }, access, archive: transcripts, log });
    return startSlack({
      config,
      relay: { router, store, registerAdapter: (a) => void registered.push(a) },
      access,
      commands,
      log,
      connection: { retryConfig: FAST, socketRetryConfig: FAST, clientPingTimeoutMs: 200, requestTimeoutMs: 5000, httpPort: 0 },
      contextTimeoutMs: 2000,
    });
  }

  beforeAll(async () => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
    fake = await startFakeSlack({ botToken: BOT_TOKEN, appToken: APP_TOKEN, users: { [ALICE]: 'alice', [ADMIN]: 'admin' } });
    dataDir = mkdtempSync(join(tmpdir(), 'relay-slack-adapter-'));
    store = Store.open(dataDir);
    submitted = [];
    logLines = [];
    registered = [];
    slack = await start(slackConfig(), {
      transcriptFor: (slug, threadKey) => ({ filename: `t-${slug}.md`, title: 'Transcript', content: `# transcript of ${threadKey}` }),
    });
    await fake.waitFor(() => fake.connections() === 1, 5000, 'socket connection');
  });

  afterAll(async () => {
    if (process.env.DUMP_LOGS) process.stderr.write(logLines.filter((l) => /"level":(4|5)0/.test(l)).join(''));
    await slack?.stop();
    await fake?.waitForDisconnect().catch(() => undefined);
    await fake?.close();
    store?.close();
    rmSync(dataDir, { recursive: true, force: true });
    process.off('unhandledRejection', onUnhandled);
  });

  afterEach(() => {
    expect(unhandled).toEqual([]);
  });

  const submittedFor = (eventId: string) => submitted.filter((r) => r.eventId === `slack:${eventId}`);

  it('registers the adapter before events flow, with Slack-sized messages', () => {
    expect(registered).toHaveLength(1);
    expect(registered[0]?.platform).toBe('slack');
    expect(registered[0]?.maxMessageChars).toBe(3500);
  });

  it('refuses /codex setup by a non-admin, then sets the channel up for an admin (ack, then response_url)', async () => {
    const refused = fake.sendCommand({ text: 'setup', user: ALICE, channel: 'C0SETUP', channelName: 'eng' });
    const r1 = await fake.waitFor(() => fake.responses.find((r) => r.path.endsWith(refused.envelopeId)), 5000, 'refusal');
    expect(r1.body).toMatchObject({ response_type: 'ephemeral' });
    expect(String(r1.body.text)).toMatch(/only relay admins/i);
    expect(fake.acks.some((a) => a.envelope_id === refused.envelopeId)).toBe(true);
    expect(store.groups.byChatKey(`slack:${TEAM}:C0SETUP`)).toBeUndefined();

    const ok = fake.sendCommand({ text: 'setup', user: ADMIN, channel: 'C0SETUP', channelName: 'eng' });
    const r2 = await fake.waitFor(() => fake.responses.find((r) => r.path.endsWith(ok.envelopeId)), 5000, 'setup answer');
    expect(r2.body).toMatchObject({ response_type: 'in_channel' });
    expect(String(r2.body.text)).toContain('group *eng*');
    expect(store.groups.byChatKey(`slack:${TEAM}:C0SETUP`)?.slug).toBe('eng');
  });

  it('accepts a mention in a set-up channel once, even when Slack redelivers it', async () => {
    const ts = fake.nextTs();
    const event = { type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> build it`, ts, channel: 'C0SETUP' };
    fake.sendEvent(event, { eventId: 'EvRedeliver' });
    await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${ts}`).length === 1, 5000, 'accept');
    fake.sendEvent(event, { eventId: 'EvRedeliver', retryAttempt: 1 });
    // The app_mention's message.channels twin (different event id, same message) must not double it either.
    fake.sendEvent({ type: 'message', channel_type: 'channel', user: ALICE, text: event.text, ts, channel: 'C0SETUP' });
    await fake.waitFor(() => logLines.filter((l) => l.includes('Slack redelivery ignored')).length >= 1, 5000, 'duplicate log');
    await new Promise((r) => setTimeout(r, 300));
    const rows = submittedFor(`${TEAM}/C0SETUP/${ts}`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ threadKey: ts, channelId: 'C0SETUP', text: 'build it' });
  });

  it('takes thread replies without a mention once the bot is in the thread, and ignores other threads', async () => {
    const parent = fake.nextTs();
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> start`, ts: parent, channel: 'C0SETUP' });
    await fake.waitFor(() => submitted.some((r) => r.threadKey === parent), 5000, 'mention');
    const reply = fake.nextTs();
    fake.sendEvent({ type: 'message', channel_type: 'channel', user: ALICE, text: 'and more', ts: reply, thread_ts: parent, channel: 'C0SETUP' });
    const elsewhere = fake.nextTs();
    fake.sendEvent({ type: 'message', channel_type: 'channel', user: ALICE, text: 'not for the bot', ts: elsewhere, thread_ts: fake.nextTs(), channel: 'C0SETUP' });
    await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${reply}`).length === 1, 5000, 'thread reply');
    // Names are learned after a person's first stored message (users.info), never on the way in.
    expect(submittedFor(`${TEAM}/C0SETUP/${reply}`)[0]?.userName).toBe('alice');
    await new Promise((r) => setTimeout(r, 300));
    expect(submittedFor(`${TEAM}/C0SETUP/${elsewhere}`)).toHaveLength(0);
    expect(store.inbox.byEventId({ platform: 'slack', eventId: `${TEAM}/C0SETUP/${elsewhere}` })).toBeUndefined();
  });

  it('gives a channel that is not set up one ephemeral hint, not one per message', async () => {
    for (let i = 0; i < 2; i += 1) {
      fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> hi ${i}`, ts: fake.nextTs(), channel: 'C0NEW' });
    }
    await fake.waitFor(() => fake.ephemerals.some((e) => e.channel === 'C0NEW'), 5000, 'hint');
    await new Promise((r) => setTimeout(r, 400));
    const hints = fake.ephemerals.filter((e) => e.channel === 'C0NEW');
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatchObject({ user: ALICE, text: TEXT.setupHint });
    expect(hints[0]?.thread_ts).toBeDefined();
  });

  it('opens DMs for admins (group created on the spot) and tells others once', async () => {
    const ts = fake.nextTs();
    fake.sendEvent({ type: 'message', channel_type: 'im', user: ADMIN, text: 'hello from a DM', ts, channel: 'D0ADMIN' });
    await fake.waitFor(() => submittedFor(`${TEAM}/D0ADMIN/${ts}`).length === 1, 5000, 'admin DM');
    expect(submittedFor(`${TEAM}/D0ADMIN/${ts}`)[0]).toMatchObject({ threadKey: 'dm', channelId: 'D0ADMIN' });
    expect(store.groups.byChatKey(`slack:${TEAM}:D0ADMIN`)).toBeDefined();

    fake.sendEvent({ type: 'message', channel_type: 'im', user: ALICE, text: 'can I?', ts: fake.nextTs(), channel: 'D0ALICE' });
    fake.sendEvent({ type: 'message', channel_type: 'im', user: ALICE, text: 'hello?', ts: fake.nextTs(), channel: 'D0ALICE' });
    await fake.waitFor(() => fake.botMessages('D0ALICE', undefined).length > 0, 5000, 'DM note');
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.botMessages('D0ALICE', undefined).map((m) => m.text)).toEqual([TEXT.dmForAdmins]);
  });

  it('gives a first mention inside an existing thread the earlier messages as context', async () => {
    const parent = fake.seedMessage('C0SETUP', ALICE, 'the deploy failed with exit 137');
    fake.seedMessage('C0SETUP', ADMIN, 'looks like OOM & <memory>', parent);
    const ts = fake.seedMessage('C0SETUP', ALICE, `<@${BOT_USER}> can you look?`, parent);
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> can you look?`, ts, thread_ts: parent, channel: 'C0SETUP' });
    const [row] = await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${ts}`).length === 1 && submittedFor(`${TEAM}/C0SETUP/${ts}`), 5000, 'mention');
    expect(row!.threadKey).toBe(parent);
    // Stored first, without any API call: the context is fetched at turn time, through the adapter.
    expect(row!.payload.contextBefore).toBe(ts);
    expect(row!.payload.threadContext).toBeUndefined();
    const adapter = registered.at(-1)!;
    const context = await adapter.threadContext!({ chatKey: row!.chatKey, channelId: row!.channelId, threadKey: row!.threadKey }, ts);
    expect(context).toEqual([
      { userName: 'alice', text: 'the deploy failed with exit 137' },
      { userName: 'admin', text: 'looks like OOM & <memory>' },
    ]);
  });

  it('stores shared files as attachments without fetching them on the way in', async () => {
    const file = fake.addFile('build log.txt', 'error: out of memory\n');
    const ts = fake.nextTs();
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> why?`, ts, channel: 'C0SETUP', files: [file, { id: 'F0GONE', name: 'old.pdf', mode: 'tombstone' }] });
    const [row] = await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${ts}`).length === 1 && submittedFor(`${TEAM}/C0SETUP/${ts}`), 5000, 'mention with files');
    expect(row!.payload.attachments).toEqual([{ name: 'build log.txt', url: file.url_private_download, mimeType: 'text/plain', sizeBytes: 21 }]);
    expect(row!.text).toBe('why?\n(A shared file, old.pdf, is not available for download.)');
    expect(fake.downloads.filter((d) => d.url === file.url_private_download)).toHaveLength(0);
  });

  describe('download (called by the group runtime at turn time)', () => {
    const attachment = (url: unknown, sizeBytes = 1) => ({ name: 'f', url: String(url), mimeType: 'text/plain', sizeBytes });

    it('fetches a file with the bot token', async () => {
      const file = fake.addFile('ok.txt', 'hello file');
      const bytes = await slack.adapter.download(attachment(file.url_private_download), 1024);
      expect(bytes.toString()).toBe('hello file');
      expect(fake.downloads.at(-1)).toMatchObject({ url: file.url_private_download, token: BOT_TOKEN });
    });

    it('refuses more than maxBytes, whatever size Slack declared', async () => {
      const file = fake.addFile('big.bin', Buffer.alloc(64 * 1024, 1), 'application/octet-stream');
      await expect(slack.adapter.download(attachment(file.url_private_download, 10), 1024)).rejects.toMatchObject({ name: 'ChatDeliveryError', code: 'too_large' });
      const chunked = fake.addFile('chunked.bin', Buffer.alloc(64 * 1024, 2), 'application/octet-stream', { chunked: true });
      await expect(slack.adapter.download(attachment(chunked.url_private_download, 10), 1024)).rejects.toMatchObject({ code: 'too_large' });
    });

    it('never sends the token off Slack, not even through a redirect', async () => {
      const seen: Array<string | undefined> = [];
      const other = createServer((req, res) => {
        seen.push(req.headers.authorization);
        res.end('from elsewhere');
      });
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
      const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/file`;
      try {
        await expect(slack.adapter.download(attachment(otherUrl), 1024)).rejects.toMatchObject({ code: 'forbidden' });
        expect(seen).toEqual([]);
        // Slack may redirect a private URL to a signed CDN URL: followed, without the token.
        const bytes = await slack.adapter.download(attachment(`${fake.url}/redirect?to=${encodeURIComponent(otherUrl)}`), 1024);
        expect(bytes.toString()).toBe('from elsewhere');
        expect(seen).toEqual([undefined]);
      } finally {
        other.closeAllConnections();
        await new Promise((r) => other.close(r));
      }
    });

    it('maps a missing file to not_found', async () => {
      await expect(slack.adapter.download(attachment(`${fake.url}/files/F0NONE/x`), 1024)).rejects.toMatchObject({ code: 'not_found' });
    });
  });

  it('uploads /codex archive into the most recent thread and answers ephemerally', async () => {
    // The group runtime (a recorder here) is what records threads; do it by hand.
    const thread = fake.nextTs();
    store.threads.touch('eng', thread);
    const { envelopeId } = fake.sendCommand({ text: 'archive', user: ALICE, channel: 'C0SETUP' });
    const answer = await fake.waitFor(() => fake.responses.find((r) => r.path.endsWith(envelopeId)), 5000, 'archive answer');
    expect(answer.body).toMatchObject({ response_type: 'ephemeral', text: 'Archive posted to the thread.' });
    const upload = [...fake.uploads.values()].find((u) => u.filename === 't-eng.md');
    expect(upload?.completed).toMatchObject({ channel_id: 'C0SETUP', title: 'Transcript' });
    expect(upload?.completed?.thread_ts).toBe(thread);
    expect(upload?.body).toContain(`# transcript of ${thread}`);
  });

  it('retries chat.postMessage after a 429, honouring Retry-After', async () => {
    fake.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
    const started = Date.now();
    const posted = await slack.adapter.post({ chatKey: `slack:${TEAM}:C0SETUP`, channelId: 'C0SETUP', threadKey: '1700000000.000001' }, 'after **the** limit');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const attempts = fake.calls.filter((c) => c.method === 'chat.postMessage' && c.args.text === 'after *the* limit');
    expect(attempts.map((c) => c.outcome)).toEqual(['http-429', 'ok']);
    expect(fake.messages.find((m) => m.ts === posted.id)).toMatchObject({ thread_ts: '1700000000.000001', text: 'after *the* limit' });
  });

  it('maps a final Slack refusal to a ChatDeliveryError with a stable code', async () => {
    fake.failNext('chat.update', { error: 'message_not_found' });
    await expect(slack.adapter.update({ chatKey: 'k', channelId: 'C0SETUP', threadKey: 'dm' }, { id: '1.2' }, 'x')).rejects.toMatchObject({
      name: 'ChatDeliveryError',
      code: 'not_found',
    });
  });

  it('survives malformed envelopes and events, and keeps serving', async () => {
    const garbage: unknown[] = [
      'not json at all',
      { envelope_id: 'm1' },
      { type: 'events_api', envelope_id: 'm2' },
      { type: 'events_api', envelope_id: 'm3', payload: null },
      { type: 'events_api', envelope_id: 'm4', payload: { type: 'event_callback', event: { type: 'close' } } },
      { type: 'events_api', envelope_id: 'm5', payload: { type: 'event_callback', event: { type: 'ws_message' } } },
      { type: 'events_api', envelope_id: 'm6', payload: { type: 'event_callback', team_id: TEAM, event_id: 'Evm6', event: { type: 'app_mention', user: ALICE, text: 42, ts: 'nope', channel: 'C0SETUP' } } },
      { type: 'events_api', envelope_id: 'm7', payload: { type: 'event_callback', event_id: 'Evm7', event: { type: 'message' } } },
      { type: 'slash_commands', envelope_id: 'm8', payload: null },
      { type: 'slash_commands', envelope_id: 'm9', payload: { command: '/codex', team_id: TEAM, channel_id: 'C0SETUP', user_id: ALICE, text: { evil: true } } },
    ];
    for (const g of garbage) fake.sendRaw(g as never);
    await fake.waitFor(() => logLines.some((l) => l.includes('malformed Slack event dropped')), 5000, 'malformed log');
    await fake.waitFor(() => ['m1', 'm2', 'm3', 'm4', 'm5'].every((id) => fake.acks.some((a) => a.envelope_id === id)), 5000, 'acks of dropped envelopes');
    const ts = fake.nextTs();
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> still there?`, ts, channel: 'C0SETUP' });
    await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${ts}`).length === 1, 5000, 'mention after garbage');
    expect(fake.connections()).toBe(1);
  });

  describe('HTTP mode', () => {
    let http: SlackRuntime;
    let url: string;
    beforeAll(async () => {
      http = await start(slackConfig({ SLACK_APP_TOKEN: '', SLACK_SIGNING_SECRET: SIGNING_SECRET }));
      url = `http://127.0.0.1:${http.port}/slack/events`;
    });
    afterAll(async () => {
      await http?.stop();
    });

    const sign = (body: string, ts: number, secret = SIGNING_SECRET) => `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
    const post = (body: string, headers: Record<string, string>) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const eventBody = (ts: string) =>
      JSON.stringify({
        type: 'event_callback',
        team_id: TEAM,
        api_app_id: 'A0APP',
        event_id: `EvHttp${ts}`,
        event_time: 1,
        authorizations: [{ team_id: TEAM, user_id: BOT_USER, is_bot: true }],
        event: { type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> over http`, ts, channel: 'C0SETUP', event_ts: ts },
      });

    it('refuses a bad signature and a stale timestamp with 401, and stores nothing', async () => {
      const ts = fake.nextTs();
      const body = eventBody(ts);
      const now = Math.floor(Date.now() / 1000);
      const bad = await post(body, { 'x-slack-request-timestamp': String(now), 'x-slack-signature': sign(body, now, 'wrong-secret') });
      expect(bad.status).toBe(401);
      const stale = await post(body, { 'x-slack-request-timestamp': String(now - 600), 'x-slack-signature': sign(body, now - 600) });
      expect(stale.status).toBe(401);
      const unsigned = await post(body, {});
      expect(unsigned.status).toBe(401);
      await new Promise((r) => setTimeout(r, 200));
      expect(store.inbox.byEventId({ platform: 'slack', eventId: `${TEAM}/C0SETUP/${ts}` })).toBeUndefined();
    });

    it('accepts a correctly signed event', async () => {
      const ts = fake.nextTs();
      const body = eventBody(ts);
      const now = Math.floor(Date.now() / 1000);
      const ok = await post(body, { 'x-slack-request-timestamp': String(now), 'x-slack-signature': sign(body, now) });
      expect(ok.status).toBe(200);
      await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${ts}`).length === 1, 5000, 'http mention');
    });

    it('answers a signed but malformed body without falling over', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const body of ['{"type":"event_callback","event":{"type":"app_mention"}}', '{"broken":', '[]']) {
        const res = await post(body, { 'x-slack-request-timestamp': String(now), 'x-slack-signature': sign(body, now) });
        expect(res.status).toBeLessThan(500);
      }
      const ts = fake.nextTs();
      const body = eventBody(ts);
      const ok = await post(body, { 'x-slack-request-timestamp': String(now), 'x-slack-signature': sign(body, now) });
      expect(ok.status).toBe(200);
      await fake.waitFor(() => submittedFor(`${TEAM}/C0SETUP/${ts}`).length === 1, 5000, 'http mention after garbage');
    });
  });
});
