import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessPolicy, mayTalk } from '../../src/commands/access.js';
import { CommandHandler, type CommandContext } from '../../src/commands/handler.js';
import { parseCommand } from '../../src/commands/parse.js';
import { Store } from '../../src/db/store.js';
import { silentLogger } from '../../src/logger.js';

describe('parseCommand', () => {
  it.each([
    ['', { name: 'help' }],
    ['help', { name: 'help' }],
    ['setup', { name: 'setup' }],
    ['setup Platform Team', { name: 'setup', groupName: 'Platform Team' }],
    ['status', { name: 'status' }],
    ['model', { name: 'model' }],
    ['model gpt-5.5', { name: 'model', model: 'gpt-5.5' }],
    ['effort HIGH', { name: 'effort', effort: 'high' }],
    ['effort loud', { name: 'effort', invalid: 'loud' }],
    ['instructions', { name: 'instructions' }],
    ['instructions set Be brief.\nUse TypeScript.', { name: 'instructions', set: 'Be brief.\nUse TypeScript.' }],
    ['reset', { name: 'reset' }],
    ['archive', { name: 'archive' }],
    ['stop', { name: 'stop' }],
    ['admin <@U0BOB>', { name: 'admin', userId: 'U0BOB' }],
    ['frobnicate', { name: 'help', note: 'Unknown command "frobnicate".' }],
  ])('%j', (text, expected) => expect(parseCommand(text)).toEqual(expected));
});

describe('CommandHandler', () => {
  let store: Store;
  let handler: CommandHandler;
  const ctx = (userId: string, extra: Partial<CommandContext> = {}): CommandContext => ({
    platform: 'slack',
    chatKey: 'slack:T1:C1',
    channelId: 'C1',
    threadKey: null,
    userId,
    chatName: 'eng',
    ...extra,
  });

  beforeEach(() => {
    store = Store.open(':memory:');
    const access = new AccessPolicy({ ownerIds: [], adminIds: ['slack:UADMIN'], admins: store.admins });
    handler = new CommandHandler({ store, runtimes: { find: () => undefined }, access, log: silentLogger() });
  });
  afterEach(() => store.close());

  it('refuses setup by a non-admin and leaves the chat unregistered', async () => {
    const reply = await handler.handle(ctx('UALICE'), 'setup');
    expect(reply.text).toMatch(/only relay admins/i);
    expect(reply.ephemeral).toBe(true);
    expect(store.groups.byChatKey('slack:T1:C1')).toBeUndefined();
  });

  it('lets an admin set up a chat, publicly, with the settings shown', async () => {
    const reply = await handler.handle(ctx('UADMIN'), 'setup Platform');
    expect(reply.ephemeral).toBe(false);
    expect(reply.text).toContain('group `platform`');
    expect(store.groups.byChatKey('slack:T1:C1')?.name).toBe('Platform');
    expect((await handler.handle(ctx('UADMIN'), 'setup')).text).toMatch(/already set up/i);
  });

  it('pairs the first setup caller as owner when nobody is configured', async () => {
    const fresh = Store.open(':memory:');
    try {
      const access = new AccessPolicy({ ownerIds: [], adminIds: [], admins: fresh.admins });
      const h = new CommandHandler({ store: fresh, runtimes: { find: () => undefined }, access, log: silentLogger() });
      expect((await h.handle(ctx('UFIRST'), 'setup')).text).toContain('now the relay owner');
      expect(access.isOwner('slack:UFIRST')).toBe(true);
      expect((await h.handle(ctx('USECOND', { chatKey: 'slack:T1:C2' }), 'setup')).text).toMatch(/only relay admins/i);
    } finally {
      fresh.close();
    }
  });

  it('changes model, effort and instructions only for admins', async () => {
    await handler.handle(ctx('UADMIN'), 'setup');
    expect((await handler.handle(ctx('UALICE'), 'model gpt-5.5')).text).toMatch(/only relay admins/i);
    expect((await handler.handle(ctx('UADMIN'), 'model gpt-5.5')).ephemeral).toBe(false);
    expect((await handler.handle(ctx('UADMIN'), 'effort high')).ephemeral).toBe(false);
    await handler.handle(ctx('UADMIN'), 'instructions set Always answer in haiku.');
    const group = store.groups.byChatKey('slack:T1:C1')!;
    expect([group.model, group.reasoningEffort, group.instructions]).toEqual(['gpt-5.5', 'high', 'Always answer in haiku.']);
    expect((await handler.handle(ctx('UALICE'), 'instructions')).text).toContain('haiku');
  });

  it('answers commands in a chat that is not set up with a hint', async () => {
    expect((await handler.handle(ctx('UALICE'), 'status')).text).toMatch(/not set up/);
  });

  it('resets the thread the command came from', async () => {
    await handler.handle(ctx('UADMIN'), 'setup');
    const slug = store.groups.byChatKey('slack:T1:C1')!.slug;
    store.threads.setCodexThread(slug, '111.222', 'codex-thread-1');
    store.threads.setCodexThread(slug, '333.444', 'codex-thread-2');
    await handler.handle(ctx('UALICE', { threadKey: '111.222' }), 'reset');
    expect(store.threads.get(slug, '111.222')?.codexThreadId).toBeNull();
    expect(store.threads.get(slug, '333.444')?.codexThreadId).toBe('codex-thread-2');
  });
});

describe('CommandHandler archive', () => {
  it('uploads the transcript into the thread, unless the group turned posting off', async () => {
    const store = Store.open(':memory:');
    try {
      const access = new AccessPolicy({ ownerIds: [], adminIds: ['slack:UADMIN'], admins: store.admins });
      const archive = { transcriptFor: () => ({ filename: 'thread.md', content: '# transcript' }) };
      const handler = new CommandHandler({ store, runtimes: { find: () => undefined }, access, archive, log: silentLogger() });
      const ctx: CommandContext = { platform: 'slack', chatKey: 'slack:T1:C9', channelId: 'C9', threadKey: '1.2', userId: 'UADMIN' };
      await handler.handle(ctx, 'setup');
      const reply = await handler.handle(ctx, 'archive');
      expect(reply.upload?.target.threadKey).toBe('1.2');
      expect(reply.upload?.file.filename).toBe('thread.md');
      store.groups.update(store.groups.byChatKey('slack:T1:C9')!.slug, { archivePolicy: 'off' });
      const off = await handler.handle(ctx, 'archive');
      expect(off.upload).toBeUndefined();
      expect(off.text).toMatch(/off/);
    } finally {
      store.close();
    }
  });
});

describe('mayTalk', () => {
  it.each([
    [null, 'U1', true],
    [['U1'], 'U1', true],
    [['U1'], 'U2', false],
  ] as const)('allowlist %j, user %s → %s', (allowed, user, expected) => {
    expect(mayTalk({ allowedUsers: allowed === null ? null : [...allowed] }, user)).toBe(expected);
  });
});
