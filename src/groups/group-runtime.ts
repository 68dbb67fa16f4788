/**
 * GroupRuntime: everything one group does while the relay runs. Owns the group's agent (at most one
 * container; concurrent first messages share one start) and one lane per chat thread.
 *
 * Per lane, one Codex turn runs at a time. A follow-up arriving during a turn is steered into it
 * (`turn/steer` with the expected turn id); if Codex refuses (the turn just ended), it is queued
 * and runs next. Nothing is dropped: every inbox row ends answered or failed, with the user told.
 * After the last lane goes quiet the idle timer stops the container; the next message starts a new
 * one and resumes the chat thread's Codex thread.
 */
import type { TurnHandle, TurnOutcome } from '../codex/client.js';
import { RpcError, TransportClosedError } from '../codex/transport.js';
import type { UserInput } from '../codex/generated/v2/UserInput.js';
import type { ChatAdapter, ThreadTarget } from '../chat/adapter.js';
import { ContainerStartError } from '../containers/runtime.js';
import type { Group, InboxRow } from '../db/rows.js';
import type { Store } from '../db/store.js';
import { describeTurnError } from '../delivery/errors.js';
import { TurnReporter } from '../delivery/turn-reporter.js';
import type { Logger } from '../logger.js';
import { AgentSession, writeAgentsMd, type AgentSessionDeps } from './agent-session.js';
import { CONTAINER_WORKSPACE, groupPaths } from './group-home.js';
import { saveAttachments } from './attachments.js';
import { buildTurnInput } from './turn-input.js';
import { containerSandbox } from './sandbox.js';
import { exchangeFromOutcome } from './exchange.js';

export interface GroupRuntimeDeps extends AgentSessionDeps {
  store: Store;
  adapterFor: (platform: Group['platform']) => ChatAdapter | undefined;
  redact?: (text: string) => string;
  progressIntervalMs?: number;
  /** Called right before `turn/start` is written for an inbox row (the benchmark measures routing with it). */
  onTurnStartSent?: (inboxId: number) => void;
  /**
   * Called after every archived exchange, finished or failed (the archive hooks in here).
   * `answerDelivered` settles (never rejects) once the answer or error was posted in the thread.
   */
  onExchange?: (exchangeId: number, group: Group, target: ThreadTarget, answerDelivered: Promise<void>) => void;
}

interface ActiveTurn {
  threadId: string;
  turnId: string;
  handle: TurnHandle;
  /** Inbox rows answered by this turn: the one that started it and any steered in. */
  rows: InboxRow[];
}

interface Lane {
  threadKey: string;
  queue: InboxRow[];
  active?: ActiveTurn;
  busy: boolean;
}

export type AgentState = 'stopped' | 'starting' | 'running';

export interface GroupStatus {
  slug: string;
  agent: AgentState;
  containerId?: string;
  activeTurns: number;
  queued: number;
  agentStartedAt?: number;
}

export class GroupRuntime {
  private session: AgentSession | undefined;
  private starting: Promise<AgentSession> | undefined;
  private readonly lanes = new Map<string, Lane>();
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set by shutdown(): new work stays in the inbox and running turns are requeued, not failed. */
  private shuttingDown = false;
  /** Lanes being drained, so shutdown can wait for their bookkeeping before the store closes. */
  private readonly draining = new Set<Promise<void>>();
  private readonly log: Logger;

  constructor(
    private group: Group,
    private readonly deps: GroupRuntimeDeps,
  ) {
    this.log = deps.log.child({ group: group.slug });
  }

  get slug(): string {
    return this.group.slug;
  }

  /**
   * New settings apply to the next container start (and to new threads). Changed instructions (or
   * name) apply on the next turn: AGENTS.md is rewritten now. Never throws (a failed rewrite is
   * logged; the next container start writes the file again).
   */
  updateGroup(group: Group): void {
    const agentsMdChanged = group.instructions !== this.group.instructions || group.name !== this.group.name;
    this.group = group;
    if (!agentsMdChanged) return;
    try {
      writeAgentsMd(group, this.deps);
    } catch (err) {
      this.log.warn({ err }, 'rewriting AGENTS.md failed; it is written again at the next container start');
    }
  }

  /**
   * Changed instructions: takes the new row and rewrites AGENTS.md now, so the next turn of every
   * thread uses them without a restart (see writeAgentsMd for why that suffices). Throws on I/O errors.
   */
  applyInstructions(group: Group): void {
    this.group = group;
    writeAgentsMd(group, this.deps);
  }

