import { DiscordAPIError, HTTPError, RateLimitError, type Message } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { malformedDispatch } from '../../adapters/discord/client.js';
import { codexCommandDefinitions, commandContextOf, commandTextOf, type InteractionFacts } from '../../adapters/discord/commands.js';
import { decideDm } from '../../adapters/discord/dm-policy.js';
import { toDeliveryError } from '../../adapters/discord/errors.js';
import { discordText } from '../../adapters/discord/format.js';
import {
  cleanText,
  dmChatKey,
  guildChatKey,
  readMessageFacts,
  routeMessage,
  threadNameFor,
  toInbound,
  type MessageFacts,
  type RouteContext,
} from '../../adapters/discord/mapping.js';
import { COMMAND_NAMES, parseCommand } from '../../src/commands/parse.js';
import { InboundMessageSchema } from '../../src/core/inbound.js';

const BOT = '100000000000000001';
const GUILD = '100000000000000002';
const CHANNEL = '100000000000000003';
const THREAD = '100000000000000004';
const DM = '100000000000000005';
const USER = '100000000000000006';
const MSG = '100000000000000007';

function facts(overrides: Partial<MessageFacts> = {}): MessageFacts {
  return {
    id: MSG,
    channelId: CHANNEL,
    guildId: GUILD,
    channelKind: 'text',
    parentId: null,
    threadOwnerId: null,
    author: { id: USER, name: 'alice', bot: false },
    system: false,
    webhook: false,
    content: `<@${BOT}> hello there`,
    mentionsBot: true,
    attachments: [],
    ...overrides,
  };
}

const relayThreads = new Set([`${guildChatKey(GUILD, CHANNEL)}|${THREAD}`]);
const ctx: RouteContext = { botId: BOT, isRelayThread: (chatKey, threadKey) => relayThreads.has(`${chatKey}|${threadKey}`) };
const inThread = (o: Partial<MessageFacts> = {}) => facts({ channelId: THREAD, channelKind: 'thread', parentId: CHANNEL, ...o });

describe('routeMessage', () => {
  it.each<[string, MessageFacts, string]>([
    ['its own message', facts({ author: { id: BOT, name: 'codex', bot: true } }), 'ignore:self'],
    ['another bot', facts({ author: { id: USER, name: 'bot', bot: true } }), 'ignore:bot'],
    ['a webhook', facts({ webhook: true }), 'ignore:bot'],
    ['a system message', facts({ system: true }), 'ignore:system'],
    ['a DM', facts({ channelId: DM, guildId: null, channelKind: 'dm', mentionsBot: false }), 'dm'],
    ['a mention in a text channel', facts(), 'mention'],
    ['a text-channel message without mention', facts({ mentionsBot: false, content: 'hi all' }), 'ignore:not-addressed'],
    ['a follow-up in a relay thread', inThread({ mentionsBot: false, content: 'and then?' }), 'thread'],
    ['a mention in any thread', inThread({ channelId: '100000000000000099' }), 'thread'],
    ['a thread message not for the relay', inThread({ channelId: '100000000000000099', mentionsBot: false }), 'ignore:not-addressed'],
    ['a voice or forum channel', facts({ channelKind: 'other' }), 'ignore:unsupported-channel'],
    ['a guild-less non-DM channel', facts({ guildId: null }), 'ignore:unsupported-channel'],
  ])('%s', (_name, input, expected) => {
    const route = routeMessage(input, ctx);
    expect(route.kind === 'ignore' ? `ignore:${route.reason}` : route.kind).toBe(expected);
  });

  it('keys a DM as its own chat with the DM channel as the one thread', () => {
    expect(routeMessage(facts({ channelId: DM, guildId: null, channelKind: 'dm' }), ctx)).toEqual({ kind: 'dm', chatKey: `discord:@me:${DM}`, threadKey: DM, channelId: DM });
  });

  it('keys a mention to the thread it opens: the message id, under the channel chat', () => {
    expect(routeMessage(facts(), ctx)).toEqual({
      kind: 'mention',
      chatKey: `discord:${GUILD}:${CHANNEL}`,
      threadKey: MSG,
      channelId: MSG,
      parentChannelId: CHANNEL,
      threadName: 'hello there',
    });
  });

  it('keys a thread message to the thread, under its parent channel chat', () => {
    expect(routeMessage(inThread({ mentionsBot: false }), ctx)).toEqual({ kind: 'thread', chatKey: `discord:${GUILD}:${CHANNEL}`, threadKey: THREAD, channelId: THREAD });
  });
});

