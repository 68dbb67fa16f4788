import { describe, expect, it } from 'vitest';
import { attachmentsOf } from '../../adapters/slack/attachments.js';
import { commandContext } from '../../adapters/slack/commands.js';
import { toDeliveryError } from '../../adapters/slack/errors.js';
import { cleanText, DM_THREAD_KEY, mapSlackEvent, threadTsOf, type MapContext, type MapResult } from '../../adapters/slack/events.js';
import { renderSlackManifest, slackManifest, manifestOptionsFromArgs, SLACK_BOT_SCOPES } from '../../adapters/slack/manifest.js';
import { checkEnvelope } from '../../adapters/slack/socket-guard.js';
import { webApi } from '@slack/bolt';
import { ChatDeliveryError } from '../../src/chat/adapter.js';
import { InboundMessageSchema } from '../../src/core/inbound.js';

const BOT = 'U0BOT';
const known = new Set(['slack:T0TEAM:C0CHAN|1700000000.000001']);
const ctx: MapContext = {
  botUserId: BOT,
  isKnownThread: (chatKey, threadKey) => known.has(`${chatKey}|${threadKey}`),
  userName: (id) => (id === 'U0ALICE' ? 'alice' : undefined),
};

function body(event: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { type: 'event_callback', team_id: 'T0TEAM', api_app_id: 'A0APP', event_id: 'Ev1', event_time: 1, event, ...extra };
}
const mention = (extra: Record<string, unknown> = {}) => ({ type: 'app_mention', user: 'U0ALICE', text: `<@${BOT}> fix the build`, ts: '1700000000.000100', channel: 'C0CHAN', ...extra });
const message = (extra: Record<string, unknown> = {}) => ({ type: 'message', channel_type: 'channel', user: 'U0ALICE', text: 'and the tests', ts: '1700000000.000200', channel: 'C0CHAN', ...extra });

function inbound(result: MapResult) {
  if (result.kind !== 'inbound') throw new Error(`expected inbound, got ${result.kind}: ${'reason' in result ? result.reason : ''}`);
  return result.inbound;
}

