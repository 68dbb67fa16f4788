/**
 * Delivery over the real @discordjs/rest client (as configured by createDiscordClient) against the
 * fake Discord: short rate limits are waited out, long ones and dead servers fail fast with a typed
 * error — so neither a turn's delivery nor shutdown can hang on Discord. No gateway, no Docker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'discord.js';
import { createDiscordClient } from '../../adapters/discord/client.js';
import { DiscordChatAdapter } from '../../adapters/discord/discord-adapter.js';
import { silentLogger } from '../../src/logger.js';
import { startFakeDiscord, type FakeDiscord } from '../fakes/fake-discord.js';

describe('Discord REST bounds', () => {
  let discord: FakeDiscord;
  let client: Client;
  let adapter: DiscordChatAdapter;
  const target = () => ({ chatKey: `discord:${discord.guildId}:${discord.channelId}`, channelId: discord.channelId, threadKey: discord.channelId });
  const posts = () => discord.calls.filter((c) => c.method === 'POST' && c.path === `/channels/${discord.channelId}/messages`).length;

  beforeAll(async () => {
    discord = await startFakeDiscord();
    client = createDiscordClient({ apiUrl: discord.apiUrl, restTimeoutMs: 500, restRetries: 1, maxRateLimitWaitMs: 2_000 });
    client.rest.setToken(discord.token);
    adapter = new DiscordChatAdapter(client.rest, silentLogger());
  });

  afterAll(async () => {
    await client?.destroy();
    await discord?.close();
  });

  const rateLimited = (seconds: number) => ({
    status: 429,
    headers: { 'retry-after': String(seconds), 'x-ratelimit-scope': 'user' },
    body: { message: 'You are being rate limited.', retry_after: seconds, global: false, code: 0 },
  });

  it('waits out a short 429 and delivers', async () => {
    const before = posts();
    discord.failNext('POST', `/channels/${discord.channelId}/messages`, rateLimited(0.3));
    const started = Date.now();
    await expect(adapter.post(target(), 'after a short limit')).resolves.toHaveProperty('id');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(posts() - before).toBe(2);
  });

  it('fails fast with rate_limited instead of waiting out a long 429', async () => {
    discord.failNext('POST', `/channels/${discord.channelId}/messages`, rateLimited(120));
    const started = Date.now();
    await expect(adapter.post(target(), 'never waits two minutes')).rejects.toMatchObject({ name: 'ChatDeliveryError', code: 'rate_limited' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('retries a 5xx a bounded number of times, then reports it as transient', async () => {
    const before = posts();
    discord.failNext('POST', `/channels/${discord.channelId}/messages`, { status: 502, body: { message: 'bad gateway', code: 0 } }, 2);
    await expect(adapter.post(target(), 'x')).rejects.toMatchObject({ code: 'transient' });
    expect(posts() - before).toBe(2);
  });

  it('gives up on a server that never answers within timeout × (retries + 1)', async () => {
    discord.failNext('PATCH', `/channels/${discord.channelId}/messages/`, { hang: true }, 2);
    const started = Date.now();
    await expect(adapter.update(target(), { id: '1' }, 'x')).rejects.toMatchObject({ code: 'transient' });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('reports content over 2,000 characters as too_large (the fake enforces the limit)', async () => {
    await expect(adapter.post(target(), 'x'.repeat(2001))).rejects.toMatchObject({ code: 'too_large' });
  });
});
