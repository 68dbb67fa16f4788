import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENV_KEYS, ConfigError, crossFieldProblems, defaultAgentImage, describeConfig, loadConfig } from '../../src/config.js';
import { BUILTIN_GROUP_DEFAULTS } from '../../src/db/rows.js';

const SLACK_BOT = 'xoxb-1111-2222-abcdefghijkl';
const SLACK_APP = 'xapp-1-A0000-1111-abcdef0123456789';
const SIGNING = '8f742231b10e8888abcd99yyyzzz85a5';
const DISCORD = 'MTA5ODc2NTQzMjEwOTg3NjU0.GxYzAb.abcdefghijklmnopqrstuvwxyz0123456789AB';

function problemsOf(env: Record<string, string>): ConfigError['problems'] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected loadConfig to throw');
}

function messageOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected loadConfig to throw');
}

/** KEY=value lines of .env.example (comments and blank lines skipped). */
function readEnvExample(): Record<string, string> {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

describe('loadConfig defaults', () => {
  it('fills every setting from an empty environment', () => {
    const c = loadConfig({});
    expect(c.dataDir).toBe(resolve('./data'));
    expect(c.logLevel).toBe('info');
    expect(c.logPretty).toBe(false);
    expect(c.agentImage).toBe(defaultAgentImage());
    expect(c.agentImage).toMatch(/^codex-relay-agent:\d+\.\d+\.\d+/);
    expect(c.dockerNetwork).toBe('codex-relay');
    expect(c.instanceId).toBe('default');
    expect(c.groupDefaults).toEqual({
      model: 'gpt-5.5',
      reasoningEffort: 'medium',
      sandboxMode: 'workspace-write',
      approvalPolicy: 'never',
      idleTimeoutSec: 600,
      turnTimeoutSec: 900,
      memoryMb: 2048,
      cpus: 1,
      pidsLimit: 512,
      egress: 'open',
    });
    expect(c.groupDefaults).toEqual({ ...BUILTIN_GROUP_DEFAULTS });
    expect(c.openaiUpstreamUrl).toBe('https://api.openai.com');
    expect(c.proxyBindHost).toBeNull();
    expect(c.proxyPort).toBe(0);
    expect(c.onecliUrl).toBeNull();
    expect(c.slack).toBeNull();
    expect(c.discord).toBeNull();
    expect(c.ownerIds).toEqual([]);
    expect(c.adminIds).toEqual([]);
    expect(c.localChat).toBe(true);
  });

  it('treats blank and whitespace-only values as unset', () => {
    expect(loadConfig({ LOG_LEVEL: '', PROXY_PORT: '  ', SLACK_BOT_TOKEN: '' })).toEqual(loadConfig({}));
  });

  it('returns a deeply frozen object', () => {
    const c = loadConfig({ DISCORD_BOT_TOKEN: DISCORD, DISCORD_DM_ALLOWLIST: '123' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.groupDefaults)).toBe(true);
    expect(Object.isFrozen(c.discord)).toBe(true);
    expect(Object.isFrozen(c.discord?.dmAllowlist)).toBe(true);
  });

  it('parses a full, valid environment', () => {
    const c = loadConfig({
      DATA_DIR: '/var/lib/relay',
      LOG_LEVEL: 'debug',
      LOG_PRETTY: 'yes',
      AGENT_IMAGE: 'ghcr.io/acme/agent:1.0',
      DEFAULT_CPUS: '0.5',
      DEFAULT_MEMORY_MB: '4096',
      DEFAULT_EGRESS: 'locked',
      OPENAI_UPSTREAM_URL: 'http://127.0.0.1:9999/',
      PROXY_BIND_HOST: '0.0.0.0',
      PROXY_PORT: '8787',
      ONECLI_URL: 'http://localhost:10254',
      SLACK_BOT_TOKEN: SLACK_BOT,
      SLACK_SIGNING_SECRET: SIGNING,
      SLACK_HTTP_PORT: '4000',
      DISCORD_BOT_TOKEN: DISCORD,
      DISCORD_GUILD_ID: '123456789012345678',
      DISCORD_DM_POLICY: 'open',
      DISCORD_DM_ALLOWLIST: '111, 222,,',
      RELAY_OWNER_IDS: 'slack:U012AB3CD, discord:123456789012345678',
      LOCAL_CHAT: 'on',
    });
    expect(c.dataDir).toBe('/var/lib/relay');
    expect(c.logPretty).toBe(true);
    expect(c.groupDefaults.cpus).toBe(0.5);
    expect(c.groupDefaults.egress).toBe('locked');
    expect(c.openaiUpstreamUrl).toBe('http://127.0.0.1:9999');
    expect(c.proxyBindHost).toBe('0.0.0.0');
    expect(c.slack).toEqual({ botToken: SLACK_BOT, mode: 'http', appToken: null, signingSecret: SIGNING, httpPort: 4000, apiUrl: null });
    expect(c.discord).toEqual({ botToken: DISCORD, guildId: '123456789012345678', dmPolicy: 'open', dmAllowlist: ['111', '222'], apiUrl: null });
    expect(c.ownerIds).toEqual(['slack:U012AB3CD', 'discord:123456789012345678']);
    expect(c.localChat).toBe(true);
  });

  it('uses Socket Mode when the app token is set, and turns local chat off in auto mode', () => {
    const c = loadConfig({ SLACK_BOT_TOKEN: SLACK_BOT, SLACK_APP_TOKEN: SLACK_APP });
    expect(c.slack?.mode).toBe('socket');
    expect(c.localChat).toBe(false);
  });
});

describe('loadConfig errors name the variable and the fix', () => {
  it.each([
    ['LOG_LEVEL', 'verbose', /LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)/],
    ['LOG_PRETTY', 'maybe', /LOG_PRETTY: must be true or false/],
    ['DEFAULT_MEMORY_MB', '12abc', /DEFAULT_MEMORY_MB: must be a whole number from 256 to 262144 \(got "12abc"\)/],
    ['DEFAULT_MEMORY_MB', '64', /DEFAULT_MEMORY_MB: must be a whole number from 256/],
    ['DEFAULT_CPUS', '-1', /DEFAULT_CPUS: must be a number from 0.1 to 256/],
    ['DEFAULT_PIDS_LIMIT', '1.5', /DEFAULT_PIDS_LIMIT: must be a whole number/],
    ['DEFAULT_REASONING_EFFORT', 'max', /DEFAULT_REASONING_EFFORT: must be one of none, minimal, low, medium, high, xhigh/],
    ['DEFAULT_SANDBOX', 'full', /DEFAULT_SANDBOX: must be one of read-only, workspace-write, danger-full-access/],
    ['DEFAULT_APPROVAL_POLICY', 'always', /DEFAULT_APPROVAL_POLICY: must be one of untrusted, on-request, never/],
    ['DEFAULT_EGRESS', 'closed', /DEFAULT_EGRESS: must be one of open, locked/],
    ['DEFAULT_MODEL', 'gpt 5', /DEFAULT_MODEL: must be a model name/],
    ['PROXY_PORT', '70000', /PROXY_PORT: must be a whole number from 0 to 65535/],
    ['SLACK_HTTP_PORT', '0', /SLACK_HTTP_PORT: must be a whole number from 1 to 65535/],
    ['OPENAI_UPSTREAM_URL', 'api.openai.com', /OPENAI_UPSTREAM_URL: is not a valid URL/],
    ['OPENAI_UPSTREAM_URL', 'ftp://example.com', /OPENAI_UPSTREAM_URL: must start with http:\/\/ or https:\/\//],
    ['OPENAI_UPSTREAM_URL', 'https://api.openai.com/v1', /OPENAI_UPSTREAM_URL: must be the API origin without \/v1/],
    ['ONECLI_URL', 'not a url', /ONECLI_URL: is not a valid URL/],
    ['PROXY_BIND_HOST', 'http://0.0.0.0', /PROXY_BIND_HOST: must be a host name or IP address/],
    ['DOCKER_NETWORK', 'my net', /DOCKER_NETWORK: must be a Docker network name/],
    ['RELAY_INSTANCE_ID', 'Prod!', /RELAY_INSTANCE_ID: must be lowercase letters/],
    ['AGENT_IMAGE', 'bad image', /AGENT_IMAGE: must be a Docker image reference/],
    ['DISCORD_DM_POLICY', 'everyone', /DISCORD_DM_POLICY: must be one of allowlist, open, off/],
    ['DISCORD_GUILD_ID', 'my-server', /DISCORD_GUILD_ID: must be a numeric Discord id .*Copy ID/],
    ['DISCORD_DM_ALLOWLIST', '123,alice', /DISCORD_DM_ALLOWLIST: item "alice" must be a numeric Discord id/],
    ['RELAY_OWNER_IDS', 'U012AB3CD', /RELAY_OWNER_IDS: item "U012AB3CD" must look like platform:userId .*e\.g\. slack:/],
    ['RELAY_ADMIN_IDS', 'teams:42', /RELAY_ADMIN_IDS: item "teams:42" must look like platform:userId/],
    ['LOCAL_CHAT', 'yes', /LOCAL_CHAT: must be one of auto, on, off/],
  ])('%s=%s', (key, value, expected) => {
    const problems = problemsOf({ [key]: value });
    expect(problems.map((p) => p.variable)).toEqual([key]);
    expect(messageOf({ [key]: value })).toMatch(expected);
  });

  it('explains token prefixes with where to find the token, without echoing it', () => {
    const message = messageOf({ SLACK_BOT_TOKEN: 'xoxp-user-token-secret', SLACK_APP_TOKEN: 'xoxb-app-secret' });
    expect(message).toContain('SLACK_APP_TOKEN: must start with "xapp-" (Slack app settings → Settings → Basic Information → App-Level Tokens');
    expect(message).toContain('SLACK_BOT_TOKEN: must start with "xoxb-" (Slack app settings → Features → OAuth & Permissions');
    expect(message).not.toContain('xoxp-user-token-secret');
    expect(message).not.toContain('xoxb-app-secret');
  });

  it('refuses a Discord token with the "Bot " prefix or the wrong shape, without echoing it', () => {
    expect(messageOf({ DISCORD_BOT_TOKEN: `Bot ${DISCORD}` })).toMatch(/DISCORD_BOT_TOKEN: must be the bare token/);
    const message = messageOf({ DISCORD_BOT_TOKEN: 'client-secret-value' });
    expect(message).toMatch(/DISCORD_BOT_TOKEN: does not look like a bot token .*Developer Portal/);
    expect(message).not.toContain('client-secret-value');
  });

  it('lists every bad variable at once', () => {
    const problems = problemsOf({ LOG_LEVEL: 'loud', PROXY_PORT: 'x', DEFAULT_EGRESS: 'y' });
    expect(problems.map((p) => p.variable).sort()).toEqual(['DEFAULT_EGRESS', 'LOG_LEVEL', 'PROXY_PORT']);
    expect(messageOf({ LOG_LEVEL: 'loud', PROXY_PORT: 'x', DEFAULT_EGRESS: 'y' })).toMatch(/^Invalid configuration \(3 problems\)/);
  });
});

describe('cross-field rules', () => {
  it('a Slack bot token needs an app token or a signing secret; the message names both fixes', () => {
    const problems = problemsOf({ SLACK_BOT_TOKEN: SLACK_BOT });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.variable).toBe('SLACK_BOT_TOKEN');
    expect(problems[0]!.message).toMatch(/SLACK_APP_TOKEN .*App-Level Tokens.*SLACK_SIGNING_SECRET .*Signing Secret/);
  });

  it('an app token or signing secret without a bot token is refused', () => {
    expect(problemsOf({ SLACK_APP_TOKEN: SLACK_APP })).toEqual([
      { variable: 'SLACK_BOT_TOKEN', message: expect.stringMatching(/is missing, but SLACK_APP_TOKEN is set/) as string },
    ]);
    expect(problemsOf({ SLACK_SIGNING_SECRET: SIGNING })[0]?.message).toMatch(/SLACK_SIGNING_SECRET is set/);
  });

  it('LOCAL_CHAT=off is allowed without any platform (a test harness registers its own adapter)', () => {
    expect(loadConfig({ LOCAL_CHAT: 'off' }).localChat).toBe(false);
    expect(loadConfig({ LOCAL_CHAT: 'off', DISCORD_BOT_TOKEN: DISCORD }).localChat).toBe(false);
  });

  it('cross-field problems are reported together with field problems', () => {
    const problems = problemsOf({ SLACK_BOT_TOKEN: SLACK_BOT, LOG_LEVEL: 'x' });
    expect(problems.map((p) => p.variable).sort()).toEqual(['LOG_LEVEL', 'SLACK_BOT_TOKEN']);
  });

  it('is a pure function of which variables are set', () => {
    expect(crossFieldProblems({})).toEqual([]);
    expect(crossFieldProblems({ SLACK_BOT_TOKEN: ' ', SLACK_APP_TOKEN: '' })).toEqual([]);
    expect(crossFieldProblems({ SLACK_BOT_TOKEN: 'x', SLACK_SIGNING_SECRET: 'y' })).toEqual([]);
  });
});

