/**
 * Session layer over the JSON-RPC transport: handshake, threads, turns and approvals for one
 * `codex app-server` process.
 *
 * Invariants:
 * - One active turn per thread. Notifications are routed by threadId (then checked against the
 *   turn id); steered input lands in the turn it was steered into.
 * - A turn ends ONLY on `turn/completed` (error notifications with willRetry are progress).
 *   If the app-server goes away first, `completed` rejects with `TransportClosedError`.
 * - Every server request is answered: the known approval kinds per `ApprovalPolicy`, anything
 *   else with a -32601 error. Nothing is ever accepted by default.
 * - Messages that fail their schema are logged and skipped; they never crash the host.
 */
import type { Readable, Writable } from 'node:stream';
import type { z } from 'zod';
import type { Logger } from '../logger.js';
import type { InitializeParams } from './generated/InitializeParams.js';
import type { InitializeResponse } from './generated/InitializeResponse.js';
import type { CommandExecutionRequestApprovalResponse } from './generated/v2/CommandExecutionRequestApprovalResponse.js';
import type { FileChangeRequestApprovalResponse } from './generated/v2/FileChangeRequestApprovalResponse.js';
import type { McpServerElicitationRequestResponse } from './generated/v2/McpServerElicitationRequestResponse.js';
import type { PermissionsRequestApprovalResponse } from './generated/v2/PermissionsRequestApprovalResponse.js';
import type { ThreadItem } from './generated/v2/ThreadItem.js';
import type { ThreadResumeParams } from './generated/v2/ThreadResumeParams.js';
import type { ThreadResumeResponse } from './generated/v2/ThreadResumeResponse.js';
import type { ThreadStartParams } from './generated/v2/ThreadStartParams.js';
import type { ThreadStartResponse } from './generated/v2/ThreadStartResponse.js';
import type { ThreadStatus } from './generated/v2/ThreadStatus.js';
import type { ThreadTokenUsage } from './generated/v2/ThreadTokenUsage.js';
import type { TokenUsageBreakdown } from './generated/v2/TokenUsageBreakdown.js';
import type { ToolRequestUserInputResponse } from './generated/v2/ToolRequestUserInputResponse.js';
import type { Turn } from './generated/v2/Turn.js';
import type { TurnInterruptParams } from './generated/v2/TurnInterruptParams.js';
import type { TurnStartParams } from './generated/v2/TurnStartParams.js';
import type { TurnSteerParams } from './generated/v2/TurnSteerParams.js';
import {
  InitializeResponseSchema,
  parseNotification,
  parseServerRequest,
  ThreadResumeResponseSchema,
  ThreadStartResponseSchema,
  TurnStartResponseSchema,
  TurnSteerResponseSchema,
  type HandledServerRequest,
  type KnownNotification,
} from './schemas.js';
import { INVALID_PARAMS, JsonRpcTransport, METHOD_NOT_FOUND, RpcError, TransportClosedError } from './transport.js';

export type { ThreadItem, Turn, TokenUsageBreakdown, ThreadTokenUsage };

/** How the relay answers approval requests. Decided per group; never "accept everything else". */
export type ApprovalPolicy = { commands: 'accept' | 'decline'; fileChanges: 'accept' | 'decline' };

/** Progress of a running turn, in arrival order. */
export type TurnEvent =
  | { kind: 'itemStarted'; item: ThreadItem }
  | { kind: 'itemCompleted'; item: ThreadItem }
  | { kind: 'agentDelta'; itemId: string; delta: string }
  | { kind: 'retrying'; message: string }
  | { kind: 'tokens'; usage: ThreadTokenUsage };

export interface TurnOutcome {
  /** The turn as sent on `turn/completed`: status completed|interrupted|failed, error, durationMs. */
  turn: Turn;
  /** Every item completed during the turn, in order (`turn.items` is only a summary). */
  items: ThreadItem[];
  /** Text of the last completed agentMessage; '' if there was none. */
  finalText: string;
  /** Tokens used by this turn across all its model requests; null when the server reported none. */
  usage: TokenUsageBreakdown | null;
  startedAtMs: number;
  completedAtMs: number;
}

export interface TurnHandle {
  readonly threadId: string;
  readonly turnId: string;
  /**
   * Subscribes to progress events; returns the unsubscribe function. Events emitted before the
   * first listener subscribed are replayed to that listener (not to later ones).
   */
  onEvent(listener: (event: TurnEvent) => void): () => void;
  /** Resolves on `turn/completed`; rejects with `TransportClosedError` if the app-server goes away first. */
  readonly completed: Promise<TurnOutcome>;
}

