/**
 * Composes the AGENTS.md Codex reads from ~/.codex: a built-in base (who the agent is, that it
 * answers in a chat thread, formatting rules of the platform), the group's own instructions from its
 * row, and an optional shared file for all groups. Capped so one group cannot bloat every request.
 */
import type { Platform } from '../core/inbound.js';

export const AGENTS_MD_CAP_BYTES = 32 * 1024;
const CUT_MARKER = '\n\n[… instructions cut here: they exceeded the 32 KiB limit …]\n';

const FORMAT_RULES: Record<Platform, string> = {
  slack: 'Format for Slack: short paragraphs, bullet lists, `inline code` and ``` code blocks. No tables, no HTML. Keep answers under about 3,000 characters unless asked for more.',
  discord: 'Format for Discord markdown: short paragraphs, bullet lists, `inline code` and ``` code blocks. No tables. Messages are split at 2,000 characters, so prefer concise answers.',
  local: 'Format as plain Markdown for a terminal.',
};

export interface InstructionsInput {
  platform: Platform;
  groupName: string;
  groupInstructions: string;
  sharedInstructions?: string;
}

export function composeAgentsMd(input: InstructionsInput): string {
  const sections = [
    '# Codex Relay agent',
    '',
    `You are a coding agent working for the chat group "${input.groupName}". People ask you things in a chat thread; your final message is posted back into that thread.`,
    'Your workspace is /workspace and persists between conversations. You never have credentials: model access goes through a proxy on the host, so do not look for API keys.',
    FORMAT_RULES[input.platform],
  ];
  if (input.sharedInstructions?.trim()) sections.push('', '## Instructions for all groups', '', input.sharedInstructions.trim());
  if (input.groupInstructions.trim()) sections.push('', '## Instructions for this group', '', input.groupInstructions.trim());
  return capUtf8(`${sections.join('\n')}\n`, AGENTS_MD_CAP_BYTES);
}

/** Cuts text to at most `cap` bytes of UTF-8 (never mid-character), with a visible marker. */
export function capUtf8(text: string, cap: number): string {
  if (Buffer.byteLength(text) <= cap) return text;
  const room = cap - Buffer.byteLength(CUT_MARKER);
  let cut = Buffer.from(text).subarray(0, room).toString('utf8');
  // A cut inside a multi-byte character leaves a replacement char at the end: drop it.
  cut = cut.replace(/\uFFFD+$/, '');
  return cut + CUT_MARKER;
}
