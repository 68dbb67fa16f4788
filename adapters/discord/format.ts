/**
 * Text the core writes for Slack, made right for Discord. Pure; table-tested.
 *
 * Codex answers are standard Markdown, which Discord renders as it is (fences, bold, lists, links).
 * The core's own status lines use Slack emoji shortcodes (`:warning:`), which Discord renders only
 * when a person types them, not in bot messages: the few the core uses become the emoji themselves.
 */
const SHORTCODES: Readonly<Record<string, string>> = {
  ':hourglass_flowing_sand:': '\u23F3',
  ':warning:': '\u26A0\uFE0F',
  ':page_facing_up:': '\uD83D\uDCC4',
  ':white_check_mark:': '\u2705',
  ':x:': '\u274C',
};
const SHORTCODE_RE = new RegExp(Object.keys(SHORTCODES).map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');

export function discordText(text: string): string {
  return text.replace(SHORTCODE_RE, (code) => SHORTCODES[code] ?? code);
}
