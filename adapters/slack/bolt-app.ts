/**
 * bolt wiring: the receiver (Socket Mode by default, HTTP with signature checks when there is no app
 * token), the Web API client options, and start/stop that respect the Socket Mode client's quirks
 * (../../../shared/PLATFORM-FAKES.md, "Pitfalls"):
 * - `auth.test` runs once, here, before `new App()`, and its ids are handed to bolt, so bolt never
 *   starts an unawaited `auth.test` of its own (a failing one would be an unhandled rejection).
 * - `retryConfig` is explicit and bounded for both clients (the Socket Mode client would otherwise
 *   write `{retries: 100}` into the shared options); 429s wait `Retry-After` inside the WebClient.
 * - stop waits for `connected` before disconnecting (stopping mid-reconnect rejects with
 *   `undefined`), then for the close (bolt's stop does not).
 * - every WebSocket message passes the zod gate in socket-guard.ts first.
 */
import { App, HTTPReceiver, LogLevel, SocketModeReceiver, webApi, type Logger as SlackLogger } from '@slack/bolt';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { SlackConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { guardSocketClient } from './socket-guard.js';

export type RetryOptions = NonNullable<webApi.WebClientOptions['retryConfig']>;

/** Web API calls: 3 retries, 1 s → 4 s apart, on top of any Retry-After wait. */
export const WEB_API_RETRY: RetryOptions = { retries: 3, factor: 2, minTimeout: 1000, maxTimeout: 4000, randomize: true };
/** `apps.connections.open` while (re)connecting: keeps trying for about 15 minutes, then gives up. */
export const SOCKET_RETRY: RetryOptions = { retries: 20, factor: 1.5, minTimeout: 1000, maxTimeout: 60_000, randomize: true };

export interface SlackConnectionOptions {
  retryConfig?: RetryOptions;
  socketRetryConfig?: RetryOptions;
  /** Socket Mode ping timeout, also the reconnect back-off step (bolt's default 5 s). */
  clientPingTimeoutMs?: number;
  /** Per-request timeout of Web API calls. */
  requestTimeoutMs?: number;
  /** HTTP mode: overrides `config.httpPort` (tests pass 0 for a free port). */
  httpPort?: number;
}

export interface SlackConnection {
  app: App;
  client: webApi.WebClient;
  botUserId: string;
  botId: string;
  teamId: string;
  mode: 'socket' | 'http';
  /** Connects (Socket Mode) or listens (HTTP). Returns the HTTP port in HTTP mode. */
  start(): Promise<{ port?: number }>;
  /** Disconnects and waits for the connection to close. Never throws. */
  stop(): Promise<void>;
}

const AuthTestSchema = z.object({ user_id: z.string().min(1), bot_id: z.string().min(1), team_id: z.string().min(1) });

export async function connectSlack(config: SlackConfig, log: Logger, options: SlackConnectionOptions = {}): Promise<SlackConnection> {
  const logger = slackLogger(log);
  const baseOptions = {
    ...(config.apiUrl ? { slackApiUrl: `${config.apiUrl}/` } : {}),
    timeout: options.requestTimeoutMs ?? 30_000,
    logger,
  };
  const probe = new webApi.WebClient(config.botToken, { ...baseOptions, retryConfig: options.retryConfig ?? WEB_API_RETRY });
  let auth: z.infer<typeof AuthTestSchema>;
  try {
    const parsed = AuthTestSchema.safeParse(await probe.auth.test());
    if (!parsed.success) throw new Error('auth.test answered without user_id/bot_id/team_id');
    auth = parsed.data;
  } catch (err) {
    const detail = err instanceof webApi.WebAPIPlatformError ? err.data.error : err instanceof Error ? err.message : String(err);
    throw new Error(`Slack refused the bot token (auth.test: ${detail}); check SLACK_BOT_TOKEN`, { cause: err });
  }

  const socket = config.mode === 'socket' && config.appToken;
  let socketReceiver: SocketModeReceiver | undefined;
  let httpReceiver: HTTPReceiver | undefined;
  if (socket) {
    socketReceiver = new SocketModeReceiver({
      appToken: config.appToken!,
      logger,
      ...(options.clientPingTimeoutMs ? { clientPingTimeout: options.clientPingTimeoutMs } : {}),
      installerOptions: { clientOptions: { ...baseOptions, retryConfig: options.socketRetryConfig ?? SOCKET_RETRY } },
    });
    guardSocketClient(socketReceiver.client, log);
  } else {
    if (!config.signingSecret) throw new Error('Slack HTTP mode needs SLACK_SIGNING_SECRET');
    httpReceiver = new HTTPReceiver({ signingSecret: config.signingSecret, logger, endpoints: '/slack/events', processBeforeResponse: false });
  }

  const app = new App({
    token: config.botToken,
    botId: auth.bot_id,
    botUserId: auth.user_id,
    receiver: (socketReceiver ?? httpReceiver)!,
    logger,
    clientOptions: { ...baseOptions, retryConfig: options.retryConfig ?? WEB_API_RETRY },
  });
  app.error(async (err) => {
    log.error({ err }, 'Slack listener failed');
  });

  let connected = false;
  socketReceiver?.client.on('connected', () => (connected = true));
  socketReceiver?.client.on('reconnecting', () => (connected = false));
  socketReceiver?.client.on('disconnected', () => (connected = false));
  let server: Server | undefined;

  return {
    app,
    client: app.client,
    botUserId: auth.user_id,
    botId: auth.bot_id,
    teamId: auth.team_id,
    mode: socket ? 'socket' : 'http',
    async start() {
      if (socketReceiver) {
        await app.start();
        log.info({ botUserId: auth.user_id, team: auth.team_id }, 'Slack connected (Socket Mode)');
        return {};
      }
      server = (await app.start(options.httpPort ?? config.httpPort)) as Server;
      const port = (server.address() as AddressInfo).port;
      log.info({ port, botUserId: auth.user_id }, 'Slack Events API listening (HTTP mode, POST /slack/events)');
      return { port };
    },
    async stop() {
      try {
        if (socketReceiver) {
          const client = socketReceiver.client;
          if (!connected) await waitFor(client, 'connected', 5000);
          await Promise.race([client.disconnect(), delay(5000)]);
        } else if (server?.listening) {
          await app.stop();
        }
      } catch (err) {
        log.warn({ err }, 'stopping Slack failed');
      }
    },
  };
}

function waitFor(emitter: { once(event: string, fn: () => void): unknown; off(event: string, fn: () => void): unknown }, event: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    emitter.once(event, done);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * bolt's logger interface on pino. bolt's debug lines carry payloads (message text), so they go
 * to `trace`; its level follows pino's so bolt does not build lines nobody keeps.
 */
export function slackLogger(log: Logger): SlackLogger {
  const child = log.child({ part: 'bolt' });
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => child.trace(text(msg)),
    info: (...msg: unknown[]) => child.info(text(msg)),
    warn: (...msg: unknown[]) => child.warn(text(msg)),
    error: (...msg: unknown[]) => child.error(text(msg)),
    setLevel: () => undefined,
    getLevel: () => (child.isLevelEnabled('trace') ? LogLevel.DEBUG : child.isLevelEnabled('info') ? LogLevel.INFO : LogLevel.WARN),
    setName: () => undefined,
  };
}