  /** Hands an accepted inbox row to its lane. Never throws; failures are reported in the thread. */
  submit(row: InboxRow): void {
    // During shutdown the row stays `received` in the inbox; recovery runs it after the restart.
    if (this.shuttingDown) return;
    this.cancelIdle();
    const lane = this.laneFor(row.threadKey);
    void this.route(lane, row).catch((err: unknown) => this.log.error({ err, inboxId: row.id }, 'routing failed'));
  }

  status(): GroupStatus {
    let activeTurns = 0;
    let queued = 0;
    for (const lane of this.lanes.values()) {
      if (lane.active) activeTurns += 1;
      queued += lane.queue.length;
    }
    return {
      slug: this.group.slug,
      agent: this.session ? 'running' : this.starting ? 'starting' : 'stopped',
      containerId: this.session?.agent.containerId,
      agentStartedAt: this.session?.startedAt,
      activeTurns,
      queued,
    };
  }

  /** Interrupts the running turn of one chat thread, or of all when none is named. Returns how many. */
  async interrupt(threadKey?: string): Promise<number> {
    const session = this.session;
    if (!session) return 0;
    const lanes = threadKey ? [this.lanes.get(threadKey)] : [...this.lanes.values()];
    let count = 0;
    for (const lane of lanes) {
      const active = lane?.active;
      if (!active) continue;
      await session.client.interruptTurn({ threadId: active.threadId, turnId: active.turnId });
      count += 1;
    }
    return count;
  }