describe('toInbound', () => {
  it('builds a valid InboundMessage without the bot mention, attachments mapped', () => {
    const f = facts({
      content: `<@!${BOT}>  please look at <@${USER}>'s file`,
      attachments: [
        { name: 'shot.png', url: 'https://cdn.discordapp.com/a/shot.png', contentType: 'image/png', size: 1234 },
        { name: `${'n'.repeat(300)}.txt`, url: 'https://cdn.discordapp.com/a/n.txt', contentType: null, size: 5 },
      ],
    });
    const route = routeMessage(f, ctx);
    if (route.kind === 'ignore') throw new Error('ignored');
    const inbound = InboundMessageSchema.parse(toInbound(f, route, BOT));
    expect(inbound).toMatchObject({ platform: 'discord', chatKey: guildChatKey(GUILD, CHANNEL), threadKey: MSG, channelId: MSG, userId: USER, userName: 'alice', eventId: MSG });
    expect(inbound.text).toBe(`please look at <@${USER}>'s file`);
    expect(inbound.attachments[0]).toEqual({ name: 'shot.png', url: 'https://cdn.discordapp.com/a/shot.png', mimeType: 'image/png', sizeBytes: 1234 });
    expect(inbound.attachments[1]!.name).toHaveLength(255);
    expect(inbound.attachments[1]!.mimeType).toBe('application/octet-stream');
  });

  it('keeps at most 20 attachments', () => {
    const many = Array.from({ length: 25 }, (_, i) => ({ name: `f${i}`, url: `https://cdn.discordapp.com/${i}`, contentType: null, size: 1 }));
    const f = facts({ channelId: DM, guildId: null, channelKind: 'dm', attachments: many });
    const route = routeMessage(f, ctx);
    if (route.kind === 'ignore') throw new Error('ignored');
    expect(InboundMessageSchema.parse(toInbound(f, route, BOT)).attachments).toHaveLength(20);
  });
});

describe('text helpers', () => {
  it.each([
    [`<@${BOT}> hi`, 'hi'],
    [`hi <@!${BOT}>`, 'hi'],
    [`a <@${BOT}> b <@${BOT}>`, 'a b'],
    [`<@${USER}> stays`, `<@${USER}> stays`],
    ['line one\nline two', 'line one\nline two'],
  ])('cleanText(%j) = %j', (input, expected) => expect(cleanText(input, BOT)).toBe(expected));

  it.each([
    ['fix the build\nmore detail', 'fix the build'],
    ['', 'Codex for alice'],
    ['x'.repeat(150), `${'x'.repeat(99)}…`],
  ])('threadNameFor(%j)', (text, expected) => {
    const name = threadNameFor(text, 'alice');
    expect(name).toBe(expected);
    expect(name.length).toBeLessThanOrEqual(100);
  });

  it.each([
    [':hourglass_flowing_sand: Working… 3s', '\u23F3 Working… 3s'],
    [':warning: Codex could not finish', '\u26A0\uFE0F Codex could not finish'],
    ['no :shortcodes: here', 'no :shortcodes: here'],
  ])('discordText(%j)', (input, expected) => expect(discordText(input)).toBe(expected));
});

