/** The text of `status`: container state, threads, last exchange, token use. Pure formatting. */
import type { Store } from './db/store.js';
import type { GroupRuntimes } from './router/group-runtimes.js';

export function formatStatus(app: { store: Store; runtimes: Pick<GroupRuntimes, 'find'> }, slug: string): string {
  const group = app.store.groups.bySlug(slug);
  if (!group) return `No group ${slug}.`;
  const runtime = app.runtimes.find(slug)?.status();
  const last = app.store.exchanges.lastByGroup(slug);
  const tokens = app.store.exchanges.tokenTotals(slug);
  const lines = [
    `Group ${group.name} (${group.slug}) · model ${group.model}, effort ${group.reasoningEffort}`,
    `Container: ${runtime?.agent ?? 'stopped'}${runtime?.containerId ? ` (${runtime.containerId.slice(0, 12)})` : ''} · active turns ${runtime?.activeTurns ?? 0}, queued ${runtime?.queued ?? 0}`,
    `Threads: ${app.store.threads.countByGroup(slug)}`,
    last ? `Last exchange: ${last.status} at ${new Date(last.completedAt).toISOString()}` : 'Last exchange: none yet',
    `Tokens so far: ${tokens.totalTokens} (${tokens.inputTokens} in, ${tokens.outputTokens} out)`,
  ];
  return lines.join('\n');
}
