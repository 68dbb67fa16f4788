/**
 * The relay's configuration: read from the environment once at start-up, validated with zod, and
 * returned as one frozen, typed object that is passed to whatever needs it. Nothing else reads
 * `process.env`.
 *
 * Error contract: `loadConfig` throws ConfigError listing every bad variable at once — its name,
 * what is wrong and how to fix it — so an operator fixes `.env` in one pass. Secret values are never
 * echoed in messages. A blank variable (`FOO=`) counts as unset, so `.env.example` can be copied as is.
 *
 * The config never holds the OpenAI key: that lives in the vault.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { PlatformSchema, type Platform } from './core/inbound.js';
import {
  ApprovalPolicySchema,
  BUILTIN_GROUP_DEFAULTS,
  EgressSchema,
  GROUP_LIMITS,
  MODEL_RE,
  ReasoningEffortSchema,
  SandboxModeSchema,
  type GroupDefaults,
} from './db/rows.js';
import { codexVersion } from './version.js';

// ── Types ──────────────────────────────────────────────────────────────────────────────────────

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A chat user across platforms: `slack:U012ABC`, `discord:1234567890`. */
export type PlatformUserKey = `${Platform}:${string}`;

export interface SlackConfig {
  readonly botToken: string;
  /** `socket` when SLACK_APP_TOKEN is set (no public URL needed), otherwise `http` (Events API). */
  readonly mode: 'socket' | 'http';
  readonly appToken: string | null;
  readonly signingSecret: string | null;
  /** Port of the Events API receiver; used in `http` mode only. */
  readonly httpPort: number;
  /** Override of https://slack.com/api/ (tests point it at a fake Slack). */
  readonly apiUrl: string | null;
}

export interface DiscordConfig {
  readonly botToken: string;
  /** Registers slash commands in this server only (instant) instead of globally. */
  readonly guildId: string | null;
  readonly dmPolicy: 'allowlist' | 'open' | 'off';
  readonly dmAllowlist: readonly string[];
  /** Override of Discord's REST API base (tests point it at a fake Discord). */
  readonly apiUrl: string | null;
}

export interface Config {
  /** Absolute path; SQLite file, vault and group folders live here. */
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly logPretty: boolean;
  readonly agentImage: string;
  readonly dockerNetwork: string;
  /** Label value on every container this relay starts, so two relays on one host keep apart. */
  readonly instanceId: string;
  /** Settings for newly set-up groups. */
  readonly groupDefaults: Readonly<GroupDefaults>;
  /** Model API origin the credential proxy forwards to (no trailing slash, no /v1). */
  readonly openaiUpstreamUrl: string;
  /** null: bind to the Docker network's gateway, decided at run time. */
  readonly proxyBindHost: string | null;
  /** 0 = any free port. */
  readonly proxyPort: number;
  /** OneCLI gateway; when set it is used instead of the built-in proxy's vault. */
  readonly onecliUrl: string | null;
  /** null when SLACK_BOT_TOKEN is not set. */
  readonly slack: SlackConfig | null;
  /** null when DISCORD_BOT_TOKEN is not set. */
  readonly discord: DiscordConfig | null;
  /** May do everything, including changing any group's settings. */
  readonly ownerIds: readonly PlatformUserKey[];
  /** May set up groups and change settings of groups. */
  readonly adminIds: readonly PlatformUserKey[];
  /** Resolved LOCAL_CHAT: whether the local terminal chat is started. */
  readonly localChat: boolean;
}

