/**
 * Markdown (what Codex writes) → Slack mrkdwn. Pure; table-tested.
 *
 * A small stand-in until a maintained converter (e.g. slackify-markdown) is added to package.json;
 * it covers what Codex answers use: fenced code blocks (kept verbatim, info string dropped because
 * Slack would print it), inline code (verbatim), bold, italics, strikethrough, links and images,
 * headings (bold line), bullet, ordered and task lists, block quotes, horizontal rules, backslash
 * escapes. Slack needs `&`, `<` and `>` escaped everywhere; Slack's own entities already in the text
 * (`<@U…>`, `<#C…>`, `<!here>`, `<https://…|label>`) are kept as they are.
 *
 * Works line by line, so a chunk cut by `splitMessage` (which closes and reopens fences) converts
 * the same way as the whole answer.
 */

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;
const HEADING = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^(\s*)>\s?(.*)$/;
const TASK = /^(\s*)[-*+]\s+\[([ xX])\]\s+(.*)$/;
const BULLET = /^(\s*)[-*+]\s+(.*)$/;
const ORDERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;

/** Private-use characters mark protected spans while inline rules run; stripped from input first. */
const HOLD_OPEN = '\uE000';
const HOLD_CLOSE = '\uE001';
const BOLD = '\uE002';
const PRIVATE = /[\uE000-\uE002]/g;

export function markdownToMrkdwn(markdown: string): string {
  const out: string[] = [];
  let fence: { marker: string; indent: string } | undefined;
  for (const line of markdown.replace(PRIVATE, '').split('\n')) {
    const f = FENCE.exec(line);
    if (fence) {
      const closes = f && f[2]!.startsWith(fence.marker[0]!) && f[2]!.length >= fence.marker.length && f[3]!.trim() === '';
      out.push(closes ? `${fence.indent}\`\`\`` : escapeSlack(line));
      if (closes) fence = undefined;
      continue;
    }
    if (f) {
      fence = { marker: f[2]!, indent: f[1]! };
      out.push(`${f[1]}\`\`\``);
      continue;
    }
    out.push(convertLine(line));
  }
  return out.join('\n');
}

function convertLine(line: string): string {
  if (RULE.test(line)) return '──────────';
  const heading = HEADING.exec(line);
  if (heading) {
    const text = heading[1]!.replace(/\*\*|__/g, '');
    return text ? `*${inline(text)}*` : '';
  }
  const quote = QUOTE.exec(line);
  if (quote) return `${quote[1]}> ${convertLine(quote[2]!)}`.trimEnd();
  const task = TASK.exec(line);
  if (task) return `${task[1]}• ${task[2] === ' ' ? '☐' : '☑'} ${inline(task[3]!)}`;
  const bullet = BULLET.exec(line);
  if (bullet) return `${bullet[1]}• ${inline(bullet[2]!)}`;
  const ordered = ORDERED.exec(line);
  if (ordered) return `${ordered[1]}${ordered[2]}. ${inline(ordered[3]!)}`;
  return inline(line);
}

/** Inline markdown of one line → mrkdwn. */
export function inline(text: string): string {
  const held: string[] = [];
  const hold = (s: string) => `${HOLD_OPEN}${held.push(s) - 1}${HOLD_CLOSE}`;

  let s = text
    // Inline code: verbatim (only escaped), any backtick run length.
    .replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_m, ticks: string, code: string) => hold(`\`${escapeSlack(ticks.length > 1 ? code.trim() : code)}\``))
    // Backslash escapes: the character itself, shielded from the emphasis rules below.
    .replace(/\\([\\`*_{}[\]()#+\-.!~|<>])/g, (_m, ch: string) => hold(escapeSlack(ch)))
    // Slack entities and autolinks that are already mrkdwn.
    .replace(/<(?:[@#!][^<>\s]+|(?:https?|mailto):[^<>\s]+)>/g, (m) => hold(m))
    // Images and links: [label](url "title") → <url|label>.
    .replace(/!?\[([^\]\n]*)\]\(\s*((?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"\n]*")?\s*\)/g, (_m, label: string, url: string) => {
      const cleanLabel = escapeSlack(label.replace(/\*\*|__|[*_`~]/g, '').replace(/\|/g, '/').trim());
      const cleanUrl = escapeSlack(url);
      return hold(cleanLabel && cleanLabel !== cleanUrl ? `<${cleanUrl}|${cleanLabel}>` : `<${cleanUrl}>`);
    });

  s = escapeSlack(s)
    .replace(/\*\*\*(?=\S)(.*?\S)\*\*\*/g, `${BOLD}_$1_${BOLD}`)
    .replace(/\*\*(?=\S)(.*?\S)\*\*/g, `${BOLD}$1${BOLD}`)
    // `__init__.py` is a file name, not bold.
    .replace(/(^|[^\w])__(?=\S)(.*?\S)__(?!\w|\.\w)/g, `$1${BOLD}$2${BOLD}`)
    .replace(/(^|[^\w*\\])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])/g, '$1_$2_')
    .replace(/(^|[^\w~])~~(?=\S)(.*?\S)~~(?![\w~])/g, '$1~$2~')
    .replaceAll(BOLD, '*');

  // A held span can contain an earlier one (a link label may hold an escape): restore until none is left.
  for (let i = 0; i < 4 && s.includes(HOLD_OPEN); i += 1) {
    s = s.replace(/\uE000(\d+)\uE001/g, (_m, n: string) => held[Number(n)] ?? '');
  }
  return s;
}

/** Slack requires exactly these three characters escaped in message text. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