/** A response from the app-server did not have the shape of the generated protocol type. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** `startTurn` on a thread that already has a turn running; use `steerTurn` instead. */
export class TurnAlreadyActiveError extends Error {
  override readonly name = 'TurnAlreadyActiveError';
  constructor(readonly threadId: string) {
    super(`thread ${threadId} already has an active turn`);
  }
}

/** Notifications the relay never reads; opting out saves a line per event. Deltas stay on: they drive progress. */
export const OPTED_OUT_NOTIFICATIONS = ['account/rateLimits/updated', 'remoteControl/status/changed'];

// ---- pure helpers -----------------------------------------------------------------------------

export type ServerRequestAnswer =
  | CommandExecutionRequestApprovalResponse
  | FileChangeRequestApprovalResponse
  | PermissionsRequestApprovalResponse
  | ToolRequestUserInputResponse
  | McpServerElicitationRequestResponse;

/** The answer to a server request the relay handles. Pure; never throws. */
export function answerServerRequest(request: HandledServerRequest, policy: ApprovalPolicy): ServerRequestAnswer {
  switch (request.method) {
    case 'item/commandExecution/requestApproval':
      return { decision: policy.commands } satisfies CommandExecutionRequestApprovalResponse;
    case 'item/fileChange/requestApproval':
      return { decision: policy.fileChanges } satisfies FileChangeRequestApprovalResponse;
    case 'item/permissions/requestApproval':
      // Extra permissions are never granted from chat: an empty profile, for this turn only.
      return { permissions: {}, scope: 'turn' } satisfies PermissionsRequestApprovalResponse;
    case 'item/tool/requestUserInput':
      // Nobody is at a keyboard: every question gets an empty answer list.
      return {
        answers: Object.fromEntries(request.params.questions.map((q) => [q.id, { answers: [] }])),
      } satisfies ToolRequestUserInputResponse;
    case 'mcpServer/elicitation/request':
      return { action: 'decline', content: null, _meta: null } satisfies McpServerElicitationRequestResponse;
  }
}

/** Text of the last agentMessage in `items`, else in the turn's summary items, else ''. Pure. */
export function finalTextOf(items: readonly ThreadItem[], summary: readonly ThreadItem[] = []): string {
  for (const list of [items, summary]) {
    for (let i = list.length - 1; i >= 0; i--) {
      const item = list[i];
      if (item?.type === 'agentMessage') return item.text;
    }
  }
  return '';
}

/**
 * Tokens used by one turn, from the first and last `thread/tokenUsage/updated` of that turn:
 * the thread total at the end minus the total before the turn's first request. Robust to repeated
 * notifications. Pure; null when the turn had none.
 */
export function turnUsage(first: ThreadTokenUsage | undefined, last: ThreadTokenUsage | undefined): TokenUsageBreakdown | null {
  if (!first || !last) return null;
  const keys = ['totalTokens', 'inputTokens', 'cachedInputTokens', 'cacheWriteInputTokens', 'outputTokens', 'reasoningOutputTokens'] as const;
  const out = {} as TokenUsageBreakdown;
  for (const k of keys) out[k] = Math.max(0, last.total[k] - (first.total[k] - first.last[k]));
  return out;
}

/** The turn id a notification belongs to, if it is turn-scoped. */
function turnIdOf(n: KnownNotification): string | undefined {
  switch (n.method) {
    case 'turn/started':
    case 'turn/completed':
      return n.params.turn.id;
    case 'item/started':
    case 'item/completed':
    case 'item/agentMessage/delta':
    case 'error':
    case 'thread/tokenUsage/updated':
      return n.params.turnId;
    default:
      return undefined;
  }
}

function threadIdOf(n: KnownNotification): string {
  return n.params.threadId;
}

// ---- active turn ------------------------------------------------------------------------------

class ActiveTurn implements TurnHandle {
  turnId = '';
  readonly completed: Promise<TurnOutcome>;
  private readonly items: ThreadItem[] = [];
  private readonly early: KnownNotification[] = [];
  private replay: TurnEvent[] | undefined = [];
  private readonly listeners = new Set<(event: TurnEvent) => void>();
  private firstUsage: ThreadTokenUsage | undefined;
  private lastUsage: ThreadTokenUsage | undefined;
  private resolve!: (outcome: TurnOutcome) => void;
  private reject!: (err: Error) => void;
  done = false;

  constructor(
    readonly threadId: string,
    readonly startedAtMs: number,
    private readonly log: Logger,
  ) {
    this.completed = new Promise<TurnOutcome>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A caller that never awaits `completed` must not produce an unhandled rejection.
    this.completed.catch(() => undefined);
  }

