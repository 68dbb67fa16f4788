/**
 * The discord.js client the relay runs, and the gateway guard in front of it.
 *
 * Intents: Guilds (channels and threads in cache), GuildMessages + MessageContent (mentions and
 * thread follow-ups, with their text), DirectMessages; `Partials.Channel` because DM channels are
 * never in the cache and discord.js drops their messages without it.
 *
 * REST is bounded so shutdown never hangs on Discord: few retries, a per-request timeout, and a
 * rate-limit wait longer than `maxRateLimitWaitMs` fails the call (mapped to `rate_limited`) instead
 * of queueing without end. Shorter 429 waits are honoured by discord.js as usual.
 */
import { Client, GatewayIntentBits, Partials } from 'discord.js';
import type { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { Logger } from '../../src/logger.js';

export const DISCORD_INTENTS = [
  GatewayIntentBits.Guilds,
  GatewayIntentBits.GuildMessages,
  GatewayIntentBits.MessageContent,
  GatewayIntentBits.DirectMessages,
] as const;

export interface DiscordClientOptions {
  /** REST base without `/v10` (tests: the fake's `http://127.0.0.1:PORT/api`); null = discord.com. */
  apiUrl: string | null;
  restTimeoutMs?: number;
  restRetries?: number;
  maxRateLimitWaitMs?: number;
}

export function createDiscordClient(options: DiscordClientOptions): Client {
  const maxWait = options.maxRateLimitWaitMs ?? 30_000;
  return new Client({
    intents: [...DISCORD_INTENTS],
    partials: [Partials.Channel],
    // Codex output is posted verbatim: it must never ping @everyone, roles or users.
    allowedMentions: { parse: [], repliedUser: false },
    failIfNotExists: false,
    rest: {
      ...(options.apiUrl ? { api: options.apiUrl } : {}),
      timeout: options.restTimeoutMs ?? 15_000,
      retries: options.restRetries ?? 2,
      rejectOnRateLimit: (limit) => limit.retryAfter > maxWait,
    },
  });
}

// ── Gateway guard ──────────────────────────────────────────────────────────────────────────────

/**
 * discord.js trusts the gateway: a dispatch whose `d` is null, or an interaction without `data` or
 * `entitlements`, throws inside its packet handlers, where nothing can catch it — an unhandled
 * rejection that takes the process down. The guard checks the few dispatch types the relay depends
 * on before discord.js handles them.
 */
const Snowflake = z.string().regex(/^\d{1,25}$/);
const Obj = z.record(z.string(), z.unknown());
const DISPATCH_SHAPES: Record<string, z.ZodType> = {
  MESSAGE_CREATE: z.looseObject({ id: Snowflake, channel_id: Snowflake, author: z.looseObject({ id: Snowflake }) }),
  MESSAGE_UPDATE: z.looseObject({ id: Snowflake, channel_id: Snowflake }),
  INTERACTION_CREATE: z.looseObject({
    id: Snowflake,
    application_id: Snowflake,
    type: z.number().int(),
    token: z.string().min(1),
    entitlements: z.array(z.unknown()),
    authorizing_integration_owners: Obj,
    data: Obj.optional(),
  }),
  GUILD_CREATE: z.looseObject({ id: Snowflake }),
  THREAD_CREATE: z.looseObject({ id: Snowflake, type: z.number().int() }),
  THREAD_UPDATE: z.looseObject({ id: Snowflake, type: z.number().int() }),
  CHANNEL_CREATE: z.looseObject({ id: Snowflake, type: z.number().int() }),
};
/** Dispatches that legitimately carry no object. */
const NO_PAYLOAD = new Set(['RESUMED']);

/** Why a dispatch must not reach discord.js, or null when it may. Pure. */
export function malformedDispatch(packet: { t?: unknown; d?: unknown }): string | null {
  if (typeof packet.t !== 'string' || NO_PAYLOAD.has(packet.t)) return null;
  if (typeof packet.d !== 'object' || packet.d === null || Array.isArray(packet.d)) return `${packet.t} without an object payload`;
  const shape = DISPATCH_SHAPES[packet.t];
  if (!shape) return null;
  // Every interaction but a PING (type 1, HTTP-only) carries `data`.
  const d = packet.d as { type?: unknown; data?: unknown };
  if (packet.t === 'INTERACTION_CREATE' && d.type !== 1 && (typeof d.data !== 'object' || d.data === null)) return 'INTERACTION_CREATE without data';
  const parsed = shape.safeParse(packet.d);
  return parsed.success ? null : `${packet.t}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
}

/**
 * Installs the guard. discord.js (14.x) emits `raw` with the very packet object it then hands to its
 * handler table, synchronously and in that order; renaming the event type makes the handler table
 * skip it. `raw` is not in discord.js's typings, hence the EventEmitter view.
 */
export function installGatewayGuard(client: Client, log: Logger): void {
  (client as unknown as EventEmitter).on('raw', (packet: { t?: unknown; d?: unknown }) => {
    if (typeof packet !== 'object' || packet === null) return;
    const problem = malformedDispatch(packet);
    if (!problem) return;
    log.warn({ event: packet.t, problem }, 'malformed gateway dispatch dropped');
    packet.t = 'RELAY_DROPPED_MALFORMED';
  });
}
