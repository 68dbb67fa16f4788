/**
 * When an exchange's transcript is posted into its chat thread without anyone asking, per the
 * group's archive policy. Pure, table-tested.
 *
 * - `off`: never posted, not even on `/codex archive` (the archive is still written).
 * - `on-request` (default): only `/codex archive` posts, never automatically.
 * - `tool-activity`: after an exchange in which Codex ran a command or changed files.
 * - `always`: after every exchange.
 */
import type { ArchivedItem, ArchivePolicy } from '../db/rows.js';

/** Item types that count as "Codex touched the workspace". */
const TOOL_ACTIVITY_TYPES = new Set(['command', 'fileChange']);

export function hadToolActivity(items: readonly Pick<ArchivedItem, 'type'>[]): boolean {
  return items.some((i) => TOOL_ACTIVITY_TYPES.has(i.type));
}

export function postAfterExchange(policy: ArchivePolicy, items: readonly Pick<ArchivedItem, 'type'>[]): boolean {
  switch (policy) {
    case 'always':
      return true;
    case 'tool-activity':
      return hadToolActivity(items);
    case 'on-request':
    case 'off':
      return false;
  }
}

/** Whether `/codex archive` may post the thread's transcript. */
export function postOnRequest(policy: ArchivePolicy): boolean {
  return policy !== 'off';
}