  onEvent(listener: (event: TurnEvent) => void): () => void {
    this.listeners.add(listener);
    const buffered = this.replay;
    this.replay = undefined;
    for (const event of buffered ?? []) this.callListener(listener, event);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Called once the turn/start response names the turn; replays what arrived before it. */
  bind(turnId: string): void {
    this.turnId = turnId;
    for (const n of this.early.splice(0)) this.accept(n);
  }

  accept(n: KnownNotification): void {
    if (this.done) return;
    if (!this.turnId) {
      this.early.push(n);
      return;
    }
    const turnId = turnIdOf(n);
    if (turnId !== undefined && turnId !== this.turnId) {
      this.log.debug({ method: n.method, turnId, activeTurnId: this.turnId }, 'notification for another turn; ignored');
      return;
    }
    switch (n.method) {
      case 'item/started':
        this.emit({ kind: 'itemStarted', item: n.params.item });
        return;
      case 'item/completed':
        this.items.push(n.params.item);
        this.emit({ kind: 'itemCompleted', item: n.params.item });
        return;
      case 'item/agentMessage/delta':
        this.emit({ kind: 'agentDelta', itemId: n.params.itemId, delta: n.params.delta });
        return;
      case 'error':
        if (n.params.willRetry) this.emit({ kind: 'retrying', message: n.params.error.message });
        else this.log.info({ turnId: this.turnId, error: n.params.error.message }, 'turn error reported; waiting for turn/completed');
        return;
      case 'thread/tokenUsage/updated':
        this.firstUsage ??= n.params.tokenUsage;
        this.lastUsage = n.params.tokenUsage;
        this.emit({ kind: 'tokens', usage: n.params.tokenUsage });
        return;
      case 'turn/completed': {
        this.done = true;
        const turn = n.params.turn;
        this.resolve({
          turn,
          items: [...this.items],
          finalText: finalTextOf(this.items, turn.items),
          usage: turnUsage(this.firstUsage, this.lastUsage),
          startedAtMs: this.startedAtMs,
          completedAtMs: Date.now(),
        });
        return;
      }
      default:
        return;
    }
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.reject(err);
  }

  private emit(event: TurnEvent): void {
    if (this.replay) this.replay.push(event);
    for (const listener of this.listeners) this.callListener(listener, event);
  }

  private callListener(listener: (event: TurnEvent) => void, event: TurnEvent): void {
    try {
      listener(event);
    } catch (err) {
      this.log.error({ err, kind: event.kind }, 'turn event listener threw');
    }
  }
}

// ---- client -----------------------------------------------------------------------------------

export interface AppServerClientOptions {
  input: Readable;
  output: Writable;
  log: Logger;
  clientName?: string;
  version: string;
  approvals: ApprovalPolicy;
  requestTimeoutMs?: number;
}

export class AppServerClient {
  /** Resolves once the app-server's output ends or errors. Never rejects. */
  readonly closed: Promise<{ reason: string }>;
  private readonly turns = new Map<string, ActiveTurn>();
  private readonly statuses = new Map<string, ThreadStatus>();
  private serverInfo: InitializeResponse | undefined;

  private constructor(
    private readonly transport: JsonRpcTransport,
    private readonly log: Logger,
    private readonly approvals: ApprovalPolicy,
  ) {
    this.closed = transport.closed;
    transport.onServerRequest((method, params) => this.handleServerRequest(method, params));
    transport.onNotification((method, params) => this.handleNotification(method, params));
    void transport.closed.then(({ reason }) => {
      const err = new TransportClosedError(reason);
      for (const turn of this.turns.values()) turn.fail(err);
      this.turns.clear();
    });
  }

  /**
   * Performs the handshake (`initialize`, then `initialized`). Rejects with RpcError,
   * RpcTimeoutError, TransportClosedError or ProtocolError; the transport is closed on failure.
   */
  static async connect(options: AppServerClientOptions): Promise<AppServerClient> {
    const transport = new JsonRpcTransport({
      input: options.input,
      output: options.output,
      log: options.log,
      requestTimeoutMs: options.requestTimeoutMs,
    });
    const client = new AppServerClient(transport, options.log, options.approvals);
    const params: InitializeParams = {
      clientInfo: { name: options.clientName ?? 'codex-relay', title: null, version: options.version },
      capabilities: { experimentalApi: false, requestAttestation: false, optOutNotificationMethods: OPTED_OUT_NOTIFICATIONS },
    };
    try {
      client.serverInfo = client.expect(InitializeResponseSchema, 'initialize', await transport.request('initialize', params));
      transport.notify('initialized');
    } catch (err) {
      transport.close();
      throw err;
    }
    return client;
  }

