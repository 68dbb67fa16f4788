/**
 * Plain-words explanations for what went wrong, shown in the chat thread. Decided from the
 * app-server's typed `codexErrorInfo`, never from message text.
 */
import type { TurnError } from '../codex/generated/v2/TurnError.js';

export function describeTurnError(error: TurnError | null | undefined): string {
  if (!error) return 'Codex stopped without saying why.';
  const info = error.codexErrorInfo;
  const statusOf = (v: unknown): number | null | undefined =>
    typeof v === 'object' && v !== null && 'httpStatusCode' in v ? (v as { httpStatusCode: number | null }).httpStatusCode : undefined;
  if (info === 'usageLimitExceeded') return 'The OpenAI account behind this bot is out of quota. An admin needs to check billing.';
  if (info === 'internalServerError') return 'The model API had an internal error and did not recover after retries. Please try again in a minute.';
  if (info === 'contextWindowExceeded') return 'This thread has grown past the model\'s context window. Use `/codex reset` to start a fresh thread.';
  if (typeof info === 'object' && info !== null) {
    const [kind, detail] = Object.entries(info)[0] ?? [];
    const status = statusOf(detail);
    if (status === 401 || status === 403) return `The model API refused the credentials (HTTP ${status}). An admin should check the key in the vault.`;
    if (status === 429) return 'The model API is rate-limiting this bot. Please try again shortly.';
    if (status && status >= 500) return `The model API is failing (HTTP ${status}). Please try again in a minute.`;
    if (kind === 'responseStreamDisconnected' || kind === 'httpConnectionFailed') return `The connection to the model API failed: ${firstLine(error.message)}`;
  }
  return `Codex could not finish: ${firstLine(error.message)}`;
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}
