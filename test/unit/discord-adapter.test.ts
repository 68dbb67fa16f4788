import { DiscordAPIError, type REST } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { registerCommands } from '../../adapters/discord/commands.js';
import { DiscordChatAdapter } from '../../adapters/discord/discord-adapter.js';
import { ChatDeliveryError, type ThreadTarget } from '../../src/chat/adapter.js';
import { silentLogger } from '../../src/logger.js';

const GUILD = '100000000000000002';
const CHANNEL = '100000000000000003';
const MENTION = '100000000000000004';
const DM = '100000000000000005';

interface Call { method: string; route: string; body: Record<string, unknown> | undefined }

/** A REST stand-in: records calls, answers with a message id, or throws what `fail` returns. */
function fakeRest(fail: (call: Call) => unknown = () => undefined) {
  const calls: Call[] = [];
  let next = 1;
  const handle = (method: string) => async (route: string, options?: { body?: Record<string, unknown> }) => {
    const call = { method, route, body: options?.body };
    calls.push(call);
    const err = fail(call);
    if (err) throw err;
    return { id: `9000000000000000${next++}` };
  };
  return { calls, rest: { post: handle('POST'), patch: handle('PATCH'), put: handle('PUT') } as unknown as REST };
}

const apiError = (status: number, code: number) => new DiscordAPIError({ code, message: 'x' }, code, status, 'POST', 'u', { body: undefined, files: undefined });
const threadTarget: ThreadTarget = { chatKey: `discord:${GUILD}:${CHANNEL}`, channelId: MENTION, threadKey: MENTION };
const dmTarget: ThreadTarget = { chatKey: `discord:@me:${DM}`, channelId: DM, threadKey: DM };

describe('DiscordChatAdapter', () => {
  it('posts the first answer as a reply to the noted message, later posts plainly, with no pings', async () => {
    const { calls, rest } = fakeRest();
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    adapter.answerNext(DM, '100000000000000077');
    const posted = await adapter.post(dmTarget, ':hourglass_flowing_sand: Working… 0s');
    await adapter.update(dmTarget, posted, 'the answer');
    await adapter.post(dmTarget, 'part two');
    expect(calls.map((c) => `${c.method} ${c.route}`)).toEqual([`POST /channels/${DM}/messages`, `PATCH /channels/${DM}/messages/${posted.id}`, `POST /channels/${DM}/messages`]);
    expect(calls[0]!.body).toMatchObject({ content: '\u23F3 Working… 0s', message_reference: { message_id: '100000000000000077' }, allowed_mentions: { parse: [] } });
    expect(calls[2]!.body).not.toHaveProperty('message_reference');
  });

  it('holds posts until the thread is open, then posts into it', async () => {
    const { calls, rest } = fakeRest();
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    let open!: () => void;
    void adapter.prepareThread(MENTION, CHANNEL).open(() => new Promise<void>((resolve) => (open = resolve)));
    const posting = adapter.post(threadTarget, 'hello');
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(0);
    open();
    await posting;
    expect(calls[0]!.route).toBe(`/channels/${MENTION}/messages`);
  });

  it('holds posts from the moment a thread is prepared, and releases them on cancel', async () => {
    const { calls, rest } = fakeRest();
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    const pending = adapter.prepareThread(MENTION, CHANNEL);
    const posting = adapter.post(threadTarget, 'early');
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(0);
    pending.cancel();
    await posting;
    expect(calls[0]!.route).toBe(`/channels/${MENTION}/messages`);
  });

  it('forgets a reply note for a message that was not accepted', async () => {
    const { calls, rest } = fakeRest();
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    adapter.answerNext(DM, '100000000000000077');
    adapter.forgetAnswer(DM, '100000000000000077');
    await adapter.post(dmTarget, 'x');
    expect(calls[0]!.body).not.toHaveProperty('message_reference');
  });

  it('answers in the channel, replying to the mention, when Discord refuses the thread', async () => {
    const { calls, rest } = fakeRest();
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    await adapter.prepareThread(MENTION, CHANNEL).open(() => Promise.reject(apiError(403, 50013)));
    const posted = await adapter.post(threadTarget, 'hello');
    await adapter.update(threadTarget, posted, 'edited');
    expect(calls[0]).toMatchObject({ route: `/channels/${CHANNEL}/messages`, body: { message_reference: { message_id: MENTION } } });
    expect(calls[1]!.route).toBe(`/channels/${CHANNEL}/messages/${posted.id}`);
  });

  it('opens a thread a restart left unopened, then delivers into it', async () => {
    let threadExists = false;
    const { calls, rest } = fakeRest((call) => {
      if (call.route === `/channels/${CHANNEL}/messages/${MENTION}/threads`) {
        threadExists = true;
        return undefined;
      }
      return call.route.startsWith(`/channels/${MENTION}/`) && !threadExists ? apiError(404, 10003) : undefined;
    });
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    await adapter.post(threadTarget, 'recovered answer');
    expect(calls.map((c) => c.route)).toEqual([`/channels/${MENTION}/messages`, `/channels/${CHANNEL}/messages/${MENTION}/threads`, `/channels/${MENTION}/messages`]);
  });

  it('maps failures to ChatDeliveryError and keeps typing silent', async () => {
    const { rest } = fakeRest(() => apiError(403, 50001));
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    await expect(adapter.post(dmTarget, 'x')).rejects.toMatchObject({ name: 'ChatDeliveryError', code: 'forbidden' });
    await expect(adapter.update(dmTarget, { id: '1' }, 'x')).rejects.toBeInstanceOf(ChatDeliveryError);
    await expect(adapter.typing(dmTarget)).resolves.toBeUndefined();
  });

  it('uploads a file as a message attachment into the thread', async () => {
    const { calls, rest } = fakeRest();
    const adapter = new DiscordChatAdapter(rest, silentLogger());
    await adapter.upload(dmTarget, { filename: 'archive.md', title: ':page_facing_up: Transcript', content: '# hi' });
    expect(calls[0]).toMatchObject({ route: `/channels/${DM}/messages`, body: { content: '\uD83D\uDCC4 Transcript', attachments: [{ id: 0, filename: 'archive.md' }] } });
  });
});

describe('registerCommands', () => {
  it.each([
    ['per guild when DISCORD_GUILD_ID is set', GUILD, `/applications/${CHANNEL}/guilds/${GUILD}/commands`],
    ['globally otherwise', null, `/applications/${CHANNEL}/commands`],
  ])('%s', async (_name, guildId, route) => {
    const { calls, rest } = fakeRest();
    await registerCommands(rest, CHANNEL, guildId);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'PUT', route });
    expect((calls[0]!.body as unknown as Array<{ name: string }>)[0]!.name).toBe('codex');
  });
});
