/**
 * Discord wired into a RelayApp: builds the client, the ChatAdapter, the inbound and interaction
 * bridges; logs in, waits for the gateway to be ready, registers `/codex`.
 *
 * Life: reconnects and resumes are discord.js's job (logged here). Shutdown is two steps around
 * `app.stop()`: the app stops first (running turns are requeued and their threads told — over
 * Discord, so the client must still be up; messages arriving meanwhile are still stored and run
 * after the restart), then `stop()` pauses the bridges, waits briefly for deliveries in flight and
 * destroys the client. Every REST call is bounded (client.ts), so neither step can hang.
 */
import { Events, type Client } from 'discord.js';
import type { RelayApp } from '../../src/app.js';
import { AccessPolicy } from '../../src/commands/access.js';
import { CommandHandler } from '../../src/commands/handler.js';
import type { Config, DiscordConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { createDiscordClient, installGatewayGuard, type DiscordClientOptions } from './client.js';
import { registerCommands } from './commands.js';
import { DiscordChatAdapter, discordFileHosts } from './discord-adapter.js';
import { DiscordInbound } from './inbound.js';
import { DiscordInteractions } from './interactions.js';

export interface DiscordRelayOptions {
  app: Pick<RelayApp, 'router' | 'store' | 'runtimes' | 'archive' | 'registerAdapter'>;
  discord: DiscordConfig;
  /** Owners and admins (env), combined with the admins table. */
  access: Pick<Config, 'ownerIds' | 'adminIds'>;
  log: Logger;
  /** The shared `/codex` handler; built from the app when omitted. */
  commands?: Pick<CommandHandler, 'handle'>;
  readyTimeoutMs?: number;
  /** REST bounds (tests shorten them). */
  rest?: Omit<DiscordClientOptions, 'apiUrl'>;
}

export class DiscordRelay {
  private stopped = false;

  private constructor(
    readonly client: Client,
    readonly adapter: DiscordChatAdapter,
    private readonly inbound: DiscordInbound,
    private readonly log: Logger,
  ) {}

  /** Throws when login fails or the gateway is not ready in time (the client is destroyed first). */
  static async start(options: DiscordRelayOptions): Promise<DiscordRelay> {
    const { app, discord } = options;
    const log = options.log.child({ part: 'discord' });
    const client = createDiscordClient({ apiUrl: discord.apiUrl, ...options.rest });
    installGatewayGuard(client, log);
    const adapter = new DiscordChatAdapter(client.rest, log, discordFileHosts(discord.apiUrl));
    const access = new AccessPolicy({ ownerIds: options.access.ownerIds, adminIds: options.access.adminIds, admins: app.store.admins });
    const commands = options.commands ?? new CommandHandler({ store: app.store, runtimes: app.runtimes, access, archive: app.archive, log });
    const botId = () => client.user?.id ?? '';
    const inbound = new DiscordInbound({ router: app.router, store: app.store, access, adapter, dm: discord, botId, log });
    const interactions = new DiscordInteractions({ handler: commands, adapter, log });
    const relay = new DiscordRelay(client, adapter, inbound, log);
    // Before login: a message can arrive as soon as the gateway is up, and its answer needs the adapter.
    app.registerAdapter(adapter);

    client.on(Events.MessageCreate, (message) => void inbound.handle(message));
    client.on(Events.InteractionCreate, (interaction) => {
      if (!relay.stopped) void interactions.handle(interaction);
    });
    client.on(Events.Error, (err) => log.error({ err }, 'discord client error'));
    client.on(Events.Warn, (message) => log.warn({ message }, 'discord client warning'));
    client.on(Events.ShardDisconnect, (event, shard) => {
      if (!relay.stopped) log.warn({ code: event.code, shard }, 'gateway disconnected');
    });
    client.on(Events.ShardReconnecting, (shard) => {
      if (!relay.stopped) log.info({ shard }, 'gateway reconnecting');
    });
    client.on(Events.ShardResume, (shard, replayed) => log.info({ shard, replayed }, 'gateway resumed'));

    try {
      await loginAndWait(client, discord.botToken, options.readyTimeoutMs ?? 60_000);
    } catch (err) {
      await client.destroy().catch(() => undefined);
      throw err;
    }
    const appId = client.application?.id ?? client.user?.id ?? '';
    log.info({ botId: botId(), appId, guilds: client.guilds.cache.size }, 'discord gateway ready');
    try {
      await registerCommands(client.rest, appId, discord.guildId);
      log.info({ scope: discord.guildId ? `guild ${discord.guildId}` : 'global' }, '/codex registered');
    } catch (err) {
      // Messages still work; only the slash command is missing (e.g. the bot was invited without
      // the applications.commands scope). Say so loudly instead of refusing to start.
      log.error({ err: (err as Error).message }, 'could not register /codex: re-invite the bot with the applications.commands scope');
    }
    return relay;
  }

  /** The second half of shutdown (after app.stop): stop taking events, drain deliveries, close. Never throws. */
  async stop(drainMs = 5_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.inbound.pause();
    await this.adapter.drain(drainMs);
    await this.client.destroy().catch((err: unknown) => this.log.warn({ err }, 'discord client did not close cleanly'));
    this.log.info('discord client closed');
  }
}

async function loginAndWait(client: Client, token: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  // Registered before login: `ready` can fire before login() resolves.
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Discord gateway not ready within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs);
  });
  try {
    await Promise.race([client.login(token).then(() => ready), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
