/**
 * The one place where Slack errors become ChatDeliveryError: Web API errors from the SDK's typed
 * errors (`code`, Slack's `error` string, HTTP status), file downloads from their HTTP status;
 * never from message text. Pure; table-tested.
 *
 * Note on 429: the WebClient already waited `Retry-After` and retried (bounded by `retryConfig`)
 * before an error gets here; what arrives is the final failure.
 */
import { webApi } from '@slack/bolt';
import { ChatDeliveryError } from '../../src/chat/adapter.js';
import { codeForStatus } from '../../src/chat/download.js';

type Code = ChatDeliveryError['code'];

const PLATFORM_CODES: Readonly<Record<string, Code>> = {
  ratelimited: 'rate_limited',
  rate_limited: 'rate_limited',
  channel_not_found: 'not_found',
  thread_not_found: 'not_found',
  message_not_found: 'not_found',
  user_not_found: 'not_found',
  file_not_found: 'not_found',
  not_in_channel: 'forbidden',
  is_archived: 'forbidden',
  cant_update_message: 'forbidden',
  edit_window_closed: 'forbidden',
  restricted_action: 'forbidden',
  restricted_action_read_only_channel: 'forbidden',
  restricted_action_thread_only_channel: 'forbidden',
  restricted_action_non_threadable_channel: 'forbidden',
  not_authed: 'forbidden',
  invalid_auth: 'forbidden',
  account_inactive: 'forbidden',
  token_revoked: 'forbidden',
  token_expired: 'forbidden',
  missing_scope: 'forbidden',
  not_allowed_token_type: 'forbidden',
  ekm_access_denied: 'forbidden',
  team_access_not_granted: 'forbidden',
  msg_too_long: 'too_large',
  too_many_attachments: 'too_large',
  too_many_files: 'too_large',
  file_too_large: 'too_large',
  no_text: 'unknown',
  internal_error: 'transient',
  fatal_error: 'transient',
  service_unavailable: 'transient',
  request_timeout: 'transient',
};

/** Maps anything a WebClient call threw. `what` names the call for the message (e.g. `chat.postMessage`). */
export function toDeliveryError(err: unknown, what: string): ChatDeliveryError {
  if (err instanceof ChatDeliveryError) return err;
  const { code, detail } = classify(err);
  return new ChatDeliveryError(code, `Slack ${what} failed: ${detail}`, { cause: err });
}

/** A plain HTTP failure (file downloads bypass the WebClient). */
function classify(err: unknown): { code: Code; detail: string } {
  if (err instanceof webApi.WebAPIPlatformError) {
    const slackError = err.data.error;
    return { code: PLATFORM_CODES[slackError] ?? 'unknown', detail: slackError };
  }
  if (err instanceof webApi.WebAPIRateLimitedError) return { code: 'rate_limited', detail: `rate limited (retry after ${err.retryAfter}s)` };
  if (err instanceof webApi.WebAPIHTTPError) return { code: codeForStatus(err.statusCode), detail: `HTTP ${err.statusCode}` };
  // Network failures, timeouts, and a 429 that outlasted the retries (the WebClient wraps that one too).
  if (err instanceof webApi.WebAPIRequestError) return { code: 'transient', detail: `request failed (${err.original.name})` };
  return { code: 'unknown', detail: err instanceof Error ? err.name : 'non-error thrown' };
}
