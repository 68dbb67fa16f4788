/**
 * The one place where discord.js / @discordjs/rest errors become ChatDeliveryErrors. Decided from
 * typed fields (error class, HTTP status, Discord's JSON error code, network error codes), never from
 * message text. Callers branch on `ChatDeliveryError.code` only.
 */
import { DiscordAPIError, HTTPError, RateLimitError } from 'discord.js';
import { ChatDeliveryError } from '../../src/chat/adapter.js';

/** Discord JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes). */
const NOT_FOUND_CODES = new Set([10003 /* channel */, 10008 /* message */, 10015 /* webhook */, 10062 /* interaction */]);
const FORBIDDEN_CODES = new Set([50001 /* missing access */, 50013 /* missing permissions */, 50007 /* cannot DM user */, 160002 /* no thread perms */]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

/** Maps any error thrown by a Discord REST call. `what` names the call for the message. Never throws. */
export function toDeliveryError(err: unknown, what: string): ChatDeliveryError {
  if (err instanceof ChatDeliveryError) return err;
  if (err instanceof RateLimitError) {
    return new ChatDeliveryError('rate_limited', `Discord rate limit on ${what}: retry in ${Math.ceil(err.retryAfter / 1000)}s`, { cause: err });
  }
  if (err instanceof DiscordAPIError) {
    const code = typeof err.code === 'number' ? err.code : -1;
    const summary = `${what} failed: Discord ${err.status} (code ${err.code})`;
    if (err.status === 429) return new ChatDeliveryError('rate_limited', summary, { cause: err });
    if (err.status === 404 || NOT_FOUND_CODES.has(code)) return new ChatDeliveryError('not_found', summary, { cause: err });
    if (err.status === 401 || err.status === 403 || FORBIDDEN_CODES.has(code)) return new ChatDeliveryError('forbidden', summary, { cause: err });
    if (code === 50035 && hasErrorCode(err.rawError, 'BASE_TYPE_MAX_LENGTH')) return new ChatDeliveryError('too_large', summary, { cause: err });
    if (err.status === 413 || code === 40005) return new ChatDeliveryError('too_large', summary, { cause: err });
    if (err.status >= 500) return new ChatDeliveryError('transient', summary, { cause: err });
    return new ChatDeliveryError('unknown', summary, { cause: err });
  }
  if (err instanceof HTTPError) {
    return new ChatDeliveryError(err.status >= 500 ? 'transient' : 'unknown', `${what} failed: HTTP ${err.status}`, { cause: err });
  }
  if (isAbort(err) || NETWORK_CODES.has(networkCode(err))) {
    return new ChatDeliveryError('transient', `${what} failed: Discord did not answer (${networkCode(err) || 'timeout'})`, { cause: err });
  }
  return new ChatDeliveryError('unknown', `${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** `code` of the error or of its `cause` (undici wraps socket errors in `fetch failed`). */
function networkCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return '';
}

/** Whether Discord's nested `errors` object carries `code` anywhere (e.g. content too long). */
function hasErrorCode(raw: unknown, code: string): boolean {
  if (!raw || typeof raw !== 'object') return false;
  if ((raw as { code?: unknown }).code === code) return true;
  return Object.values(raw).some((v) => hasErrorCode(v, code));
}
