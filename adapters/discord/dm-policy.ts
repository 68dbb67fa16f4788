/**
 * Who may talk to the bot in a direct message (`DISCORD_DM_POLICY`). Pure; table-tested.
 *   allowlist — users in DISCORD_DM_ALLOWLIST, plus relay owners and admins;
 *   open      — everyone who can DM the bot;
 *   off       — nobody (not even admins: the operator turned DMs off).
 * A refused user gets a polite, actionable answer and nothing else: no group, no container.
 */
import type { DiscordConfig } from '../../src/config.js';

export type DmDecision = { allowed: true } | { allowed: false; reason: string; reply: string };

export function decideDm(
  policy: Pick<DiscordConfig, 'dmPolicy' | 'dmAllowlist'>,
  userId: string,
  isAdmin: boolean,
): DmDecision {
  if (policy.dmPolicy === 'off') {
    return {
      allowed: false,
      reason: 'DMs are off (DISCORD_DM_POLICY=off)',
      reply: 'Sorry, direct messages to this bot are turned off. Mention me in a server channel where Codex is set up instead.',
    };
  }
  if (policy.dmPolicy === 'open' || isAdmin || policy.dmAllowlist.includes(userId)) return { allowed: true };
  return {
    allowed: false,
    reason: 'user is not on DISCORD_DM_ALLOWLIST',
    reply:
      'Sorry, I only take direct messages from people on this relay\'s allowlist. ' +
      `If you should have access, ask a relay admin to add your Discord user id (${userId}) to DISCORD_DM_ALLOWLIST. ` +
      'You can also mention me in a server channel where Codex is set up.',
  };
}