  /** What the server said on `initialize` (user agent, CODEX_HOME, platform). */
  get info(): InitializeResponse {
    if (!this.serverInfo) throw new Error('not initialized');
    return this.serverInfo;
  }

  async startThread(params: ThreadStartParams): Promise<ThreadStartResponse> {
    return this.expect(ThreadStartResponseSchema, 'thread/start', await this.transport.request('thread/start', params));
  }

  /** Loads a persisted thread into this process (required after a restart before `startTurn`). */
  async resumeThread(params: ThreadResumeParams): Promise<ThreadResumeResponse> {
    return this.expect(ThreadResumeResponseSchema, 'thread/resume', await this.transport.request('thread/resume', params));
  }

  /**
   * Starts a turn. Throws TurnAlreadyActiveError when this client already runs a turn on the
   * thread, or the request's RpcError/RpcTimeoutError/TransportClosedError/ProtocolError.
   */
  async startTurn(params: TurnStartParams): Promise<TurnHandle> {
    if (this.turns.has(params.threadId)) throw new TurnAlreadyActiveError(params.threadId);
    // Registered BEFORE the request: turn/started and the first items can arrive before the response.
    const turn = new ActiveTurn(params.threadId, Date.now(), this.log);
    this.turns.set(params.threadId, turn);
    try {
      const response = this.expect(TurnStartResponseSchema, 'turn/start', await this.transport.request('turn/start', params));
      turn.bind(response.turn.id);
    } catch (err) {
      if (this.turns.get(params.threadId) === turn) this.turns.delete(params.threadId);
      throw err;
    }
    if (turn.done) this.turns.delete(params.threadId);
    return turn;
  }

  /** Adds input to the running turn. Rejects with RpcError when no turn (or another turn) is active. */
  async steerTurn(params: TurnSteerParams): Promise<{ turnId: string }> {
    const response = this.expect(TurnSteerResponseSchema, 'turn/steer', await this.transport.request('turn/steer', params));
    return { turnId: response.turnId };
  }

  /** Asks the server to stop the turn; its handle then completes with status `interrupted`. */
  async interruptTurn(params: TurnInterruptParams): Promise<void> {
    await this.transport.request('turn/interrupt', params);
  }

  isTurnActive(threadId: string): boolean {
    return this.turns.has(threadId);
  }

  /** Last status the server reported for a thread, if any. */
  threadStatus(threadId: string): ThreadStatus | undefined {
    return this.statuses.get(threadId);
  }

  /** Ends the app-server's stdin; it exits and `closed` resolves. Never throws. */
  close(): void {
    this.transport.close();
  }

  // ---- internals ------------------------------------------------------------------------------

  private expect<T>(schema: z.ZodType<T>, method: string, raw: unknown): T {
    const result = schema.safeParse(raw);
    if (!result.success) throw new ProtocolError(`unexpected ${method} response: ${result.error.issues[0]?.message ?? 'invalid'}`);
    return result.data;
  }

  private handleNotification(method: string, params: unknown): void {
    const parsed = parseNotification(method, params);
    if ('unknown' in parsed) return;
    if ('invalid' in parsed) {
      this.log.warn({ method, why: parsed.invalid }, 'skipping app-server notification that does not match its schema');
      return;
    }
    const n = parsed.ok;
    if (n.method === 'thread/status/changed') {
      this.statuses.set(n.params.threadId, n.params.status);
      return;
    }
    if (n.method === 'serverRequest/resolved') {
      this.log.debug({ threadId: n.params.threadId, requestId: n.params.requestId }, 'server request resolved');
      return;
    }
    const turn = this.turns.get(threadIdOf(n));
    if (!turn) return;
    turn.accept(n);
    if (turn.done && this.turns.get(turn.threadId) === turn) this.turns.delete(turn.threadId);
  }

  private async handleServerRequest(method: string, params: unknown): Promise<unknown> {
    const parsed = parseServerRequest(method, params);
    if ('unknown' in parsed) {
      this.log.warn({ method }, 'refusing unhandled app-server request');
      throw new RpcError(METHOD_NOT_FOUND, `codex-relay does not handle ${method}`);
    }
    if ('invalid' in parsed) {
      this.log.warn({ method, why: parsed.invalid }, 'refusing app-server request that does not match its schema');
      throw new RpcError(INVALID_PARAMS, `codex-relay could not read ${method}: ${parsed.invalid}`);
    }
    const answer = answerServerRequest(parsed.ok, this.approvals);
    const { threadId, turnId } = parsed.ok.params;
    this.log.info({ method, threadId, turnId, answer }, 'answered app-server request');
    return answer;
  }
}
