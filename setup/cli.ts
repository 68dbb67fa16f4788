/**
 * Setup CLI: `npm run setup -- <command>`.
 *   vault set-key      store the OpenAI API key in the host vault (read from stdin or a hidden prompt)
 *   vault set-onecli-key   store the OneCLI API key (only with ONECLI_URL; same input rules)
 *   vault status       say whether a key is stored (never prints it)
 *   group add <chatKey> <name>   register a chat as a group (what /codex setup does in chat)
 *   group list         list groups and their settings
 *   image build [--force]        build the agent image (offline path when no registry is reachable)
 *   slack manifest [--name <n>] [--request-url <url>]   print the Slack app manifest (needs no config)
 */
import Dockerode from 'dockerode';
import { loadConfig } from '../src/config.js';
import { Store } from '../src/db/store.js';
import { createLogger } from '../src/logger.js';
import { PlatformSchema } from '../src/core/inbound.js';
import { Vault } from '../src/vault/vault.js';
import { manifestOptionsFromArgs, renderSlackManifest } from '../adapters/slack/manifest.js';
import { buildAgentImage } from './build-image.js';
import { promptSecret } from './prompt.js';

const USAGE = `usage: npm run setup -- <command>
  vault set-key              store the OpenAI API key (stdin or hidden prompt; never an argument)
  vault set-onecli-key       store the OneCLI API key, when ONECLI_URL is set (stdin or hidden prompt)
  vault status               whether a key is stored
  group add <chatKey> <name> register a chat (e.g. slack:T0TEAM:C0CHAN) as a group
  group list                 list groups
  image build [--force]      build the agent image
  slack manifest [--name <app name>] [--request-url <https://…/slack/events>]
                             print the Slack app manifest (Socket Mode unless --request-url)`;

async function run(args: string[]): Promise<number> {
  // Before loadConfig: printing the manifest is the first step of a Slack setup, before any token exists.
  if (args[0] === 'slack' && args[1] === 'manifest') {
    process.stdout.write(renderSlackManifest(manifestOptionsFromArgs(args.slice(2))));
    return 0;
  }
  const config = loadConfig();
  const [area, action, ...rest] = args;
  if (area === 'vault' && (action === 'set-key' || action === 'set-onecli-key')) {
    if (rest.length > 0) {
      process.stderr.write('Refusing a key on the command line (it would stay in shell history); pipe it or type it at the prompt.\n');
      return 2;
    }
    const onecli = action === 'set-onecli-key';
    const key = await promptSecret(onecli ? 'OneCLI API key: ' : 'OpenAI API key: ');
    if (onecli) Vault.open(config.dataDir).setOnecliApiKey(key);
    else Vault.open(config.dataDir).setOpenaiApiKey(key);
    process.stdout.write(`Stored in ${Vault.pathIn(config.dataDir)} (mode 600).\n`);
    return 0;
  }
  if (area === 'vault' && action === 'status') {
    process.stdout.write(Vault.open(config.dataDir).openaiApiKey ? 'An OpenAI API key is stored.\n' : 'No key stored: run npm run setup -- vault set-key\n');
    return 0;
  }
  if (area === 'group') {
    const store = Store.open(config.dataDir, undefined, { groupDefaults: config.groupDefaults });
    try {
      if (action === 'list') {
        for (const g of store.groups.list()) process.stdout.write(`${g.slug}\t${g.chatKey}\t${g.model}\t${g.reasoningEffort}\n`);
        return 0;
      }
      if (action === 'add' && rest[0] && rest[1]) {
        const chatKey = rest[0];
        const platform = PlatformSchema.parse(chatKey.split(':')[0]);
        const group = store.groups.create({ slug: store.groups.uniqueSlug(rest[1]), chatKey, platform, name: rest.slice(1).join(' ') });
        process.stdout.write(`Group ${group.slug} created for ${chatKey}.\n`);
        return 0;
      }
    } finally {
      store.close();
    }
  }
  if (area === 'image' && action === 'build') {
    const result = await buildAgentImage({ docker: new Dockerode(), tag: config.agentImage, force: rest.includes('--force'), log: createLogger({ level: 'info' }) });
    process.stdout.write(`${result.built ? 'Built' : 'Already present:'} ${result.tag}\n`);
    return 0;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
