import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../../src/db/store.js';
import type { InboxRow } from '../../src/db/rows.js';
import { silentLogger } from '../../src/logger.js';
import type { GroupRuntimes } from '../../src/router/group-runtimes.js';
import { Router } from '../../src/router/router.js';

describe('Router.takesPartIn', () => {
  let store: Store;
  let router: Router;
  const submitted: InboxRow[] = [];
  const message = (threadKey: string, eventId: string, userId = 'U1') => ({ platform: 'slack', chatKey: 'slack:T:C', threadKey, channelId: 'C', userId, text: 'hi', eventId });

  beforeEach(() => {
    store = Store.open(':memory:');
    const runtimes = { get: () => ({ submit: (row: InboxRow) => void submitted.push(row) }) } as unknown as GroupRuntimes;
    router = new Router(store, runtimes, silentLogger());
  });
  afterEach(() => store.close());

  it('knows a thread once a message in it was accepted, before any Codex thread exists', () => {
    store.groups.create({ slug: 'g', chatKey: 'slack:T:C', platform: 'slack', name: 'g' });
    expect(router.takesPartIn('slack:T:C', '1.1')).toBe(false);
    expect(router.accept(message('1.1', 'e1')).status).toBe('accepted');
    expect(router.takesPartIn('slack:T:C', '1.1')).toBe(true);
    expect(router.takesPartIn('slack:T:C', '2.2')).toBe(false);
  });

  it('knows threads with a Codex thread on record (after a restart)', () => {
    store.groups.create({ slug: 'g', chatKey: 'slack:T:C', platform: 'slack', name: 'g' });
    store.threads.setCodexThread('g', '3.3', 'codex-1');
    expect(router.takesPartIn('slack:T:C', '3.3')).toBe(true);
  });

  it('does not take part in threads of refused messages', () => {
    expect(router.accept(message('4.4', 'e2')).status).toBe('not-set-up');
    expect(router.takesPartIn('slack:T:C', '4.4')).toBe(false);
    store.groups.create({ slug: 'g', chatKey: 'slack:T:C', platform: 'slack', name: 'g' });
    store.groups.update('g', { allowedUsers: ['U9'] });
    expect(router.accept(message('5.5', 'e3')).status).toBe('not-allowed');
    expect(router.takesPartIn('slack:T:C', '5.5')).toBe(false);
  });
});
