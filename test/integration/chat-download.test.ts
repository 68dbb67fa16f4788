import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REST } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscordChatAdapter, discordFileHosts } from '../../adapters/discord/discord-adapter.js';
import { downloadLimited } from '../../src/chat/download.js';
import { silentLogger } from '../../src/logger.js';

describe('downloadLimited (shared by the Slack and Discord adapters)', () => {
  let server: Server;
  let base: string;
  let other: Server;
  let otherBase: string;
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

  const listen = (s: Server) => new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      if (req.url === '/small') return void res.end('hello');
      if (req.url === '/big') return void res.end(Buffer.alloc(5000));
      if (req.url?.startsWith('/redirect')) {
        res.writeHead(302, { location: `${otherBase}/small` });
        return void res.end();
      }
      res.writeHead(404);
      res.end();
    });
    other = createServer((req, res) => {
      seen.push({ url: `other${req.url}`, headers: req.headers });
      res.end('from elsewhere');
    });
    base = await listen(server);
    otherBase = await listen(other);
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await new Promise((r) => other.close(r));
  });

  const options = () => ({ allowedHosts: new Set([new URL(base).host]), authorization: 'Bearer secret-token', maxBytes: 1024, what: 'Test file' });

  it('fetches from an allowed host with the credential', async () => {
    expect((await downloadLimited(`${base}/small`, options())).toString()).toBe('hello');
    expect(seen.at(-1)?.headers.authorization).toBe('Bearer secret-token');
  });

  it('refuses other hosts, oversize bodies and missing files with typed codes', async () => {
    await expect(downloadLimited(`${otherBase}/small`, options())).rejects.toMatchObject({ code: 'forbidden' });
    await expect(downloadLimited(`${base}/big`, options())).rejects.toMatchObject({ code: 'too_large' });
    await expect(downloadLimited(`${base}/nope`, options())).rejects.toMatchObject({ code: 'not_found' });
  });

  it('drops the credential when a redirect leaves the allowed hosts', async () => {
    expect((await downloadLimited(`${base}/redirect`, options())).toString()).toBe('from elsewhere');
    expect(seen.at(-1)).toMatchObject({ url: 'other/small' });
    expect(seen.at(-1)?.headers.authorization).toBeUndefined();
  });

  it('is what the Discord adapter downloads attachments with', async () => {
    const adapter = new DiscordChatAdapter(new REST(), silentLogger(), discordFileHosts(base));
    const bytes = await adapter.download({ name: 'a.txt', url: `${base}/small`, mimeType: 'text/plain', sizeBytes: 5 }, 1024);
    expect(bytes.toString()).toBe('hello');
    expect(seen.at(-1)?.headers.authorization).toBeUndefined(); // Discord CDN URLs are signed; no token is sent
    await expect(adapter.download({ name: 'x', url: 'https://evil.example/x', mimeType: 'text/plain', sizeBytes: 1 }, 1024)).rejects.toMatchObject({ code: 'forbidden' });
  });
});
