/**
 * Slack end to end on real parts: the real @slack/bolt (Socket Mode) against the fake Slack, the
 * relay (router, SQLite, group runtime), a Docker container running the pinned codex app-server,
 * the credential proxy, and the fake Responses API as the model. Only Slack and the model are
 * stand-ins, both speaking their wire protocols. Slack is started exactly as `main.ts` does it
 * (`startSlackForRelay`), so `/codex archive` runs on the relay's real archive.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSlackForRelay, type SlackRuntime } from '../../adapters/slack/index.js';
import { RelayApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { messageTexts, reply, startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';
import { BOT_USER, startFakeSlack, TEAM, type FakeSlack, type SlackMessage } from '../fakes/fake-slack.js';
import { agentImage, describeDocker } from '../helpers/docker.js';

const BOT_TOKEN = 'xoxb-test-e2e';
const APP_TOKEN = 'xapp-test-e2e';
const ADMIN = 'U0ADMIN';
const ALICE = 'U0ALICE';
const CHANNEL = 'C0TEAM';
const FAST = { retries: 2, factor: 1, minTimeout: 100, maxTimeout: 200 };

describeDocker('Slack end to end: bolt ↔ fake Slack, relay, container, codex', () => {
  let model: FakeResponses;
  let fake: FakeSlack;
  let app: RelayApp;
  let slack: SlackRuntime;
  let dataDir: string;
  let logLines: string[];

  beforeAll(async () => {
    model = await startFakeResponses();
    fake = await startFakeSlack({ botToken: BOT_TOKEN, appToken: APP_TOKEN, users: { [ALICE]: 'alice', [ADMIN]: 'admin' } });
    dataDir = mkdtempSync(join(tmpdir(), 'relay-slack-e2e-'));
    const config = loadConfig({
      DATA_DIR: dataDir,
      OPENAI_UPSTREAM_URL: model.url,
      AGENT_IMAGE: agentImage(),
      DOCKER_NETWORK: 'codex-relay-test-slack',
      RELAY_INSTANCE_ID: `test-slack-${process.pid}`,
      DEFAULT_MODEL: 'gpt-test',
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_APP_TOKEN: APP_TOKEN,
      SLACK_API_URL: fake.apiUrl,
      RELAY_OWNER_IDS: `slack:${ADMIN}`,
    });
    logLines = [];
    const log = createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } as unknown as NodeJS.WritableStream });
    app = await RelayApp.create(config, log, {
      agentConfigExtra: 'request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 60000',
      progressIntervalMs: 200,
    });
    app.vault.setOpenaiApiKey('sk-test-slack-e2e');
    slack = await startSlackForRelay(app, log.child({ part: 'slack' }), {
      connection: { retryConfig: FAST, socketRetryConfig: FAST, clientPingTimeoutMs: 500 },
    });
    app.router.recover();
  }, 120_000);

  afterAll(async () => {
    await slack?.stop();
    await fake?.waitForDisconnect().catch(() => undefined);
    await app?.stop('test done');
    await fake?.close();
    await model?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A person writes in Slack: the message exists in the channel, and its event is delivered. */
  function say(user: string, channel: string, text: string, opts: { threadTs?: string; mention?: boolean; eventId?: string } = {}): string {
    const ts = fake.seedMessage(channel, user, text, opts.threadTs);
    const isDm = channel.startsWith('D');
    const type = opts.mention && !isDm ? 'app_mention' : 'message';
    fake.sendEvent(
      { type, user, text, ts, channel, ...(type === 'message' ? { channel_type: isDm ? 'im' : 'channel' } : {}), ...(opts.threadTs ? { thread_ts: opts.threadTs } : {}) },
      opts.eventId ? { eventId: opts.eventId } : {},
    );
    return ts;
  }

  const isProgress = (m: SlackMessage) => m.text.startsWith(':hourglass');
  /** Waits for a finished (non-progress) bot message containing `needle` in the thread; returns the thread's bot messages. */
  function answered(channel: string, threadTs: string | undefined, needle: string, timeoutMs = 90_000): Promise<SlackMessage[]> {
    return fake.waitFor(
      () => {
        const msgs = fake.botMessages(channel, threadTs);
        return msgs.some((m) => !isProgress(m) && m.text.includes(needle)) && msgs;
      },
      timeoutMs,
      `an answer containing ${JSON.stringify(needle)} in ${channel}/${threadTs ?? 'top level'}`,
    );
  }

  async function command(user: string, channel: string, text: string) {
    const { envelopeId } = fake.sendCommand({ text, user, channel, channelName: 'team' });
    const r = await fake.waitFor(() => fake.responses.find((x) => x.path.endsWith(envelopeId)), 10_000, `/codex ${text}`);
    return { ackedAt: fake.acks.findIndex((a) => a.envelope_id === envelopeId), ...r.body } as { ackedAt: number; response_type: string; text: string };
  }

  it('refuses /codex setup by a non-admin', async () => {
    const r = await command(ALICE, CHANNEL, 'setup');
    expect(r).toMatchObject({ response_type: 'ephemeral' });
    expect(r.text).toMatch(/only relay admins/i);
    expect(r.ackedAt).toBeGreaterThanOrEqual(0);
    expect(app.store.groups.byChatKey(`slack:${TEAM}:${CHANNEL}`)).toBeUndefined();
  });

  let firstThread = '';
  it('after /codex setup by an admin, answers a mention in its thread: progress posted, then finished', async () => {
    const r = await command(ADMIN, CHANNEL, 'setup');
    expect(r.response_type).toBe('in_channel');
    expect(app.store.groups.byChatKey(`slack:${TEAM}:${CHANNEL}`)?.slug).toBe('team');

    firstThread = say(ALICE, CHANNEL, `<@${BOT_USER}> remember the word **PAPAYA**`, { mention: true });
    const msgs = await answered(CHANNEL, firstThread, 'PAPAYA');
    const [answer] = msgs;
    expect(msgs).toHaveLength(1);
    expect(answer!.thread_ts).toBe(firstThread);
    expect(answer!.edits[0]).toMatch(/^:hourglass_flowing_sand: Working…/);
    // The model saw the text without the bot mention; the answer came back as mrkdwn.
    expect(messageTexts(model.requests.at(-1)!.body, 'user').at(-1)).toMatch(/: remember the word \*\*PAPAYA\*\*$/);
    expect(answer!.text).toContain('remember the word *PAPAYA*');
  });

  it('answers a follow-up in the thread without a mention, in the same Codex thread', async () => {
    const codexThread = app.store.threads.get('team', firstThread)?.codexThreadId;
    expect(codexThread).toBeTruthy();
    say(ALICE, CHANNEL, 'which fruit was it?', { threadTs: firstThread });
    await answered(CHANNEL, firstThread, 'which fruit was it?');
    expect(app.store.threads.get('team', firstThread)?.codexThreadId).toBe(codexThread);
    const users = messageTexts(model.requests.at(-1)!.body, 'user').join('\n');
    expect(users).toContain('PAPAYA');
    expect(users).toContain('which fruit was it?');
  });

  it('updates the progress message while Codex works, then replaces it with the answer', async () => {
    model.script((req) => {
      const last = (req.body as { input?: Array<{ type?: string }> }).input?.at(-1);
      if (last?.type === 'function_call_output') return reply.text('listed the workspace', { delayMs: 600 });
      return messageTexts(req.body, 'user').at(-1)?.includes('list the files') ? reply.shellCall('sleep 1; ls -la') : undefined;
    });
    try {
      const ts = say(ALICE, CHANNEL, `<@${BOT_USER}> list the files`, { mention: true });
      const [m] = await answered(CHANNEL, ts, 'listed the workspace');
      expect(m!.edits[0]).toMatch(/^:hourglass_flowing_sand: Working…/);
      expect(m!.edits.some((e) => e.includes('running `sleep 1; ls -la`'))).toBe(true);
      const updates = fake.calls.filter((c) => c.method === 'chat.update' && c.args.ts === m!.ts);
      expect(updates.length).toBe(m!.edits.length);
    } finally {
      model.script(() => undefined);
    }
  });

  it('answers a DM from an admin (the DM becomes its own group)', async () => {
    say(ADMIN, 'D0ADMIN', 'hello over DM');
    const [m] = await answered('D0ADMIN', undefined, 'hello over DM');
    expect(m!.thread_ts).toBeUndefined();
    expect(app.store.groups.byChatKey(`slack:${TEAM}:D0ADMIN`)).toBeDefined();
  });

  it('answers a redelivered event once', async () => {
    const ts = say(ALICE, CHANNEL, `<@${BOT_USER}> only once please`, { mention: true, eventId: 'EvOnce' });
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> only once please`, ts, channel: CHANNEL }, { eventId: 'EvOnce', retryAttempt: 1 });
    await answered(CHANNEL, ts, 'only once please');
    await new Promise((r) => setTimeout(r, 1500));
    expect(fake.botMessages(CHANNEL, ts)).toHaveLength(1);
    expect(model.requests.filter((r) => JSON.stringify(r.body).includes('only once please'))).toHaveLength(1);
  });

  it('splits a 9,000-character answer into several messages with code fences intact', async () => {
    const code = Array.from({ length: 90 }, (_, i) => `    result_${i} = compute(${i}) * 2  # **literal** stars`).join('\n');
    const prose = (n: number) => Array.from({ length: n }, (_, i) => `Paragraph ${i} explains **one** step of the plan in plain words.`).join('\n\n');
    const long = `# Plan\n\n${prose(30)}\n\n\`\`\`python\ndef run():\n${code}\n\`\`\`\n\n${prose(45)}\n\nEND-OF-ANSWER`;
    expect(long.length).toBeGreaterThan(9000);
    model.script((req) => (messageTexts(req.body, 'user').at(-1)?.includes('the long version') ? reply.text(long) : undefined));
    try {
      const ts = say(ALICE, CHANNEL, `<@${BOT_USER}> the long version`, { mention: true });
      await answered(CHANNEL, ts, 'END-OF-ANSWER');
      const msgs = fake.botMessages(CHANNEL, ts);
      expect(msgs.length).toBeGreaterThanOrEqual(3);
      for (const m of msgs) {
        expect(m.text.length).toBeLessThanOrEqual(3600);
        const fences = m.text.split('\n').filter((l) => l.trim().startsWith('```'));
        expect(fences.length % 2).toBe(0);
      }
      const all = msgs.map((m) => m.text).join('\n');
      for (let i = 0; i < 90; i += 1) expect(all).toContain(`result_${i} = compute(${i}) * 2  # **literal** stars`);
      expect(all).toContain('*Plan*');
      expect(all).toContain('explains *one* step');
      expect(all).not.toContain('```python');
    } finally {
      model.script(() => undefined);
    }
  });

  it('retries chat.postMessage after a 429 and still answers', async () => {
    fake.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
    const ts = say(ALICE, CHANNEL, `<@${BOT_USER}> despite the rate limit`, { mention: true });
    await answered(CHANNEL, ts, 'despite the rate limit');
    const posts = fake.calls.filter((c) => c.method === 'chat.postMessage' && c.args.thread_ts === ts);
    expect(posts.map((c) => c.outcome)).toEqual(['http-429', 'ok']);
    expect(fake.botMessages(CHANNEL, ts)).toHaveLength(1);
  });

  it('gives Codex the earlier messages when mentioned in the middle of a thread', async () => {
    const parent = say(ALICE, CHANNEL, 'prod is down since 10:02');
    say(ADMIN, CHANNEL, 'error says ECONNREFUSED on port 5432', { threadTs: parent });
    say(ALICE, CHANNEL, `<@${BOT_USER}> any idea?`, { threadTs: parent, mention: true });
    await answered(CHANNEL, parent, 'any idea?');
    const users = messageTexts(model.requests.at(-1)!.body, 'user').join('\n');
    expect(users).toContain('Earlier messages in this chat thread');
    expect(users).toContain('prod is down since 10:02');
    expect(users).toContain('ECONNREFUSED on port 5432');
  });

  it('gives Codex a file shared with a mention, downloaded with the bot token into the workspace', async () => {
    const file = fake.addFile('build log.txt', 'error: out of memory at step 7\n');
    const ts = fake.seedMessage(CHANNEL, ALICE, `<@${BOT_USER}> what broke?`);
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: `<@${BOT_USER}> what broke?`, ts, channel: CHANNEL, files: [file] });
    await answered(CHANNEL, ts, 'what broke?');
    const request = JSON.stringify(model.requests.at(-1)!.body);
    expect(request).toMatch(/\/workspace\/\.chat-attachments\/\d+\/build log\.txt \(text\/plain\)/);
    expect(fake.downloads.filter((d) => d.url === file.url_private_download)).toEqual([{ url: file.url_private_download, token: BOT_TOKEN }]);
    const inboxId = app.store.inbox.byEventId({ platform: 'slack', eventId: `${TEAM}/${CHANNEL}/${ts}` })!.id;
    expect(readFileSync(join(dataDir, 'groups', 'team', 'workspace', '.chat-attachments', String(inboxId), 'build log.txt'), 'utf8')).toBe('error: out of memory at step 7\n');
  });

  it('uploads /codex archive into the thread', async () => {
    const ts = say(ALICE, CHANNEL, `<@${BOT_USER}> archive me: KIWI`, { mention: true });
    await answered(CHANNEL, ts, 'KIWI');
    const r = await command(ALICE, CHANNEL, 'archive');
    expect(r).toMatchObject({ response_type: 'ephemeral', text: 'Archive posted to the thread.' });
    const upload = await fake.waitFor(() => [...fake.uploads.values()].find((u) => u.completed?.thread_ts === ts), 10_000, 'archive upload');
    expect(upload.filename).toBe(`codex-transcript-${ts}.md`);
    expect(upload.completed).toMatchObject({ channel_id: CHANNEL, title: 'Codex transcript (1 exchange)' });
    expect(upload.body).toContain('archive me: KIWI');
  });

  it('survives malformed envelopes and events, and still answers', async () => {
    for (const garbage of ['{not json', { type: 'events_api', envelope_id: 'g1' }, { type: 'events_api', envelope_id: 'g2', payload: { type: 'event_callback', event: { type: 'app_mention' } } }]) {
      fake.sendRaw(garbage as never);
    }
    fake.sendEvent({ type: 'app_mention', user: ALICE, text: 42, ts: 'not-a-ts', channel: CHANNEL });
    const ts = say(ALICE, CHANNEL, `<@${BOT_USER}> still with us?`, { mention: true });
    await answered(CHANNEL, ts, 'still with us?');
    expect(logLines.join('')).toContain('malformed Slack event dropped');
  });

  it('kept the Slack side healthy throughout', () => {
    expect(fake.connections()).toBe(1);
    expect(logLines.join('')).not.toContain('Slack event handling failed');
    expect(logLines.join('')).not.toContain('Slack listener failed');
  });
}, { agentImage: 'build' });
