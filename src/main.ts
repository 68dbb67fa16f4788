/**
 * `npm start`: sets up what is missing on the embedded defaults (data dir, vault key, agent image)
 * and starts the relay. With no Slack or Discord token configured it opens a local terminal chat.
 */
import Dockerode from 'dockerode';
import { createWriteStream } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_CHAT_KEY, LocalChatAdapter, LOCAL_THREAD_KEY, runLocalChat } from '../adapters/local/local-adapter.js';
import { DiscordRelay } from '../adapters/discord/relay.js';
import { startSlackForRelay, type SlackRuntime } from '../adapters/slack/index.js';
import { buildAgentImage } from '../setup/build-image.js';
import { promptSecret } from '../setup/prompt.js';
import { RelayApp } from './app.js';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { Vault } from './vault/vault.js';
import { formatStatus } from './status.js';

async function ensureVaultKey(config: Config, log: Logger): Promise<void> {
  const vault = Vault.open(config.dataDir);
  // With OneCLI the credential lives in OneCLI's vault, not ours.
  if (vault.openaiApiKey || config.onecliUrl) return;
  if (!process.stdin.isTTY) {
    log.warn('no OpenAI key in the vault: model requests will be refused until you run `npm run setup -- vault set-key`');
    return;
  }
  const key = await promptSecret('OpenAI API key (stored in the host vault only, never in a container): ');
  if (key.trim()) vault.setOpenaiApiKey(key);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // In the terminal chat, logs go to a file so they do not mix with the conversation.
  const log = config.localChat
    ? createLogger({ level: config.logLevel, destination: createWriteStream(join(config.dataDir, 'relay.log'), { flags: 'a' }) })
    : createLogger({ level: config.logLevel, pretty: config.logPretty });
  log.info({ config: describeConfig(config) }, 'starting codex-relay');

  await ensureVaultKey(config, log);
  const docker = new Dockerode();
  if (config.localChat) process.stdout.write(`Checking the agent image ${config.agentImage} (the first build takes a few minutes)…\n`);
  await buildAgentImage({ docker, tag: config.agentImage, log });

  const app = await RelayApp.create(config, log, { docker });
  let discord: DiscordRelay | undefined;
  let slack: SlackRuntime | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Slack first: no new events while agents stop; replies still go out over its Web API client.
    await slack?.stop();
    await app.stop(signal);
    // After app.stop: requeued turns are announced over Discord before the client closes.
    await discord?.stop();
    process.exit(0);
  };
  // A stray rejection from a platform library (e.g. a reconnect that gave up) is logged, not fatal:
  // every message is already in the inbox, and the relay keeps serving the other chats.
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // Before the local chat, so LOCAL_CHAT=on runs alongside Slack and Discord.
  if (config.slack) slack = await startSlackForRelay(app, log.child({ part: 'slack' }));
  if (config.discord) discord = await DiscordRelay.start({ app, discord: config.discord, access: config, log });

  if (config.localChat) {
    const local = new LocalChatAdapter(process.stdout);
    app.registerAdapter(local);
    const group = app.store.groups.byChatKey(LOCAL_CHAT_KEY) ?? app.store.groups.create({ slug: 'local', chatKey: LOCAL_CHAT_KEY, platform: 'local', name: 'local terminal' });
    app.router.recover();
    await runLocalChat({
      router: app.router,
      input: process.stdin,
      output: process.stdout,
      command: async (line) => {
        if (line === '/status') return formatStatus(app, group.slug);
        if (line === '/reset') {
          app.store.threads.reset(group.slug, LOCAL_THREAD_KEY);
          return 'The next message starts a new Codex thread.';
        }
        return undefined;
      },
    });
    await shutdown('local chat closed');
    return;
  }
  app.router.recover();
  if (!discord && !slack) log.warn('no chat platform adapter is enabled yet for this configuration; set LOCAL_CHAT=on to use the terminal chat');
}

main().catch((err: unknown) => {
  process.stderr.write(`codex-relay failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