describe('mapSlackEvent', () => {
  it('maps a top-level mention to a new thread keyed by the mention ts, without the mention text', () => {
    const r = inbound(mapSlackEvent(body(mention()), ctx));
    expect(r.kind).toBe('mention');
    expect(r.threadTs).toBe('1700000000.000100');
    expect(r.wantsContext).toBe(false);
    expect(r.message).toMatchObject({
      platform: 'slack',
      chatKey: 'slack:T0TEAM:C0CHAN',
      threadKey: '1700000000.000100',
      channelId: 'C0CHAN',
      userId: 'U0ALICE',
      userName: 'alice',
      text: 'fix the build',
      eventId: 'T0TEAM/C0CHAN/1700000000.000100',
    });
    expect(InboundMessageSchema.safeParse(r.message).success).toBe(true);
  });

  it('continues the thread of a mention inside a thread, asking for context only when the bot is new there', () => {
    const fresh = inbound(mapSlackEvent(body(mention({ thread_ts: '1700000000.000050' })), ctx));
    expect(fresh.message.threadKey).toBe('1700000000.000050');
    expect(fresh.wantsContext).toBe(true);
    const knownThread = inbound(mapSlackEvent(body(mention({ thread_ts: '1700000000.000001' })), ctx));
    expect(knownThread.wantsContext).toBe(false);
  });

  it.each([
    ['a thread the bot is part of', message({ thread_ts: '1700000000.000001' }), 'inbound'],
    ['a thread without the bot', message({ thread_ts: '1700000000.000099' }), 'ignored'],
    ['a top-level channel message', message(), 'ignored'],
    ['a thread parent', message({ thread_ts: '1700000000.000200' }), 'ignored'],
    ['a mention in a known thread (left to app_mention)', message({ thread_ts: '1700000000.000001', text: `<@${BOT}> hi` }), 'ignored'],
    ['a file share in a known thread', message({ thread_ts: '1700000000.000001', subtype: 'file_share' }), 'inbound'],
    ['a thread broadcast', message({ thread_ts: '1700000000.000001', subtype: 'thread_broadcast' }), 'inbound'],
    ['an edit', message({ thread_ts: '1700000000.000001', subtype: 'message_changed' }), 'ignored'],
    ['a join', message({ subtype: 'channel_join' }), 'ignored'],
    ['another bot', message({ thread_ts: '1700000000.000001', bot_id: 'B0OTHER' }), 'ignored'],
    ['a bot_message subtype', message({ thread_ts: '1700000000.000001', subtype: 'bot_message', user: undefined }), 'ignored'],
    ['the bot itself', message({ thread_ts: '1700000000.000001', user: BOT }), 'ignored'],
    ['a message without a user', message({ thread_ts: '1700000000.000001', user: undefined }), 'ignored'],
    ['a mention by a bot', mention({ bot_id: 'B0OTHER' }), 'ignored'],
    ['an unrelated event type', { type: 'reaction_added', user: 'U0ALICE' }, 'ignored'],
  ])('%s → %s', (_name, event, kind) => {
    expect(mapSlackEvent(body(event), ctx).kind).toBe(kind);
  });

  it('maps a DM to its own chat: top level shares one thread, a reply thread is its own', () => {
    const top = inbound(mapSlackEvent(body(message({ channel: 'D0DM', channel_type: 'im', text: `hello <@${BOT}>` })), ctx));
    expect(top.kind).toBe('dm');
    expect(top.message).toMatchObject({ chatKey: 'slack:T0TEAM:D0DM', threadKey: DM_THREAD_KEY, text: 'hello' });
    expect(top.threadTs).toBeUndefined();
    const threaded = inbound(mapSlackEvent(body(message({ channel: 'D0DM', channel_type: 'im', thread_ts: '1700000000.000150' })), ctx));
    expect(threaded.message.threadKey).toBe('1700000000.000150');
    expect(threaded.threadTs).toBe('1700000000.000150');
  });

  it('keys a message, not an envelope: a redelivery and the app_mention/message twins dedupe', () => {
    const a = inbound(mapSlackEvent(body(mention({ thread_ts: '1700000000.000001' }), { event_id: 'Ev1' }), ctx));
    const b = inbound(mapSlackEvent(body(mention({ thread_ts: '1700000000.000001' }), { event_id: 'Ev2' }), ctx));
    expect(a.message.eventId).toBe(b.message.eventId);
    expect(a.slackEventId).not.toBe(b.slackEventId);
  });

  it('carries shared files as attachments to download at turn time, and names the ones Slack withholds', () => {
    const file = { id: 'F1', name: 'log.txt', mimetype: 'text/plain', size: 12, url_private_download: 'https://files.slack.com/x', mode: 'hosted' };
    const gone = { id: 'F2', name: 'old.pdf', mode: 'tombstone' };
    const r = inbound(mapSlackEvent(body(mention({ files: [file, gone] })), ctx));
    expect(r.message.attachments).toEqual([{ name: 'log.txt', url: 'https://files.slack.com/x', mimeType: 'text/plain', sizeBytes: 12 }]);
    expect(r.message.text).toBe('fix the build\n(A shared file, old.pdf, is not available for download.)');
    expect(InboundMessageSchema.safeParse(r.message).success).toBe(true);
  });

  it.each([
    ['not an object', 'hello'],
    ['null', null],
    ['no event', { type: 'event_callback', team_id: 'T0TEAM', event_id: 'Ev1' }],
    ['no team', { type: 'event_callback', event_id: 'Ev1', event: mention() }],
    ['a bad ts', body(mention({ ts: 'yesterday' }))],
    ['a mention without a channel', body(mention({ channel: undefined }))],
    ['a mention with a number as text', body(mention({ text: 42 }))],
    ['a message with a bad thread_ts', body(message({ thread_ts: 'x' }))],
    ['an id with a path in it', body(mention({ channel: '../etc' }))],
    ['too many files', body(mention({ files: Array.from({ length: 21 }, (_, i) => ({ id: `F${i}` })) }))],
  ])('refuses %s as malformed with a reason', (_name, raw) => {
    const r = mapSlackEvent(raw, ctx);
    expect(r.kind).toBe('malformed');
    if (r.kind === 'malformed') expect(r.reason.length).toBeGreaterThan(5);
  });

  it('strips only the bot mention', () => {
    expect(cleanText(`<@${BOT}> ask <@U0BOB> about it`, BOT)).toBe('ask <@U0BOB> about it');
    expect(cleanText(`<@${BOT}|codex>: hi`, BOT)).toBe('hi');
  });

  it('posts into a thread only for ts-shaped thread keys', () => {
    expect(threadTsOf('1700000000.000100')).toBe('1700000000.000100');
    expect(threadTsOf(DM_THREAD_KEY)).toBeUndefined();
  });
});