export interface ConfigProblem {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    const n = problems.length;
    super(
      `Invalid configuration (${n} problem${n === 1 ? '' : 's'}); fix these in your environment or .env:\n` +
        problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

// ── Value parsers: each returns the value or throws Problem with a plain-words reason ──────────

class Problem extends Error {}
const fail = (message: string): never => {
  throw new Problem(message);
};
const got = (value: string) => `got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;

function oneOf<const T extends string>(values: readonly T[]) {
  return (v: string): T =>
    (values as readonly string[]).includes(v) ? (v as T) : fail(`must be one of ${values.join(', ')} (${got(v)})`);
}

function wholeNumber(min: number, max: number) {
  return (v: string): number => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    return n >= min && n <= max ? n : fail(`must be a whole number from ${min} to ${max} (${got(v)})`);
  };
}

function decimal(min: number, max: number) {
  return (v: string): number => {
    const n = /^\d+(\.\d+)?$|^\.\d+$/.test(v) ? Number(v) : NaN;
    return n >= min && n <= max ? n : fail(`must be a number from ${min} to ${max} (${got(v)})`);
  };
}

function bool(v: string): boolean {
  const s = v.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  return fail(`must be true or false (${got(v)})`);
}

function matching(re: RegExp, what: string) {
  return (v: string): string => (re.test(v) ? v : fail(`must be ${what} (${got(v)})`));
}

/** http(s) URL without credentials echoed back; trailing slashes removed. */
function httpUrl(v: string): string {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return fail('is not a valid URL (expected something like https://host:port)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail(`must start with http:// or https:// (got ${url.protocol}//…)`);
  return v.replace(/\/+$/, '');
}

function upstreamUrl(v: string): string {
  const url = httpUrl(v);
  const parsed = new URL(url);
  if (parsed.search || parsed.hash) return fail('must not have a query string or #fragment');
  if (/\/v1$/.test(parsed.pathname.replace(/\/+$/, ''))) {
    return fail('must be the API origin without /v1 (containers already ask for /v1/…), e.g. https://api.openai.com');
  }
  return url;
}

/** A secret: never echoed. */
function token(prefix: string) {
  return (v: string): string => {
    if (/\s/.test(v)) return fail('must not contain spaces or line breaks (was it pasted with quotes or a newline?)');
    return v.startsWith(prefix) ? v : fail(`must start with "${prefix}"`);
  };
}

function discordToken(v: string): string {
  if (/^bot\s/i.test(v)) return fail('must be the bare token, without the "Bot " prefix');
  if (/\s/.test(v)) return fail('must not contain spaces or line breaks');
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(v) ? v : fail('does not look like a bot token (three parts separated by dots)');
}

function secret(v: string): string {
  return /\s/.test(v) ? fail('must not contain spaces or line breaks') : v;
}

const snowflake = matching(/^\d{1,25}$/, 'a numeric Discord id');

/** Comma-separated; blanks between commas ignored; each item parsed by `item`. */
function list<T>(item: (v: string) => T) {
  return (v: string): T[] =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => {
        try {
          return item(s);
        } catch (err) {
          if (err instanceof Problem) return fail(`item ${JSON.stringify(s)} ${err.message.replace(/ \(got .*\)$/, '')}`);
          throw err;
        }
      });
}

function platformUser(v: string): PlatformUserKey {
  const [platform, ...rest] = v.split(':');
  const userId = rest.join(':');
  const known = PlatformSchema.safeParse(platform);
  if (!known.success || userId === '' || /\s/.test(userId)) {
    return fail(`must look like platform:userId with platform one of ${PlatformSchema.options.join(', ')}`);
  }
  return `${known.data}:${userId}`;
}

/**
 * One environment variable: blank or missing → `fallback()`, otherwise `parse(value)`; a Problem
 * becomes a zod issue whose message carries the fix `hint`.
 */
function setting<T>(fallback: () => T, parse: (value: string) => T, hint?: string) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): T => {
      const value = raw?.trim();
      if (value === undefined || value === '') return fallback();
      try {
        return parse(value);
      } catch (err) {
        if (!(err instanceof Problem)) throw err;
        ctx.addIssue({ code: 'custom', message: hint ? `${err.message} (${hint})` : err.message });
        return z.NEVER;
      }
    });
}

const none = () => null;
const limits = GROUP_LIMITS;
const D = BUILTIN_GROUP_DEFAULTS;
const HINT = {
  slackBot: 'Slack app settings → Features → OAuth & Permissions → Bot User OAuth Token',
  slackApp: 'Slack app settings → Settings → Basic Information → App-Level Tokens, scope connections:write',
  slackSigning: 'Slack app settings → Settings → Basic Information → App Credentials → Signing Secret',
  discordBot: 'Discord Developer Portal → your application → Bot → Reset Token',
  discordIds: 'in Discord enable Developer Mode, then right-click → Copy ID',
  userKeys: 'e.g. slack:U012AB3CD,discord:123456789012345678',
} as const;