describe('readMessageFacts', () => {
  const stub = (o: Record<string, unknown>) =>
    ({
      id: MSG,
      channelId: DM,
      guildId: null,
      channel: { type: 1, isThread: () => false },
      author: { id: USER, username: 'alice', globalName: null, bot: false },
      member: null,
      system: false,
      type: 0,
      webhookId: null,
      content: 'hello',
      mentions: { users: new Map() },
      attachments: new Map(),
      ...o,
    }) as unknown as Message;

  it('reads a well-formed DM', () => {
    const read = readMessageFacts(stub({}), BOT);
    expect(read).toEqual({ ok: true, facts: expect.objectContaining({ channelKind: 'dm', author: { id: USER, name: 'alice', bot: false }, mentionsBot: false }) });
  });

  it('marks a thread starter message (type 21) as system, so routing ignores it', () => {
    const read = readMessageFacts(stub({ type: 21 }), BOT);
    expect(read.ok && read.facts.system).toBe(true);
  });

  it.each<[string, Record<string, unknown>]>([
    ['no author', { author: null }],
    ['numeric content', { content: 42 }],
    ['a non-snowflake id', { id: 'abc' }],
    ['an author without a name', { author: { id: USER, bot: false } }],
  ])('refuses %s with a reason', (_name, o) => {
    const read = readMessageFacts(stub(o), BOT);
    expect(read.ok).toBe(false);
    if (!read.ok) expect(read.reason.length).toBeGreaterThan(3);
  });
});

describe('readMessageFacts on a message discord.js cannot fully build', () => {
  it('refuses instead of throwing when a getter throws', () => {
    const message = { id: MSG, content: 'x' };
    Object.defineProperty(message, 'channel', {
      get() {
        throw new Error('boom');
      },
    });
    const read = readMessageFacts(message as unknown as Message, BOT);
    expect(read).toEqual({ ok: false, reason: 'unreadable message: boom' });
  });
});

describe('decideDm', () => {
  it.each<[string, 'allowlist' | 'open' | 'off', string[], boolean, boolean]>([
    ['allowlisted user', 'allowlist', [USER], false, true],
    ['stranger under allowlist', 'allowlist', [], false, false],
    ['admin under allowlist', 'allowlist', [], true, true],
    ['stranger when open', 'open', [], false, true],
    ['admin when off', 'off', [USER], true, false],
  ])('%s', (_name, dmPolicy, dmAllowlist, isAdmin, allowed) => {
    const decision = decideDm({ dmPolicy, dmAllowlist }, USER, isAdmin);
    expect(decision.allowed).toBe(allowed);
    if (!decision.allowed) expect(decision.reply).toMatch(/^Sorry/);
  });

  it('tells a refused user their id so an admin can add it', () => {
    const decision = decideDm({ dmPolicy: 'allowlist', dmAllowlist: [] }, USER, false);
    expect(!decision.allowed && decision.reply).toContain(USER);
  });
});

describe('/codex command', () => {
  it('registers one subcommand per shared command name', () => {
    const [command] = codexCommandDefinitions() as Array<{ name: string; options: Array<{ name: string }> }>;
    expect(command!.name).toBe('codex');
    expect(command!.options.map((o) => o.name)).toEqual([...COMMAND_NAMES]);
  });

  it.each<[string, Record<string, string>, string]>([
    ['help', {}, 'help'],
    ['setup', {}, 'setup'],
    ['setup', { name: 'Team A' }, 'setup Team A'],
    ['status', {}, 'status'],
    ['model', { name: 'gpt-5.5' }, 'model gpt-5.5'],
    ['effort', { level: 'high' }, 'effort high'],
    ['instructions', {}, 'instructions'],
    ['instructions', { set: 'Be brief.\nUse TypeScript.' }, 'instructions set Be brief.\nUse TypeScript.'],
    ['reset', {}, 'reset'],
    ['archive', {}, 'archive'],
    ['stop', {}, 'stop'],
    ['admin', { user: USER }, `admin ${USER}`],
  ])('/codex %s %j → %j, which the shared parser reads as that command', (sub, options, text) => {
    expect(commandTextOf({ subcommand: sub, options })).toBe(text);
    expect(parseCommand(text).name).toBe(sub);
  });

  const base: InteractionFacts = { commandName: 'codex', subcommand: 'status', options: {}, guildId: GUILD, channelId: CHANNEL, parentId: null, channelName: 'general', userId: USER, userName: 'alice' };
  it.each<[string, Partial<InteractionFacts>, object]>([
    ['a server channel', {}, { chatKey: guildChatKey(GUILD, CHANNEL), channelId: CHANNEL, threadKey: null, chatName: 'general' }],
    ['a thread', { channelId: THREAD, parentId: CHANNEL }, { chatKey: guildChatKey(GUILD, CHANNEL), channelId: THREAD, threadKey: THREAD }],
    ['a DM', { guildId: null, channelId: DM, channelName: null }, { chatKey: dmChatKey(DM), channelId: DM, threadKey: DM, chatName: 'DM alice' }],
  ])('context in %s', (_name, o, expected) => {
    expect(commandContextOf({ ...base, ...o })).toMatchObject({ platform: 'discord', userId: USER, ...expected });
  });
});