describe('commandContext', () => {
  const base = { command: '/codex', text: 'setup', team_id: 'T0TEAM', user_id: 'U0ALICE', user_name: 'alice' };
  it('maps a channel command', () => {
    expect(commandContext({ ...base, channel_id: 'C0CHAN', channel_name: 'eng' })).toEqual({
      platform: 'slack',
      chatKey: 'slack:T0TEAM:C0CHAN',
      channelId: 'C0CHAN',
      threadKey: null,
      userId: 'U0ALICE',
      userName: 'alice',
      chatName: 'eng',
    });
  });
  it('names a DM after its person and matches the DM chat key of messages', () => {
    const c = commandContext({ ...base, channel_id: 'D0DM', channel_name: 'directmessage' });
    expect(c.chatKey).toBe('slack:T0TEAM:D0DM');
    expect(c.chatName).toBe('DM alice');
  });
});

describe('toDeliveryError', () => {
  it.each([
    [new webApi.WebAPIPlatformError({ ok: false, error: 'channel_not_found' }), 'not_found'],
    [new webApi.WebAPIPlatformError({ ok: false, error: 'not_in_channel' }), 'forbidden'],
    [new webApi.WebAPIPlatformError({ ok: false, error: 'invalid_auth' }), 'forbidden'],
    [new webApi.WebAPIPlatformError({ ok: false, error: 'msg_too_long' }), 'too_large'],
    [new webApi.WebAPIPlatformError({ ok: false, error: 'ratelimited' }), 'rate_limited'],
    [new webApi.WebAPIPlatformError({ ok: false, error: 'internal_error' }), 'transient'],
    [new webApi.WebAPIPlatformError({ ok: false, error: 'something_new' }), 'unknown'],
    [new webApi.WebAPIRateLimitedError(3), 'rate_limited'],
    [new webApi.WebAPIHTTPError(503, 'Service Unavailable', {}, ''), 'transient'],
    [new webApi.WebAPIHTTPError(404, 'Not Found', {}, ''), 'not_found'],
    [new webApi.WebAPIRequestError(new Error('ECONNRESET')), 'transient'],
    [new TypeError('boom'), 'unknown'],
  ])('%s → %s', (err, code) => {
    const mapped = toDeliveryError(err, 'chat.postMessage');
    expect(mapped).toBeInstanceOf(ChatDeliveryError);
    expect(mapped.code).toBe(code);
    expect(mapped.message).toMatch(/^Slack chat\.postMessage failed: /);
    expect(mapped.cause).toBe(err);
  });
  it('passes a ChatDeliveryError through', () => {
    const err = new ChatDeliveryError('too_large', 'x');
    expect(toDeliveryError(err, 'y')).toBe(err);
  });
});

describe('Socket Mode envelope gate', () => {
  const ok = (v: unknown) => checkEnvelope(JSON.stringify(v), false);
  it.each([
    [{ type: 'hello', num_connections: 1 }],
    [{ type: 'disconnect', reason: 'refresh_requested' }],
    [{ type: 'events_api', envelope_id: 'e1', payload: { type: 'event_callback', event: { type: 'app_mention' } } }],
    [{ type: 'slash_commands', envelope_id: 'e2', payload: { command: '/codex', team_id: 'T', channel_id: 'C', user_id: 'U' } }],
  ])('lets %j through', (v) => expect(ok(v)).toEqual({ ok: true }));

  it.each([
    ['not JSON', '{oops', undefined],
    ['no type', JSON.stringify({ envelope_id: 'e3' }), 'e3'],
    ['events_api without payload', JSON.stringify({ type: 'events_api', envelope_id: 'e4' }), 'e4'],
    ['events_api without event', JSON.stringify({ type: 'events_api', envelope_id: 'e5', payload: { type: 'event_callback' } }), 'e5'],
    ['an event named like a client state', JSON.stringify({ type: 'events_api', envelope_id: 'e6', payload: { type: 'event_callback', event: { type: 'close' } } }), 'e6'],
    ['slash command without payload', JSON.stringify({ type: 'slash_commands', envelope_id: 'e7', payload: null }), 'e7'],
    ['interactive (unused)', JSON.stringify({ type: 'interactive', envelope_id: 'e8', payload: {} }), 'e8'],
  ])('drops %s (ack id %s)', (_name, raw, envelopeId) => {
    const v = checkEnvelope(raw, false);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.envelopeId).toBe(envelopeId);
  });

  it('drops binary frames', () => expect(checkEnvelope(new ArrayBuffer(2), true).ok).toBe(false));
});

