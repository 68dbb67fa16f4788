/**
 * The Slack app manifest: everything the relay needs (scopes, events, `/codex`, Socket Mode) so a
 * person creates the app with one paste at https://api.slack.com/apps → Create New App → From a
 * manifest. Printed by `npm run setup -- slack manifest`. Pure.
 *
 * `/codex` is escaped (`should_escape: true`) so `/codex admin @someone` arrives as `<@U…|name>`,
 * an id the command parser understands, instead of a display name.
 */

export const SLACK_BOT_SCOPES = [
  'app_mentions:read',
  'chat:write',
  'channels:history',
  'groups:history',
  'im:history',
  'im:read',
  'im:write',
  'files:read',
  'files:write',
  'commands',
  'users:read',
] as const;

export const SLACK_BOT_EVENTS = ['app_mention', 'message.channels', 'message.groups', 'message.im'] as const;

export interface ManifestOptions {
  /** Display name of the app and its bot user. */
  name?: string;
  /** HTTP mode: the public URL of the relay's Events API endpoint (…/slack/events). Omitted: Socket Mode. */
  requestUrl?: string;
}

export function slackManifest(options: ManifestOptions = {}): Record<string, unknown> {
  const name = options.name?.trim() || 'Codex Relay';
  const socketMode = !options.requestUrl;
  const url = options.requestUrl ? { url: options.requestUrl } : {};
  return {
    display_information: {
      name,
      description: 'OpenAI Codex agents in your channels: mention the bot, get the answer in the thread.',
      background_color: '#1f2328',
    },
    features: {
      app_home: { home_tab_enabled: false, messages_tab_enabled: true, messages_tab_read_only_enabled: false },
      bot_user: { display_name: name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').slice(0, 80) || 'codex', always_online: true },
      slash_commands: [
        {
          command: '/codex',
          ...url,
          description: 'Set up and control Codex in this channel',
          usage_hint: 'help | setup [name] | status | model <name> | effort <level> | instructions [set <text>] | reset | archive | stop',
          should_escape: true,
        },
      ],
    },
    oauth_config: { scopes: { bot: [...SLACK_BOT_SCOPES] } },
    settings: {
      event_subscriptions: { ...(options.requestUrl ? { request_url: options.requestUrl } : {}), bot_events: [...SLACK_BOT_EVENTS] },
      interactivity: { is_enabled: false },
      org_deploy_enabled: false,
      socket_mode_enabled: socketMode,
      token_rotation_enabled: false,
    },
  };
}

/** The manifest as pretty JSON (Slack's manifest editor accepts JSON and YAML). */
export function renderSlackManifest(options: ManifestOptions = {}): string {
  return `${JSON.stringify(slackManifest(options), null, 2)}\n`;
}

/** `npm run setup -- slack manifest [--name <app name>] [--request-url <https://…/slack/events>]`. */
export function manifestOptionsFromArgs(args: readonly string[]): ManifestOptions {
  const options: ManifestOptions = {};
  for (let i = 0; i < args.length; i += 1) {
    const value = args[i + 1];
    if (args[i] === '--name' && value) {
      options.name = value;
      i += 1;
    } else if (args[i] === '--request-url' && value) {
      const parsed = new URL(value);
      if (parsed.protocol !== 'https:') throw new Error('--request-url must be an https:// URL Slack can reach');
      options.requestUrl = value;
      i += 1;
    } else {
      throw new Error(`unknown option ${JSON.stringify(args[i])} (use --name <app name> or --request-url <https://…/slack/events>)`);
    }
  }
  return options;
}