describe('malformedDispatch', () => {
  const interaction = { id: MSG, application_id: BOT, type: 2, token: 't', entitlements: [], authorizing_integration_owners: {}, data: { name: 'codex' } };
  it.each<[string, { t?: unknown; d?: unknown }, boolean]>([
    ['a good message', { t: 'MESSAGE_CREATE', d: { id: MSG, channel_id: DM, author: { id: USER } } }, true],
    ['a message with null payload', { t: 'MESSAGE_CREATE', d: null }, false],
    ['a message without author', { t: 'MESSAGE_CREATE', d: { id: MSG, channel_id: DM } }, false],
    ['a message with a bad id', { t: 'MESSAGE_CREATE', d: { id: 'x', channel_id: DM, author: { id: USER } } }, false],
    ['a good interaction', { t: 'INTERACTION_CREATE', d: interaction }, true],
    ['an interaction without entitlements', { t: 'INTERACTION_CREATE', d: { ...interaction, entitlements: undefined } }, false],
    ['a command interaction without data', { t: 'INTERACTION_CREATE', d: { ...interaction, data: undefined } }, false],
    ['an array payload', { t: 'GUILD_CREATE', d: [] }, false],
    ['an unknown event with an object', { t: 'SOMETHING_NEW', d: {} }, true],
    ['RESUMED without payload', { t: 'RESUMED', d: null }, true],
    ['a non-dispatch frame', { d: null }, true],
  ])('%s', (_name, packet, ok) => {
    expect(malformedDispatch(packet) === null).toBe(ok);
  });
});

describe('toDeliveryError', () => {
  const api = (status: number, code: number, errors?: object) =>
    new DiscordAPIError({ code, message: 'x', ...(errors ? { errors } : {}) } as never, code, status, 'POST', '/channels/1/messages', { body: undefined, files: undefined });
  it.each<[string, unknown, string]>([
    ['unknown channel', api(404, 10003), 'not_found'],
    ['unknown message', api(404, 10008), 'not_found'],
    ['missing access', api(403, 50001), 'forbidden'],
    ['missing permissions', api(403, 50013), 'forbidden'],
    ['content too long', api(400, 50035, { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }] } }), 'too_large'],
    ['other form error', api(400, 50035, { content: { _errors: [{ code: 'BASE_TYPE_REQUIRED', message: 'required' }] } }), 'unknown'],
    ['429 from Discord', api(429, 0), 'rate_limited'],
    ['a server error', api(502, 0), 'transient'],
    ['rejected rate limit', new RateLimitError({ timeToReset: 1, limit: 1, method: 'POST', hash: 'h', url: 'u', route: '/r', majorParameter: '1', global: false, retryAfter: 61_000, sublimitTimeout: 0, scope: 'user' }), 'rate_limited'],
    ['an HTTP 503', new HTTPError(503, 'Service Unavailable', 'POST', 'u', { body: undefined, files: undefined }), 'transient'],
    ['a timeout', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'transient'],
    ['a refused connection', new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) }), 'transient'],
    ['anything else', new Error('weird'), 'unknown'],
  ])('%s → %s', (_name, err, code) => {
    const mapped = toDeliveryError(err, 'post message');
    expect(mapped.code).toBe(code);
    expect(mapped.message).toContain('post message');
  });
});
