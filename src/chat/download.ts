/**
 * Fetches a file a chat platform offers for a message, for any adapter's `download`:
 * only from the platform's own hosts (a crafted event cannot point us elsewhere), credentials sent
 * only while a redirect stays on those hosts, and the size limit enforced on the bytes received,
 * not on the size the platform declared.
 *
 * Error contract: throws ChatDeliveryError (forbidden, not_found, too_large, rate_limited,
 * transient, unknown); never anything else.
 */
import { ChatDeliveryError } from './adapter.js';

export interface DownloadOptions {
  /** Hosts (host:port) the file may be fetched from. */
  allowedHosts: ReadonlySet<string>;
  /** `authorization` header value, sent only to allowed hosts. */
  authorization?: string;
  maxBytes: number;
  /** Used in error messages: "Slack file", "Discord attachment". */
  what: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function codeForStatus(status: number): ChatDeliveryError['code'] {
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'transient';
  if (status === 404 || status === 410) return 'not_found';
  if (status === 401 || status === 403) return 'forbidden';
  if (status === 413) return 'too_large';
  return 'unknown';
}

export async function downloadLimited(url: string, o: DownloadOptions): Promise<Buffer> {
  if (!isAllowed(url, o.allowedHosts)) throw new ChatDeliveryError('forbidden', `${o.what} download refused: not on an allowed host`);
  const fetchFn = o.fetch ?? fetch;
  const signal = AbortSignal.timeout(o.timeoutMs ?? 30_000);
  let current = url;
  let response: Response | undefined;
  try {
    for (let hop = 0; hop < 4 && !response; hop += 1) {
      const headers: Record<string, string> = o.authorization && isAllowed(current, o.allowedHosts) ? { authorization: o.authorization } : {};
      const r = await fetchFn(current, { headers, redirect: 'manual', signal });
      const location = r.headers.get('location');
      if (r.status >= 300 && r.status < 400 && location) {
        await r.body?.cancel();
        current = new URL(location, current).toString();
        continue;
      }
      response = r;
    }
    if (!response) throw new ChatDeliveryError('unknown', `${o.what} download failed: too many redirects`);
    if (!response.ok || !response.body) throw new ChatDeliveryError(codeForStatus(response.status), `${o.what} download failed: HTTP ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > o.maxBytes) throw tooLarge(o);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > o.maxBytes) throw tooLarge(o);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof ChatDeliveryError) throw err;
    throw new ChatDeliveryError('transient', `${o.what} download failed: ${err instanceof Error ? err.name : 'error'}`, { cause: err });
  } finally {
    if (response?.body && !response.bodyUsed) await response.body.cancel().catch(() => undefined);
  }
}

function tooLarge(o: DownloadOptions): ChatDeliveryError {
  return new ChatDeliveryError('too_large', `${o.what} is larger than ${Math.round(o.maxBytes / (1024 * 1024))} MB`);
}

function isAllowed(url: string, hosts: ReadonlySet<string>): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && hosts.has(parsed.host);
  } catch {
    return false;
  }
}