describe('describeConfig', () => {
  it('holds no secret', () => {
    const c = loadConfig({
      SLACK_BOT_TOKEN: SLACK_BOT,
      SLACK_APP_TOKEN: SLACK_APP,
      SLACK_SIGNING_SECRET: SIGNING,
      DISCORD_BOT_TOKEN: DISCORD,
      ONECLI_URL: 'https://user:hunter2@onecli.example/gw?token=abc',
      OPENAI_UPSTREAM_URL: 'https://key:sk-live@proxy.example/base',
    });
    const text = JSON.stringify(describeConfig(c));
    for (const secret of [SLACK_BOT, SLACK_APP, SIGNING, DISCORD, 'hunter2', 'token=abc', 'sk-live']) expect(text).not.toContain(secret);
    expect(describeConfig(c)).toMatchObject({ slack: { mode: 'socket' }, onecli: 'https://onecli.example/gw', openaiUpstream: 'https://proxy.example/base' });
  });
});

describe('.env.example', () => {
  const example = readEnvExample();

  it('lists exactly the keys the schema knows', () => {
    expect(Object.keys(example).sort()).toEqual([...CONFIG_ENV_KEYS].sort());
  });

  it('shows the defaults: loading it gives the same config as an empty environment', () => {
    expect(loadConfig(example)).toEqual(loadConfig({}));
  });

  it('has a comment line above every key', () => {
    const lines = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^[A-Z][A-Z0-9_]*=/.test(line)) expect(lines[i - 1], `comment above ${line}`).toMatch(/^# \S/);
    });
  });
});
