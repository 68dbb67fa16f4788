/**
 * Local chat: try the bot in a terminal with no Slack or Discord. Same router, same containers:
 * each line typed is an InboundMessage for the local group; answers are printed. Progress edits
 * are shown as single status lines.
 */
import { createInterface } from 'node:readline';
import { userInfo } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { ChatAdapter, PostedMessage, ThreadTarget } from '../../src/chat/adapter.js';
import { chatKeyOf } from '../../src/core/inbound.js';
import type { Router } from '../../src/router/router.js';

export const LOCAL_CHAT_KEY = chatKeyOf('local', 'host', 'terminal');
export const LOCAL_THREAD_KEY = 'main';

export class LocalChatAdapter implements ChatAdapter {
  readonly platform = 'local' as const;
  readonly maxMessageChars = 8000;
  private nextId = 1;
  private readonly progressIds = new Set<string>();

  constructor(private readonly output: Writable) {}

  async post(_target: ThreadTarget, text: string): Promise<PostedMessage> {
    const id = String(this.nextId++);
    if (text.startsWith(':hourglass')) {
      this.progressIds.add(id);
      this.write(`  … ${stripEmoji(text)}`);
    } else {
      this.write(`codex> ${text}`);
    }
    return { id };
  }

  async update(_target: ThreadTarget, message: PostedMessage, text: string): Promise<void> {
    const stillProgress = text.startsWith(':hourglass');
    if (stillProgress) this.write(`  … ${stripEmoji(text)}`);
    else {
      this.progressIds.delete(message.id);
      this.write(`codex> ${stripEmoji(text)}`);
    }
  }

  private write(line: string): void {
    this.output.write(`${line}\n`);
  }
}

function stripEmoji(text: string): string {
  return text.replace(/^:[a-z_]+: /, '');
}

export interface LocalChatOptions {
  router: Router;
  input: Readable;
  output: Writable;
  /** Extra commands (status, reset); returns text to print or undefined when not a command. */
  command?: (line: string) => Promise<string | undefined>;
}

/** Reads lines until EOF or `/quit`. Resolves when the user leaves. */
export async function runLocalChat(options: LocalChatOptions): Promise<void> {
  const user = userInfo().username;
  const rl = createInterface({ input: options.input, terminal: false });
  let counter = 0;
  options.output.write('Codex Relay local chat. Type a message; /status, /reset, /quit.\n');
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    if (line === '/quit' || line === '/exit') break;
    if (line.startsWith('/') && options.command) {
      const answer = await options.command(line);
      if (answer !== undefined) {
        options.output.write(`${answer}\n`);
        continue;
      }
    }
    counter += 1;
    const result = options.router.accept({
      platform: 'local',
      chatKey: LOCAL_CHAT_KEY,
      threadKey: LOCAL_THREAD_KEY,
      channelId: 'terminal',
      userId: user,
      userName: user,
      text: line,
      eventId: `local-${process.pid}-${Date.now()}-${counter}`,
    });
    if (result.status === 'rejected') options.output.write(`(not sent: ${result.reason})\n`);
  }
  rl.close();
}
