/**
 * Discord end to end: the unmodified discord.js client (gateway + REST) against the fake Discord
 * on 127.0.0.1, the real relay (router, SQLite inbox, group runtimes), real Docker containers
 * running the pinned codex app-server, and the fake Responses API as the model. Assertions are on
 * what a Discord user would see: messages, replies, threads, interaction responses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PUBLIC_ACK } from '../../adapters/discord/interactions.js';
import { dmChatKey, guildChatKey } from '../../adapters/discord/mapping.js';
import { DiscordRelay } from '../../adapters/discord/relay.js';
import { RelayApp } from '../../src/app.js';
import { COMMAND_NAMES } from '../../src/commands/parse.js';
import { loadConfig } from '../../src/config.js';
import { LABEL_INSTANCE } from '../../src/containers/docker-runtime.js';
import { createLogger } from '../../src/logger.js';
import { startFakeDiscord, type FakeDiscord, type FakeMessage, type FakeUser } from '../fakes/fake-discord.js';
import { messageTexts, reply, startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';
import { agentImage, describeDocker, testDocker } from '../helpers/docker.js';

const INSTANCE = `test-discord-${process.pid}`;
const NETWORK = `codex-relay-test-discord-${process.pid}`;
const alice: FakeUser = { id: '200000000000000001', username: 'alice' };
const bob: FakeUser = { id: '200000000000000002', username: 'bob' };
const mallory: FakeUser = { id: '200000000000000003', username: 'mallory' };
const admin: FakeUser = { id: '200000000000000004', username: 'root' };
const otherBot: FakeUser = { id: '200000000000000005', username: 'otherbot', bot: true };

describeDocker('Discord through discord.js, a fake Discord and Docker', () => {
  let model: FakeResponses;
  let discord: FakeDiscord;
  let app: RelayApp;
  let relay: DiscordRelay;
  let stopped = false;
  let dataDir: string;
  const logLines: string[] = [];
  const docker = testDocker();

  beforeAll(async () => {
    model = await startFakeResponses();
    discord = await startFakeDiscord();
    dataDir = mkdtempSync(join(tmpdir(), 'relay-discord-it-'));
    const config = loadConfig({
      DATA_DIR: dataDir,
      OPENAI_UPSTREAM_URL: model.url,
      AGENT_IMAGE: agentImage(),
      DOCKER_NETWORK: NETWORK,
      RELAY_INSTANCE_ID: INSTANCE,
      DEFAULT_MODEL: 'gpt-test',
      DISCORD_BOT_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      DISCORD_GUILD_ID: discord.guildId,
      DISCORD_DM_POLICY: 'allowlist',
      DISCORD_DM_ALLOWLIST: alice.id,
      RELAY_ADMIN_IDS: `discord:${admin.id}`,
      LOCAL_CHAT: 'off',
    });
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } as unknown as NodeJS.WritableStream });
    app = await RelayApp.create(config, log, {
      agentConfigExtra: 'request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 60000',
      progressIntervalMs: 200,
    });
    app.vault.setOpenaiApiKey('sk-test-discord-0000');
    relay = await DiscordRelay.start({ app, discord: config.discord!, access: config, log, rest: { restTimeoutMs: 5_000, restRetries: 1 }, readyTimeoutMs: 20_000 });
  }, 120_000);

  afterAll(async () => {
    if (!stopped) await app?.stop('test done');
    await relay?.stop(2_000);
    await discord?.close();
    await model?.close();
    await docker
      .getNetwork(NETWORK)
      .remove()
      .catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const botMessages = (channelId: string): FakeMessage[] => discord.messagesIn(channelId).filter((m) => m.author.id === discord.bot.id);
  const final = (m: FakeMessage) => !m.content.startsWith('\u23F3');
  async function answerIn(channelId: string, needle: string, timeoutMs = 60_000): Promise<FakeMessage> {
    return discord.waitFor(() => botMessages(channelId).find((m) => final(m) && m.content.includes(needle)), timeoutMs, `an answer containing "${needle}" in ${channelId}`);
  }
  const repliesTo = (interactionId: string) => discord.interactionReplies.filter((r) => r.interactionId === interactionId);
  async function containerCount(): Promise<number> {
    return (await docker.listContainers({ all: true, filters: { label: [`${LABEL_INSTANCE}=${INSTANCE}`] } })).length;
  }

  it('registers the /codex command set for the guild at start-up', () => {
    const put = discord.commandPuts.find((p) => p.path === `/applications/${discord.appId}/guilds/${discord.guildId}/commands`);
    expect(put).toBeDefined();
    const [codex] = put!.body as Array<{ name: string; options: Array<{ name: string; type: number }> }>;
    expect(codex!.name).toBe('codex');
    expect(codex!.options.map((o) => o.name).sort()).toEqual([...COMMAND_NAMES].sort());
    expect(codex!.options.every((o) => o.type === 1)).toBe(true);
  });

  it('answers a DM from an allowed user with a reply to the message, via typing and an edited progress message', async () => {
    const asked = discord.dm(alice, 'hello from a DM');
    const dm = discord.dmChannelOf(alice);
    const answer = await answerIn(dm, 'echo: alice: hello from a DM');
    expect(answer.message_reference?.message_id).toBe(asked);
    expect(answer.edits[0]).toMatch(/^\u23F3 Working/);
    expect(discord.calls.some((c) => c.method === 'POST' && c.path === `/channels/${dm}/typing`)).toBe(true);
    expect(app.store.groups.byChatKey(dmChatKey(dm))?.platform).toBe('discord');
    expect(app.store.inbox.byEventId({ platform: 'discord', eventId: asked })?.status).toBe('answered');
  });

  it('refuses a DM from a user the policy does not allow, politely and without a container', async () => {
    const before = await containerCount();
    const requestsBefore = model.requests.length;
    const asked = discord.dm(mallory, 'let me in');
    const dm = discord.dmChannelOf(mallory);
    const refusal = await discord.waitFor(() => botMessages(dm).find((m) => m.message_reference?.message_id === asked), 15_000, 'a refusal');
    expect(refusal.content).toMatch(/^Sorry, I only take direct messages/);
    expect(refusal.content).toContain(mallory.id);
    expect(app.store.groups.byChatKey(dmChatKey(dm))).toBeUndefined();
    expect(app.store.inbox.byEventId({ platform: 'discord', eventId: asked })?.status).toBe('failed');
    await new Promise((r) => setTimeout(r, 1000));
    expect(botMessages(dm)).toHaveLength(1);
    expect(await containerCount()).toBe(before);
    expect(model.requests.slice(requestsBefore).some((r) => JSON.stringify(r.body).includes('let me in'))).toBe(false);
  });

  it('gives a one-time setup hint for a mention in a channel that is not set up', async () => {
    const first = discord.say(bob, discord.channelId, 'are you there?', { mention: true });
    const hint = await discord.waitFor(() => botMessages(discord.channelId).find((m) => m.message_reference?.message_id === first), 15_000, 'the hint');
    expect(hint.content).toContain('/codex setup');
    discord.say(bob, discord.channelId, 'hello??', { mention: true });
    await new Promise((r) => setTimeout(r, 1000));
    expect(botMessages(discord.channelId)).toHaveLength(1);
    expect(discord.channels.has(first)).toBe(false);
  });

  it('defers /codex setup, refuses a non-admin in the edited reply, and sets up for an admin', async () => {
    const refused = discord.command(bob, 'setup', [], discord.channelId);
    await discord.waitFor(() => repliesTo(refused).some((r) => r.kind === 'edit'), 15_000, 'the refusal edit');
    const [defer, edit, ...rest] = repliesTo(refused);
    expect(defer).toMatchObject({ kind: 'callback', body: { type: 5, data: { flags: 64 } } });
    expect(edit).toMatchObject({ kind: 'edit', body: { content: 'Only relay admins can do that.' } });
    expect(rest).toHaveLength(0);
    expect(app.store.groups.byChatKey(guildChatKey(discord.guildId, discord.channelId))).toBeUndefined();

    const accepted = discord.command(admin, 'setup', [{ name: 'name', type: 3, value: 'team chan' }], discord.channelId);
    await discord.waitFor(() => repliesTo(accepted).some((r) => r.kind === 'followup'), 15_000, 'the public follow-up');
    const replies = repliesTo(accepted);
    expect(replies.map((r) => r.kind)).toEqual(['callback', 'edit', 'followup']);
    expect(replies[0]!.body).toMatchObject({ type: 5, data: { flags: 64 } });
    expect(replies[1]!.body).toMatchObject({ content: PUBLIC_ACK });
    const announcement = replies[2]!.body as { content: string; flags?: number };
    expect(announcement.content).toContain('Codex is set up here as group *team chan*');
    expect((announcement.flags ?? 0) & 64).toBe(0);
    expect(app.store.groups.byChatKey(guildChatKey(discord.guildId, discord.channelId))?.name).toBe('team chan');
  });

  let threadId = '';
  it('opens a thread on a mention in a set-up channel and answers there', async () => {
    threadId = discord.say(bob, discord.channelId, 'what is two plus two?', { mention: true });
    await answerIn(threadId, 'echo: bob: what is two plus two?');
    const thread = discord.channels.get(threadId);
    expect(thread).toMatchObject({ type: 11, parent_id: discord.channelId, owner_id: discord.bot.id, name: 'what is two plus two?' });
    expect(botMessages(discord.channelId)).toHaveLength(1); // only the earlier setup hint
  });

  it('continues the same Codex thread for a follow-up in the thread without a mention', async () => {
    const slug = app.store.groups.byChatKey(guildChatKey(discord.guildId, discord.channelId))!.slug;
    const codexThread = app.store.threads.get(slug, threadId)?.codexThreadId;
    expect(codexThread).toBeTruthy();
    const followUp = discord.say(bob, threadId, 'and times three?');
    const answer = await answerIn(threadId, 'echo: bob: and times three?');
    expect(answer.message_reference?.message_id).toBe(followUp);
    expect(app.store.threads.get(slug, threadId)?.codexThreadId).toBe(codexThread);
    const users = messageTexts(model.requests.at(-1)!.body, 'user').join('\n');
    expect(users).toContain('what is two plus two?');
    expect(users).toContain('and times three?');
  });

  it('posts the archive into the thread for /codex archive issued in it', async () => {
    const asked = discord.command(bob, 'archive', [], threadId);
    const edit = await discord.waitFor(() => repliesTo(asked).find((r) => r.kind === 'edit'), 15_000, 'the archive reply');
    expect((edit.body as { content: string }).content).toBe('Archive posted to the thread.');
    const file = botMessages(threadId).find((m) => m.attachments.length > 0);
    expect(file?.attachments[0]?.filename).toMatch(/\.md$/);
  });

  it('ignores other bots and its own messages', async () => {
    const fromBot = discord.say(otherBot, threadId, 'I am a bot');
    const plain = discord.say(bob, discord.channelId, 'talking to people, not the bot');
    await new Promise((r) => setTimeout(r, 1000));
    for (const eventId of [fromBot, plain, ...botMessages(threadId).map((m) => m.id)]) {
      expect(app.store.inbox.byEventId({ platform: 'discord', eventId })).toBeUndefined();
    }
  });

  it('splits a 5,000-character answer into three messages with code fences intact', async () => {
    const code = Array.from({ length: 140 }, (_, i) => `const value${String(i).padStart(3, '0')} = compute(${i}); // ok`).join('\n');
    const long = `Here is the code:\n\n\`\`\`ts\n${code}\n\`\`\`\n\nThat is all.`;
    expect(long.length).toBeGreaterThan(5000);
    expect(long.length).toBeLessThan(5400);
    model.script((req) => (messageTexts(req.body, 'user').at(-1)?.includes('long answer please') ? reply.text(long) : undefined));
    try {
      const asked = discord.say(bob, discord.channelId, 'long answer please', { mention: true });
      await answerIn(asked, 'That is all.');
      const parts = botMessages(asked);
      expect(parts).toHaveLength(3);
      for (const part of parts) {
        expect(part.content.length).toBeLessThanOrEqual(2000);
        expect(part.content.match(/^```/gm)?.length ?? 0).toBe(2);
      }
      expect(parts[0]!.content.startsWith('Here is the code:')).toBe(true);
      expect(parts[1]!.content.startsWith('```ts\n')).toBe(true);
      const body = parts.map((p) => p.content).join('\n');
      for (let i = 0; i < 140; i += 1) expect(body).toContain(`const value${String(i).padStart(3, '0')} = compute(${i});`);
    } finally {
      model.script(() => undefined);
    }
  });

  it('survives malformed gateway payloads and keeps answering', async () => {
    const dm = discord.dmChannelOf(alice);
    const garbage = [
      'not json at all',
      '{}',
      'null',
      '[1,2,3]',
      JSON.stringify({ op: 42, d: {} }),
      JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 9001, d: null }),
      JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 9002, d: {} }),
      JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 9003, d: { id: '1', channel_id: dm, channel_type: 1 } }),
      JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 9004, d: { id: '300000000000000001', channel_id: dm, channel_type: 1, author: { id: alice.id }, content: 42 } }),
      JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 9005, d: { id: 'x', channel_id: 'y', author: { id: 'z' }, content: 'hi' } }),
      JSON.stringify({ op: 0, t: 'INTERACTION_CREATE', s: 9006, d: null }),
      JSON.stringify({ op: 0, t: 'INTERACTION_CREATE', s: 9007, d: { id: '1', type: 2 } }),
      JSON.stringify({ op: 0, t: 'INTERACTION_CREATE', s: 9008, d: { id: '300000000000000002', application_id: discord.appId, type: 2, token: 't', data: { name: 'codex', type: 1 } } }),
      JSON.stringify({ op: 0, t: 'THREAD_CREATE', s: 9009, d: 'thread' }),
      JSON.stringify({ op: 0, t: 'SOMETHING_NEW', s: 9010, d: { id: '1' } }),
    ];
    for (const frame of garbage) discord.sendRaw(frame);
    // A well-formed interaction for a subcommand the relay does not know: answered with help.
    const odd = discord.command(alice, 'bogus');
    await new Promise((r) => setTimeout(r, 500));
    discord.dm(alice, 'still there after the garbage?');
    await answerIn(dm, 'echo: alice: still there after the garbage?');
    const help = await discord.waitFor(() => repliesTo(odd).find((r) => r.kind === 'edit'), 15_000, 'an answer to the odd interaction');
    expect((help.body as { content: string }).content).toContain('Unknown command "bogus"');
    const logs = logLines.join('');
    expect(logs).toContain('malformed gateway dispatch dropped');
    expect(logs).toContain('malformed Discord message dropped');
  });

  it('reconnects after the gateway drops and keeps answering', async () => {
    const before = discord.identifies();
    expect(discord.dropGateway(4000)).toBe(1);
    await discord.waitFor(() => discord.identifies() > before, 30_000, 'a new IDENTIFY');
    const dm = discord.dmChannelOf(alice);
    discord.dm(alice, 'back after the drop?');
    await answerIn(dm, 'echo: alice: back after the drop?');
  }, 60_000);

  it('shuts down within bounds: a running turn is requeued and told so over Discord, containers stop, the gateway closes', async () => {
    const dm = discord.dmChannelOf(alice);
    model.script((req) => (messageTexts(req.body, 'user').at(-1)?.includes('a slow one') ? reply.hang() : undefined));
    const asked = discord.dm(alice, 'a slow one');
    await discord.waitFor(() => model.requests.some((r) => JSON.stringify(r.body).includes('a slow one')), 30_000, 'the model request');
    expect(await containerCount()).toBeGreaterThan(0);
    const started = Date.now();
    stopped = true;
    await app.stop('test shutdown');
    await relay.stop(2_000);
    expect(Date.now() - started).toBeLessThan(30_000);
    const note = botMessages(dm).filter((m) => m.message_reference?.message_id === asked).at(-1);
    expect(note?.content).toMatch(/restarting/);
    expect(await containerCount()).toBe(0);
    expect(relay.client.isReady()).toBe(false);
  }, 60_000);
}, { agentImage: 'build' });
