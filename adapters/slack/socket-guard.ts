/**
 * A zod gate in front of the Socket Mode client's message handler. Why: @slack/socket-mode 3.x
 * parses envelopes inside an async EventEmitter listener and dereferences `payload.event.type`
 * unchecked; a malformed envelope (`{"type":"events_api"}`) becomes an unhandled rejection, which
 * ends a Node process. It also re-emits `payload.event.type` on itself, so an envelope naming
 * `close` or `ws_message` would drive the client's own state machine.
 *
 * The gate lets through `hello`, `disconnect`, `slash_commands` and `events_api` for the event types
 * the relay handles; anything else is logged, acknowledged when it has an envelope id (so Slack
 * does not redeliver it) and dropped. The original handler's failures are logged, never thrown.
 *
 * Relies on the client's `onWebSocketMessage` and `send` (protected/private in 3.x; the pinned
 * versions are exercised by test/integration/slack.test.ts).
 */
import type { SocketModeReceiver } from '@slack/bolt';
import { z } from 'zod';
import type { Logger } from '../../src/logger.js';
import { describeIssues } from './events.js';

export const HANDLED_EVENT_TYPES = ['app_mention', 'message'] as const;

const EnvelopeId = z.string().min(1).max(200);

export const SocketEnvelopeSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello') }).loose(),
  z.object({ type: z.literal('disconnect') }).loose(),
  z
    .object({
      type: z.literal('events_api'),
      envelope_id: EnvelopeId,
      payload: z.object({ type: z.literal('event_callback'), event: z.object({ type: z.enum(HANDLED_EVENT_TYPES) }).loose() }).loose(),
    })
    .loose(),
  z
    .object({
      type: z.literal('slash_commands'),
      envelope_id: EnvelopeId,
      payload: z.object({ command: z.string().min(1), team_id: z.string().min(1), channel_id: z.string().min(1), user_id: z.string().min(1) }).loose(),
    })
    .loose(),
]);

type SocketClient = SocketModeReceiver['client'];
interface ClientInternals {
  onWebSocketMessage(data: string | ArrayBuffer, isBinary: boolean): Promise<void>;
  send(id: string, body?: Record<string, unknown>): Promise<void>;
}

export type EnvelopeVerdict = { ok: true } | { ok: false; reason: string; envelopeId?: string };

/** Pure: may this raw WebSocket message reach the client? */
export function checkEnvelope(data: unknown, isBinary: boolean): EnvelopeVerdict {
  if (isBinary) return { ok: false, reason: 'binary frame' };
  const text = typeof data === 'string' ? data : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? new TextDecoder().decode(data as ArrayBuffer) : undefined;
  if (text === undefined) return { ok: false, reason: 'not text' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = SocketEnvelopeSchema.safeParse(json);
  if (parsed.success) return { ok: true };
  const id = typeof json === 'object' && json !== null && 'envelope_id' in json ? EnvelopeId.safeParse(json.envelope_id) : undefined;
  return { ok: false, reason: describeIssues('envelope', parsed.error), ...(id?.success ? { envelopeId: id.data } : {}) };
}

/** Replaces the client's `ws_message` listener with the gated one. Call before `start()`. */
export function guardSocketClient(client: SocketClient, log: Logger): void {
  const internals = client as unknown as ClientInternals;
  const original = internals.onWebSocketMessage.bind(client);
  client.removeAllListeners('ws_message');
  client.on('ws_message', (data: string | ArrayBuffer, isBinary: boolean) => {
    const verdict = checkEnvelope(data, isBinary);
    if (!verdict.ok) {
      log.warn({ reason: verdict.reason, envelopeId: verdict.envelopeId }, 'malformed or unhandled Socket Mode envelope dropped');
      if (verdict.envelopeId) {
        void internals.send.call(client, verdict.envelopeId, {}).catch((err: unknown) => log.debug({ err }, 'ack of a dropped envelope failed'));
      }
      return;
    }
    void original(data, isBinary).catch((err: unknown) => log.error({ err }, 'Socket Mode envelope handling failed'));
  });
}