/** Every variable the relay reads. `.env.example` must list exactly these keys (a test checks). */
export const EnvSchema = z.object({
  DATA_DIR: setting(() => resolve('./data'), (v) => resolve(v)),
  LOG_LEVEL: setting((): LogLevel => 'info', oneOf(LOG_LEVELS)),
  LOG_PRETTY: setting(() => false, bool),

  AGENT_IMAGE: setting(
    defaultAgentImage,
    matching(/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/, 'a Docker image reference like codex-relay-agent:1.2.3'),
  ),
  DOCKER_NETWORK: setting(() => 'codex-relay', matching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a Docker network name')),
  RELAY_INSTANCE_ID: setting(
    () => 'default',
    matching(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, ".", "_" or "-" (max 63)'),
  ),

  DEFAULT_MODEL: setting(() => D.model, matching(MODEL_RE, 'a model name like gpt-5.5')),
  DEFAULT_REASONING_EFFORT: setting(() => D.reasoningEffort, oneOf(ReasoningEffortSchema.options)),
  DEFAULT_SANDBOX: setting(() => D.sandboxMode, oneOf(SandboxModeSchema.options)),
  DEFAULT_APPROVAL_POLICY: setting(() => D.approvalPolicy, oneOf(ApprovalPolicySchema.options)),
  DEFAULT_IDLE_TIMEOUT_SEC: setting(() => D.idleTimeoutSec, wholeNumber(limits.idleTimeoutSec.min, limits.idleTimeoutSec.max)),
  DEFAULT_TURN_TIMEOUT_SEC: setting(() => D.turnTimeoutSec, wholeNumber(limits.turnTimeoutSec.min, limits.turnTimeoutSec.max)),
  DEFAULT_MEMORY_MB: setting(() => D.memoryMb, wholeNumber(limits.memoryMb.min, limits.memoryMb.max)),
  DEFAULT_CPUS: setting(() => D.cpus, decimal(limits.cpus.min, limits.cpus.max)),
  DEFAULT_PIDS_LIMIT: setting(() => D.pidsLimit, wholeNumber(limits.pidsLimit.min, limits.pidsLimit.max)),
  DEFAULT_EGRESS: setting(() => D.egress, oneOf(EgressSchema.options)),

  OPENAI_UPSTREAM_URL: setting(() => 'https://api.openai.com', upstreamUrl),
  PROXY_BIND_HOST: setting((): string | null => null, matching(/^[A-Za-z0-9.:[\]-]+$/, 'a host name or IP address, without http://')),
  PROXY_PORT: setting(() => 0, wholeNumber(0, 65_535)),
  ONECLI_URL: setting((): string | null => null, httpUrl),

  SLACK_BOT_TOKEN: setting((): string | null => null, token('xoxb-'), HINT.slackBot),
  SLACK_APP_TOKEN: setting((): string | null => null, token('xapp-'), HINT.slackApp),
  SLACK_SIGNING_SECRET: setting((): string | null => null, secret, HINT.slackSigning),
  SLACK_HTTP_PORT: setting(() => 3000, wholeNumber(1, 65_535)),
  SLACK_API_URL: setting((): string | null => null, httpUrl),

  DISCORD_BOT_TOKEN: setting((): string | null => null, discordToken, HINT.discordBot),
  DISCORD_GUILD_ID: setting((): string | null => null, snowflake, HINT.discordIds),
  DISCORD_DM_POLICY: setting(() => 'allowlist' as const, oneOf(['allowlist', 'open', 'off'] as const)),
  DISCORD_DM_ALLOWLIST: setting((): string[] => [], list(snowflake), HINT.discordIds),
  DISCORD_API_URL: setting((): string | null => null, httpUrl),

  RELAY_OWNER_IDS: setting((): PlatformUserKey[] => [], list(platformUser), HINT.userKeys),
  RELAY_ADMIN_IDS: setting((): PlatformUserKey[] => [], list(platformUser), HINT.userKeys),

  LOCAL_CHAT: setting(() => 'auto' as const, oneOf(['auto', 'on', 'off'] as const)),
});
type Env = z.output<typeof EnvSchema>;

export const CONFIG_ENV_KEYS: readonly string[] = Object.keys(EnvSchema.shape);

/** `codex-relay-agent:<codex version pinned in package.json>`. */
export function defaultAgentImage(): string {
  return `codex-relay-agent:${codexVersion()}`;
}

// ── Cross-field rules ──────────────────────────────────────────────────────────────────────────

/** Rules between variables, judged on which ones are set (non-blank). Pure. */
export function crossFieldProblems(env: Readonly<Record<string, string | undefined>>): ConfigProblem[] {
  const set = (k: string) => (env[k]?.trim() ?? '') !== '';
  const problems: ConfigProblem[] = [];
  if (set('SLACK_BOT_TOKEN') && !set('SLACK_APP_TOKEN') && !set('SLACK_SIGNING_SECRET')) {
    problems.push({
      variable: 'SLACK_BOT_TOKEN',
      message:
        'is set, but Slack has no way to deliver events: set SLACK_APP_TOKEN for Socket Mode ' +
        `(${HINT.slackApp}), or SLACK_SIGNING_SECRET for HTTP mode (${HINT.slackSigning})`,
    });
  }
  if (!set('SLACK_BOT_TOKEN') && (set('SLACK_APP_TOKEN') || set('SLACK_SIGNING_SECRET'))) {
    const other = set('SLACK_APP_TOKEN') ? 'SLACK_APP_TOKEN' : 'SLACK_SIGNING_SECRET';
    problems.push({ variable: 'SLACK_BOT_TOKEN', message: `is missing, but ${other} is set; Slack needs both (${HINT.slackBot})` });
  }
  return problems;
}

// ── Loading ────────────────────────────────────────────────────────────────────────────────────

/** Reads and validates the environment. Throws ConfigError listing every problem. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  const problems: ConfigProblem[] = parsed.success
    ? []
    : parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '(environment)'), message: i.message }));
  problems.push(...crossFieldProblems(env));
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(toConfig(parsed.data));
}

function toConfig(e: Env): Config {
  const slack: SlackConfig | null = e.SLACK_BOT_TOKEN
    ? {
        botToken: e.SLACK_BOT_TOKEN,
        mode: e.SLACK_APP_TOKEN ? 'socket' : 'http',
        appToken: e.SLACK_APP_TOKEN,
        signingSecret: e.SLACK_SIGNING_SECRET,
        httpPort: e.SLACK_HTTP_PORT,
        apiUrl: e.SLACK_API_URL,
      }
    : null;
  const discord: DiscordConfig | null = e.DISCORD_BOT_TOKEN
    ? {
        botToken: e.DISCORD_BOT_TOKEN,
        guildId: e.DISCORD_GUILD_ID,
        dmPolicy: e.DISCORD_DM_POLICY,
        dmAllowlist: e.DISCORD_DM_ALLOWLIST,
        apiUrl: e.DISCORD_API_URL,
      }
    : null;
  return {
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY,
    agentImage: e.AGENT_IMAGE,
    dockerNetwork: e.DOCKER_NETWORK,
    instanceId: e.RELAY_INSTANCE_ID,
    groupDefaults: {
      model: e.DEFAULT_MODEL,
      reasoningEffort: e.DEFAULT_REASONING_EFFORT,
      sandboxMode: e.DEFAULT_SANDBOX,
      approvalPolicy: e.DEFAULT_APPROVAL_POLICY,
      idleTimeoutSec: e.DEFAULT_IDLE_TIMEOUT_SEC,
      turnTimeoutSec: e.DEFAULT_TURN_TIMEOUT_SEC,
      memoryMb: e.DEFAULT_MEMORY_MB,
      cpus: e.DEFAULT_CPUS,
      pidsLimit: e.DEFAULT_PIDS_LIMIT,
      egress: e.DEFAULT_EGRESS,
    },
    openaiUpstreamUrl: e.OPENAI_UPSTREAM_URL,
    proxyBindHost: e.PROXY_BIND_HOST,
    proxyPort: e.PROXY_PORT,
    onecliUrl: e.ONECLI_URL,
    slack,
    discord,
    ownerIds: e.RELAY_OWNER_IDS,
    adminIds: e.RELAY_ADMIN_IDS,
    localChat: e.LOCAL_CHAT === 'auto' ? !slack && !discord : e.LOCAL_CHAT === 'on',
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

// ── Logging ────────────────────────────────────────────────────────────────────────────────────

/** URL without user info, query or fragment (any of which may carry a credential). */
function safeUrl(url: string | null): string | null {
  if (url === null) return null;
  const u = new URL(url);
  return `${u.origin}${u.pathname === '/' ? '' : u.pathname}`;
}

/** A summary for the start-up log line: which features are on and where things go, no secrets. */
export function describeConfig(config: Config) {
  return {
    dataDir: config.dataDir,
    logLevel: config.logLevel,
    agentImage: config.agentImage,
    dockerNetwork: config.dockerNetwork,
    instanceId: config.instanceId,
    groupDefaults: { ...config.groupDefaults },
    openaiUpstream: safeUrl(config.openaiUpstreamUrl),
    proxy: { bindHost: config.proxyBindHost ?? '(docker network gateway)', port: config.proxyPort },
    onecli: safeUrl(config.onecliUrl),
    slack: config.slack ? { mode: config.slack.mode, httpPort: config.slack.mode === 'http' ? config.slack.httpPort : undefined, apiUrl: safeUrl(config.slack.apiUrl) } : 'off',
    discord: config.discord
      ? { guildId: config.discord.guildId, dmPolicy: config.discord.dmPolicy, dmAllowlist: config.discord.dmAllowlist.length, apiUrl: safeUrl(config.discord.apiUrl) }
      : 'off',
    owners: config.ownerIds.length,
    admins: config.adminIds.length,
    localChat: config.localChat,
  };
}
