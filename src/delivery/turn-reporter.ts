/**
 * One reporter per turn: posts a progress message into the thread, edits it at most about once a
 * second while Codex works, then replaces it with the answer (long answers continue in follow-up
 * posts) or with a plain-words error. Delivery failures are logged, never thrown into the turn:
 * a chat hiccup must not fail a Codex turn that already succeeded.
 */
import type { ChatAdapter, PostedMessage, ThreadTarget } from '../chat/adapter.js';
import type { TurnEvent } from '../codex/client.js';
import type { Logger } from '../logger.js';
import { initialProgress, reduceProgress, renderProgress, type ProgressState } from './progress.js';
import { splitMessage } from './split.js';

export interface TurnReporterOptions {
  minUpdateIntervalMs?: number;
  now?: () => number;
  /** Removes secrets from any text before it is posted. */
  redact?: (text: string) => string;
}

export class TurnReporter {
  private progressMessage: PostedMessage | undefined;
  private state: ProgressState;
  private lastRendered = '';
  private lastUpdateAt = 0;
  private pendingTimer: NodeJS.Timeout | undefined;
  private typingTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly minInterval: number;
  private readonly now: () => number;
  private readonly redact: (text: string) => string;

  constructor(
    private readonly adapter: ChatAdapter,
    private readonly target: ThreadTarget,
    private readonly log: Logger,
    options: TurnReporterOptions = {},
  ) {
    this.minInterval = options.minUpdateIntervalMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.redact = options.redact ?? ((t) => t);
    this.state = initialProgress(this.now());
  }

  /** Posts the progress message and starts the typing indicator. Never throws. */
  begin(): Promise<void> {
    const text = renderProgress(this.state, this.now());
    this.lastRendered = text;
    this.lastUpdateAt = this.now();
    this.startTyping();
    return this.enqueue(async () => {
      this.progressMessage = await this.adapter.post(this.target, text);
    });
  }

  onEvent(event: TurnEvent): void {
    if (this.finished) return;
    this.state = reduceProgress(this.state, event);
    this.scheduleUpdate();
  }

  /** Replaces the progress message with the answer; extra chunks follow as new posts. Never throws. */
  finish(answer: string, footer?: string): Promise<void> {
    const text = answer.trim().length > 0 ? answer : '_(Codex finished without a written reply.)_';
    const full = footer ? `${text}\n\n${footer}` : text;
    return this.complete(splitMessage(this.redact(full), this.adapter.maxMessageChars));
  }

  /** Replaces the progress message with an error in plain words. Never throws. */
  fail(message: string): Promise<void> {
    return this.complete([this.redact(`:warning: ${message}`)]);
  }

  private complete(chunks: string[]): Promise<void> {
    this.finished = true;
    this.stopTimers();
    return this.enqueue(async () => {
      const [first, ...rest] = chunks;
      if (first !== undefined) {
        if (this.progressMessage) await this.adapter.update(this.target, this.progressMessage, first);
        else await this.adapter.post(this.target, first);
      }
      for (const chunk of rest) await this.adapter.post(this.target, chunk);
    });
  }

  private scheduleUpdate(): void {
    if (this.pendingTimer) return;
    const wait = Math.max(0, this.lastUpdateAt + this.minInterval - this.now());
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = undefined;
      if (this.finished) return;
      const text = renderProgress(this.state, this.now());
      if (text === this.lastRendered) return;
      this.lastRendered = text;
      this.lastUpdateAt = this.now();
      void this.enqueue(async () => {
        if (this.progressMessage && !this.finished) await this.adapter.update(this.target, this.progressMessage, text);
      });
    }, wait);
    this.pendingTimer.unref?.();
  }

  private startTyping(): void {
    const typing = this.adapter.typing?.bind(this.adapter);
    if (!typing) return;
    const tick = () => void typing(this.target).catch((err: unknown) => this.log.debug({ err }, 'typing indicator failed'));
    tick();
    // Platforms expire typing indicators after a few seconds.
    this.typingTimer = setInterval(tick, 8000);
    this.typingTimer.unref?.();
  }

  private stopTimers(): void {
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    if (this.typingTimer) clearInterval(this.typingTimer);
    this.pendingTimer = undefined;
    this.typingTimer = undefined;
  }

  /** Serializes platform calls so edits never overtake the post they edit. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step).catch((err: unknown) => {
      this.log.warn({ err, chatKey: this.target.chatKey, threadKey: this.target.threadKey }, 'chat delivery failed');
    });
    this.chain = next;
    return next;
  }
}
