/**
 * Parses the text after `/codex` into a typed command. Pure; table-tested. Unknown input becomes
 * `help` with a note, never an exception.
 */
import { ReasoningEffortSchema, type ReasoningEffort } from '../db/rows.js';

export type Command =
  | { name: 'help'; note?: string }
  | { name: 'setup'; groupName?: string }
  | { name: 'status' }
  | { name: 'model'; model?: string }
  | { name: 'effort'; effort?: ReasoningEffort; invalid?: string }
  | { name: 'instructions'; set?: string }
  | { name: 'reset' }
  | { name: 'archive' }
  | { name: 'stop' }
  | { name: 'admin'; userId?: string };

export const COMMAND_NAMES = ['help', 'setup', 'status', 'model', 'effort', 'instructions', 'reset', 'archive', 'stop', 'admin'] as const;

export function parseCommand(text: string): Command {
  const trimmed = text.trim();
  const [head = '', ...restWords] = trimmed.split(/\s+/);
  const rest = trimmed.slice(head.length).trim();
  switch (head.toLowerCase()) {
    case '':
    case 'help':
      return { name: 'help' };
    case 'setup':
      return rest ? { name: 'setup', groupName: rest } : { name: 'setup' };
    case 'status':
      return { name: 'status' };
    case 'model':
      return rest ? { name: 'model', model: restWords[0] } : { name: 'model' };
    case 'effort': {
      if (!rest) return { name: 'effort' };
      const parsed = ReasoningEffortSchema.safeParse(rest.toLowerCase());
      return parsed.success ? { name: 'effort', effort: parsed.data } : { name: 'effort', invalid: rest };
    }
    case 'instructions': {
      const match = /^set\s+([\s\S]+)$/i.exec(rest);
      return match?.[1] ? { name: 'instructions', set: match[1].trim() } : { name: 'instructions' };
    }
    case 'reset':
      return { name: 'reset' };
    case 'archive':
      return { name: 'archive' };
    case 'stop':
      return { name: 'stop' };
    case 'admin':
      return { name: 'admin', userId: restWords[0]?.replace(/^<@!?([^>|]+).*>$/, '$1') };
    default:
      return { name: 'help', note: `Unknown command "${head}".` };
  }
}
