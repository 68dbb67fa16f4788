/**
 * Starts the Slack side of the relay: connects bolt, registers the SlackChatAdapter as the
 * delivery path for `slack` groups, routes `app_mention` / `message` events to the router and
 * `/codex` to the shared CommandHandler. `stop()` disconnects and waits for the close.
 *
 * Order matters: the adapter is registered before the receiver starts, so the first accepted
 * message (and anything `router.recover()` resumes) always has a way back to Slack.
 */
import type { RelayApp } from '../../src/app.js';
import type { ChatAdapter } from '../../src/chat/adapter.js';
import { AccessPolicy } from '../../src/commands/access.js';
import { CommandHandler } from '../../src/commands/handler.js';
import type { SlackConfig } from '../../src/config.js';
import type { Store } from '../../src/db/store.js';
import type { Logger } from '../../src/logger.js';
import type { Router } from '../../src/router/router.js';
import { allowedFileHosts } from './attachments.js';
import { connectSlack, type SlackConnection, type SlackConnectionOptions } from './bolt-app.js';
import { registerSlashCommand } from './commands.js';
import { SlackInboundHandler } from './inbound-handler.js';
import { SlackChatAdapter } from './slack-adapter.js';
import { UserNames } from './user-names.js';

export interface StartSlackDeps {
  config: SlackConfig;
  /** The relay pieces Slack needs (a RelayApp satisfies this). */
  relay: { router: Pick<Router, 'accept' | 'takesPartIn'>; store: Store; registerAdapter(adapter: ChatAdapter): void };
  access: AccessPolicy;
  commands: Pick<CommandHandler, 'handle'>;
  log: Logger;
  /** Tests: small timeouts and retries. */
  connection?: SlackConnectionOptions;
  contextTimeoutMs?: number;
}

export interface SlackRuntime {
  adapter: SlackChatAdapter;
  connection: SlackConnection;
  /** HTTP mode: the port the Events API receiver listens on. */
  port?: number;
  stop(): Promise<void>;
}

export async function startSlack(deps: StartSlackDeps): Promise<SlackRuntime> {
  const log = deps.log;
  const connection = await connectSlack(deps.config, log, deps.connection);
  const names = new UserNames(connection.client, log);
  const adapter = new SlackChatAdapter(
    connection.client,
    { botToken: deps.config.botToken, allowedHosts: allowedFileHosts(deps.config.apiUrl) },
    { names, botUserId: connection.botUserId, log, timeoutMs: deps.contextTimeoutMs ?? 3000 },
  );
  deps.relay.registerAdapter(adapter);
  const inbound = new SlackInboundHandler({
    router: deps.relay.router,
    store: deps.relay.store,
    access: deps.access,
    adapter,
    names,
    botUserId: connection.botUserId,
    log,
  });
  connection.app.event('app_mention', async ({ body }) => inbound.handle(body));
  connection.app.event('message', async ({ body }) => inbound.handle(body));
  registerSlashCommand(connection.app, { handler: deps.commands, adapter, log });
  const { port } = await connection.start();
  return { adapter, connection, ...(port === undefined ? {} : { port }), stop: () => connection.stop() };
}

/**
 * `main.ts`'s entry: Slack for a running relay, with the owners/admins from the config and the
 * relay's archive behind `/codex archive`. Throws when `config.slack` is not set or Slack refuses
 * the token.
 */
export function startSlackForRelay(
  app: Pick<RelayApp, 'config' | 'router' | 'store' | 'runtimes' | 'archive' | 'registerAdapter'>,
  log: Logger,
  tuning: Pick<StartSlackDeps, 'connection' | 'contextTimeoutMs'> = {},
): Promise<SlackRuntime> {
  const { config } = app;
  if (!config.slack) throw new Error('Slack is not configured (SLACK_BOT_TOKEN is not set)');
  const access = new AccessPolicy({ ownerIds: config.ownerIds, adminIds: config.adminIds, admins: app.store.admins });
  const commands = new CommandHandler({ store: app.store, runtimes: app.runtimes, access, archive: app.archive, log });
  return startSlack({ config: config.slack, relay: app, access, commands, log, ...tuning });
}