describe('manifest', () => {
  it('asks for exactly the scopes, events and command the relay uses, in Socket Mode', () => {
    const m = slackManifest() as {
      oauth_config: { scopes: { bot: string[] } };
      settings: { event_subscriptions: { bot_events: string[] }; socket_mode_enabled: boolean };
      features: { slash_commands: Array<{ command: string; should_escape: boolean }>; app_home: { messages_tab_enabled: boolean } };
    };
    expect([...m.oauth_config.scopes.bot].sort()).toEqual(
      ['app_mentions:read', 'chat:write', 'channels:history', 'groups:history', 'im:history', 'im:read', 'im:write', 'files:read', 'files:write', 'commands', 'users:read'].sort(),
    );
    expect(m.settings.event_subscriptions.bot_events).toEqual(['app_mention', 'message.channels', 'message.groups', 'message.im']);
    expect(m.settings.socket_mode_enabled).toBe(true);
    expect(m.features.slash_commands).toMatchObject([{ command: '/codex', should_escape: true }]);
    expect(m.features.app_home.messages_tab_enabled).toBe(true);
    expect(JSON.parse(renderSlackManifest())).toEqual(m);
    expect(SLACK_BOT_SCOPES).toHaveLength(11);
  });

  it('switches to HTTP mode with a request URL', () => {
    const m = slackManifest(manifestOptionsFromArgs(['--name', 'Team Codex', '--request-url', 'https://relay.example.com/slack/events'])) as {
      display_information: { name: string };
      settings: { event_subscriptions: { request_url: string }; socket_mode_enabled: boolean };
      features: { slash_commands: Array<{ url: string }> };
    };
    expect(m.display_information.name).toBe('Team Codex');
    expect(m.settings.socket_mode_enabled).toBe(false);
    expect(m.settings.event_subscriptions.request_url).toBe('https://relay.example.com/slack/events');
    expect(m.features.slash_commands[0]?.url).toBe('https://relay.example.com/slack/events');
    expect(() => manifestOptionsFromArgs(['--request-url', 'http://insecure'])).toThrow(/https/);
    expect(() => manifestOptionsFromArgs(['--bogus'])).toThrow(/unknown option/);
  });
});

describe('attachmentsOf', () => {
  it.each([
    ['a hosted file', { id: 'F1', name: 'a.txt', mimetype: 'text/plain', size: 3, url_private_download: 'https://files.slack.com/d', url_private: 'https://files.slack.com/p', mode: 'hosted' }, { name: 'a.txt', url: 'https://files.slack.com/d', mimeType: 'text/plain', sizeBytes: 3 }],
    ['a snippet without a download URL', { id: 'F2', name: 's.py', url_private: 'https://files.slack.com/p', mode: 'snippet' }, { name: 's.py', url: 'https://files.slack.com/p', mimeType: 'application/octet-stream', sizeBytes: 0 }],
    ['a file named only by its title', { id: 'F3', title: 'Notes', url_private: 'https://files.slack.com/p' }, { name: 'Notes', url: 'https://files.slack.com/p', mimeType: 'application/octet-stream', sizeBytes: 0 }],
  ])('offers %s', (_n, file, expected) => expect(attachmentsOf([file])).toEqual({ attachments: [expected], unavailable: [] }));

  it.each([
    ['a deleted file', { id: 'F4', name: 'x', mode: 'tombstone', url_private: 'https://files.slack.com/p' }],
    ['a file over the plan limit', { id: 'F5', name: 'y', mode: 'hidden_by_limit' }],
    ['an external file', { id: 'F6', name: 'z', mode: 'external', url_private: 'https://drive.example/z' }],
    ['a file without a URL', { id: 'F7', name: 'w' }],
  ])('withholds %s', (_n, file) => expect(attachmentsOf([file])).toEqual({ attachments: [], unavailable: [file.name] }));
});