  /**
   * Relay shutdown: running turns are requeued in the inbox (answered after the restart) and their
   * threads are told so, instead of failing. Never throws.
   */
  async shutdown(reason: string): Promise<void> {
    this.shuttingDown = true;
    for (const lane of this.lanes.values()) lane.queue.length = 0; // still `received` in the inbox
    await this.stop(reason);
    await Promise.race([Promise.allSettled([...this.draining]), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  }

  /** Stops the agent (idle, tests, settings change). Running turns end as failed with the reason. */
  async stop(reason: string): Promise<void> {
    this.cancelIdle();
    const session = this.session ?? (await this.starting?.catch(() => undefined));
    this.session = undefined;
    if (session) await session.stop(reason);
  }

  private laneFor(threadKey: string): Lane {
    let lane = this.lanes.get(threadKey);
    if (!lane) {
      lane = { threadKey, queue: [], busy: false };
      this.lanes.set(threadKey, lane);
    }
    return lane;
  }

  private async route(lane: Lane, row: InboxRow): Promise<void> {
    if (lane.active && (await this.trySteer(lane.active, row))) return;
    lane.queue.push(row);
    if (lane.busy) return;
    const drained = this.drain(lane);
    this.draining.add(drained);
    try {
      await drained;
    } finally {
      this.draining.delete(drained);
    }
  }

  /** Steers a follow-up into the running turn. False when Codex refused (turn already over). */
  private async trySteer(active: ActiveTurn, row: InboxRow): Promise<boolean> {
    const session = this.session;
    if (!session) return false;
    try {
      this.deps.store.inbox.markRunning(row.id);
      await session.client.steerTurn({
        threadId: active.threadId,
        expectedTurnId: active.turnId,
        input: buildTurnInput(row, { firstTurn: false, files: await this.filesOf(row) }),
      });
      active.rows.push(row);
      this.log.info({ inboxId: row.id, turnId: active.turnId }, 'follow-up steered into running turn');
      return true;
    } catch (err) {
      if (!(err instanceof RpcError) && !(err instanceof TransportClosedError)) throw err;
      // The turn ended between our check and Codex receiving the steer: run it as the next turn.
      this.deps.store.inbox.requeue(row.id);
      this.log.info({ inboxId: row.id, reason: (err as Error).message }, 'steer refused; queued for the next turn');
      return false;
    }
  }

  private async drain(lane: Lane): Promise<void> {
    lane.busy = true;
    try {
      for (let row = lane.queue.shift(); row; row = lane.queue.shift()) await this.runTurn(lane, row);
    } finally {
      lane.busy = false;
      this.scheduleIdleIfQuiet();
    }
  }

  private async runTurn(lane: Lane, row: InboxRow): Promise<void> {
    const inbox = this.deps.store.inbox;
    inbox.markRunning(row.id);
    const target: ThreadTarget = { chatKey: row.chatKey, channelId: row.channelId, threadKey: row.threadKey };
    const adapter = this.deps.adapterFor(this.group.platform);
    const reporter = adapter
      ? new TurnReporter(adapter, target, this.log, { redact: this.deps.redact, minUpdateIntervalMs: this.deps.progressIntervalMs })
      : undefined;
    void reporter?.begin();
    const startedAt = Date.now();
    let session: AgentSession | undefined;
    let threadId: string | undefined;
    try {
      session = await this.ensureSession();
      const thread = await this.ensureThread(session, lane.threadKey);
      threadId = thread.threadId;
      const files = await this.filesOf(row);
      const context = thread.isNew ? await this.contextOf(row, target, adapter) : undefined;
      this.deps.onTurnStartSent?.(row.id);
      const handle = await session.client.startTurn({
        threadId,
        input: buildTurnInput(row, { firstTurn: thread.isNew, files, context }),
        sandboxPolicy: containerSandbox(this.group).turnPolicy,
      });
      lane.active = { threadId, turnId: handle.turnId, handle, rows: [row] };
      handle.onEvent((event) => reporter?.onEvent(event));
      const outcome = await this.awaitWithTimeout(session, lane.active);
      const rows = lane.active.rows;
      // Cleared as soon as turn/completed arrived (this continuation), so a racing follow-up is
      // either steered before this point or queued after it — never lost in between.
      lane.active = undefined;
      this.finishTurn(row, rows, outcome, target, reporter, threadId);
    } catch (err) {
      const rows = lane.active?.rows ?? [row];
      lane.active = undefined;
      if (this.shuttingDown) {
        for (const r of rows) inbox.requeue(r.id, 'relay shut down during the turn');
        await reporter?.fail('The relay is restarting. I will pick this message up again when it is back.');
        return;
      }
      const message = await this.explainFailure(err, session);
      for (const r of rows) inbox.markFailed(r.id, message);
      const redact = this.deps.redact ?? ((t: string) => t);
      const exchange = this.deps.store.exchanges.insert({
        groupSlug: this.group.slug,
        threadKey: row.threadKey,
        inboxId: row.id,
        codexThreadId: threadId ?? null,
        codexTurnId: null,
        platform: row.platform,
        userId: row.userId,
        prompt: redact(rows.map((r) => r.text).join('\n\n')),
        items: [],
        answer: '',
        status: 'failed',
        error: redact(message),
        inputTokens: null,
        outputTokens: null,
        totalTokens: null,
        startedAt,
        completedAt: Date.now(),
      });
      const delivered = reporter?.fail(message) ?? Promise.resolve();
      this.deps.onExchange?.(exchange.id, this.group, target, delivered);
      await delivered;
    }
  }

  private finishTurn(
    row: InboxRow,
    rows: InboxRow[],
    outcome: TurnOutcome & { timedOut: boolean },
    target: ThreadTarget,
    reporter: TurnReporter | undefined,
    threadId: string,
  ): void {
    const inbox = this.deps.store.inbox;
    const status = outcome.turn.status;
    const exchange = this.deps.store.exchanges.insert(exchangeFromOutcome({ group: this.group, row, rows, outcome, threadId, redact: this.deps.redact }));
    this.deps.store.threads.touch(this.group.slug, row.threadKey);
    // Not awaited (the lane moves on); the archive waits on it so a transcript follows the answer.
    let delivered: Promise<void> | undefined;
    if (status === 'completed') {
      for (const r of rows) inbox.markAnswered(r.id, outcome.turn.id);
      delivered = reporter?.finish(outcome.finalText);
    } else if (status === 'interrupted') {
      const why = outcome.timedOut
        ? `This took longer than the group's turn limit (${this.group.turnTimeoutSec}s), so I stopped it. Ask me to continue, or split the task.`
        : 'Stopped.';
      for (const r of rows) (outcome.timedOut ? inbox.markFailed(r.id, why) : inbox.markAnswered(r.id, outcome.turn.id));
      delivered = outcome.finalText ? reporter?.finish(outcome.finalText, `_${why}_`) : reporter?.fail(why);
    } else {
      const why = describeTurnError(outcome.turn.error);
      for (const r of rows) inbox.markFailed(r.id, why);
      delivered = reporter?.fail(why);
    }
    this.deps.onExchange?.(exchange.id, this.group, target, delivered ?? Promise.resolve());
  }

  /** Earlier thread messages for a message that arrived mid-thread; undefined when not wanted. */
  private async contextOf(row: InboxRow, target: ThreadTarget, adapter: ChatAdapter | undefined): Promise<Array<{ userName: string; text: string }> | undefined> {
    const before = row.payload.contextBefore;
    if (!before || row.payload.threadContext || !adapter?.threadContext) return undefined;
    return adapter.threadContext(target, before);
  }

  /** Downloads a row's attachments into the workspace (no-op without attachments). */
  private async filesOf(row: InboxRow): Promise<Awaited<ReturnType<typeof saveAttachments>> | undefined> {
    if (row.payload.attachments.length === 0) return undefined;
    return saveAttachments({
      attachments: row.payload.attachments,
      inboxId: row.id,
      workspaceDir: groupPaths(this.deps.dataDir, this.group.slug).workspace,
      adapter: this.deps.adapterFor(this.group.platform),
      log: this.log,
    });
  }

  private async awaitWithTimeout(session: AgentSession, active: ActiveTurn): Promise<TurnOutcome & { timedOut: boolean }> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.log.warn({ turnId: active.turnId, limitSec: this.group.turnTimeoutSec }, 'turn timed out; interrupting');
      void session.client.interruptTurn({ threadId: active.threadId, turnId: active.turnId }).catch((err: unknown) => {
        this.log.warn({ err }, 'interrupt after timeout failed');
      });
    }, this.group.turnTimeoutSec * 1000);
    try {
      const outcome = await active.handle.completed;
      return { ...outcome, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }

  private async explainFailure(err: unknown, session: AgentSession | undefined): Promise<string> {
    if (err instanceof ContainerStartError) {
      this.log.error({ err: err.message }, 'agent container did not start');
      return `I could not start the Codex container: ${err.message}`;
    }
    if (err instanceof TransportClosedError && session) {
      const exit = await session.exitWithin(3000);
      this.dropSession(session);
      const reason = exit?.reason ?? err.message;
      this.log.error({ reason }, 'agent went away mid-turn');
      return `The Codex container stopped during this turn (${reason}). Your next message starts a fresh one and continues this thread.`;
    }
    this.log.error({ err }, 'turn failed');
    return `Something went wrong talking to Codex: ${(err as Error).message ?? String(err)}`;
  }

  private async ensureSession(): Promise<AgentSession> {
    if (this.session) return this.session;
    if (!this.starting) {
      this.starting = AgentSession.start(this.group, this.deps)
        .then((session) => {
          this.session = session;
          void session.agent.exited.then((exit) => {
            if (this.session === session) {
              this.log.warn({ reason: exit.reason }, 'agent container exited');
              this.session = undefined;
            }
          });
          this.log.info({ containerId: session.agent.containerId }, 'agent started');
          return session;
        })
        .finally(() => {
          this.starting = undefined;
        });
    }
    return this.starting;
  }

  private dropSession(session: AgentSession): void {
    if (this.session === session) this.session = undefined;
    void session.stop('agent failed').catch(() => undefined);
  }

  /** The chat thread's Codex thread: resumed if known, started otherwise. */
  private async ensureThread(session: AgentSession, threadKey: string): Promise<{ threadId: string; isNew: boolean }> {
    const known = this.deps.store.threads.get(this.group.slug, threadKey)?.codexThreadId;
    if (known && session.loadedThreads.has(known)) return { threadId: known, isNew: false };
    if (known) {
      try {
        await session.client.resumeThread({ threadId: known, cwd: CONTAINER_WORKSPACE, excludeTurns: true });
        session.loadedThreads.add(known);
        return { threadId: known, isNew: false };
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        this.log.warn({ threadId: known, reason: err.message }, 'could not resume Codex thread; starting a new one');
      }
    }
    const started = await session.client.startThread({
      cwd: CONTAINER_WORKSPACE,
      model: this.group.model,
      approvalPolicy: this.group.approvalPolicy,
    });
    const threadId = started.thread.id;
    this.deps.store.threads.setCodexThread(this.group.slug, threadKey, threadId);
    session.loadedThreads.add(threadId);
    return { threadId, isNew: true };
  }

  private scheduleIdleIfQuiet(): void {
    for (const lane of this.lanes.values()) if (lane.busy || lane.active || lane.queue.length) return;
    this.cancelIdle();
    if (!this.session) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const session = this.session;
      this.session = undefined;
      if (session) {
        this.log.info({ idleSec: this.group.idleTimeoutSec }, 'stopping idle agent');
        void session.stop('idle');
      }
    }, this.group.idleTimeoutSec * 1000);
    this.idleTimer.unref?.();
  }

  private cancelIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
