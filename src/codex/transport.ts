/**
 * JSON-RPC framing for `codex app-server` over any Readable/Writable pair: one JSON object per
 * `\n`-terminated line, no `"jsonrpc"` field. This layer only frames lines, correlates ids and
 * enforces timeouts; threads, turns and approvals live in the session layer (`client.ts`).
 *
 * Invariants:
 * - Every incoming line is validated against the envelope schemas; garbage is logged (truncated)
 *   and dropped, never thrown.
 * - Every server→client request gets exactly one answer (the handler's result, its error, or
 *   -32601 when no handler is set), unless the transport closed first.
 * - When the input ends or errors (or the output breaks), every pending request rejects with
 *   `TransportClosedError` at once and `closed` resolves once.
 */
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import type { Logger } from '../logger.js';

/** The peer answered a request with a JSON-RPC error. Also thrown by server-request handlers to choose the error answer. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** No response arrived within the request's timeout. The request may still run on the server. */
export class RpcTimeoutError extends Error {
  override readonly name = 'RpcTimeoutError';
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`${method} got no response within ${timeoutMs} ms`);
  }
}

/** The stream to the app-server is gone (process exited, stdout ended, stdin broke, or close() was called). */
export class TransportClosedError extends Error {
  override readonly name = 'TransportClosedError';
  constructor(readonly reason: string) {
    super(`app-server transport closed: ${reason}`);
  }
}

export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;

// ---- envelope schemas -------------------------------------------------------------------------

const RequestIdSchema = z.union([z.number().int(), z.string()]);
export type RequestId = z.infer<typeof RequestIdSchema>;

const ErrorObjectSchema = z.looseObject({ code: z.number().int(), message: z.string(), data: z.unknown().optional() });

const ServerRequestEnvelope = z.looseObject({ id: RequestIdSchema, method: z.string(), params: z.unknown().optional() });
const NotificationEnvelope = z
  .looseObject({ method: z.string(), params: z.unknown().optional() })
  .refine((m) => !('id' in m), 'a notification has no id');
const ErrorResponseEnvelope = z.looseObject({ id: RequestIdSchema, error: ErrorObjectSchema });
const ResultResponseEnvelope = z
  .looseObject({ id: RequestIdSchema, result: z.unknown() })
  .refine((m) => 'result' in m && !('method' in m), 'a response has a result and no method');

export type Incoming =
  | { kind: 'serverRequest'; id: RequestId; method: string; params: unknown }
  | { kind: 'notification'; method: string; params: unknown }
  | { kind: 'response'; id: RequestId; result: unknown }
  | { kind: 'errorResponse'; id: RequestId; error: { code: number; message: string; data?: unknown } };

/** Classifies one line. Pure; never throws: returns `{ invalid }` for non-JSON or non-conforming lines. */
export function parseLine(line: string): Incoming | { invalid: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { invalid: 'not JSON' };
  }
  const req = ServerRequestEnvelope.safeParse(value);
  if (req.success) return { kind: 'serverRequest', id: req.data.id, method: req.data.method, params: req.data.params };
  const note = NotificationEnvelope.safeParse(value);
  if (note.success) return { kind: 'notification', method: note.data.method, params: note.data.params };
  const err = ErrorResponseEnvelope.safeParse(value);
  if (err.success) return { kind: 'errorResponse', id: err.data.id, error: err.data.error };
  const res = ResultResponseEnvelope.safeParse(value);
  if (res.success) return { kind: 'response', id: res.data.id, result: res.data.result };
  return { invalid: 'not a JSON-RPC request, notification or response' };
}

export function truncate(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

// ---- transport --------------------------------------------------------------------------------

export type ServerRequestHandler = (method: string, params: unknown, id: RequestId) => Promise<unknown>;
export type NotificationListener = (method: string, params: unknown) => void;

export interface JsonRpcTransportOptions {
  input: Readable;
  output: Writable;
  log: Logger;
  /** Default per-request timeout; `0` or `Infinity` disables it. */
  requestTimeoutMs?: number;
  /** A line longer than this is dropped (the peer is broken, not chatty). */
  maxLineChars?: number;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class JsonRpcTransport {
  /** Resolves once, when the input ends or errors (or the output breaks). Never rejects. */
  readonly closed: Promise<{ reason: string }>;

  private readonly input: Readable;
  private readonly output: Writable;
  private readonly log: Logger;
  private readonly requestTimeoutMs: number;
  private readonly maxLineChars: number;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<NotificationListener>();
  private handler: ServerRequestHandler | undefined;
  private nextId = 1;
  private buffer = '';
  private dropping = false;
  private closedReason: string | undefined;
  private outputEnded = false;
  private resolveClosed!: (v: { reason: string }) => void;

  constructor(options: JsonRpcTransportOptions) {
    this.input = options.input;
    this.output = options.output;
    this.log = options.log;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.maxLineChars = options.maxLineChars ?? 64 * 1024 * 1024;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });

    const decoder = new StringDecoder('utf8');
    this.input.on('data', (chunk: Buffer | string) => this.onData(typeof chunk === 'string' ? chunk : decoder.write(chunk)));
    this.input.once('end', () => {
      this.onData(decoder.end());
      if (this.buffer.trim()) this.onLine(this.buffer);
      this.buffer = '';
      this.shutdown('app-server output ended');
    });
    this.input.once('close', () => this.shutdown('app-server output closed'));
    this.input.on('error', (err: Error) => this.shutdown(`app-server output errored: ${err.message}`));
    // Writing to a dead process raises EPIPE here; without a listener it would crash the host.
    this.output.on('error', (err: Error) => this.shutdown(`app-server input errored: ${err.message}`));
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined || this.outputEnded;
  }

  /**
   * Sends a request and resolves with its `result`. Rejects with `RpcError` (error answer),
   * `RpcTimeoutError` (no answer in time) or `TransportClosedError` (stream gone or closed).
   */
  request(method: string, params: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.isClosed) return Promise.reject(new TransportClosedError(this.closedReason ?? 'closed by client'));
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const entry: Pending = { method, resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new RpcTimeoutError(method, timeoutMs));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      this.write(params === undefined ? { id, method } : { id, method, params });
    });
  }

  /** Sends a notification. Never throws; dropped (logged at debug) once the transport is closed. */
  notify(method: string, params?: unknown): void {
    if (this.isClosed) {
      this.log.debug({ method }, 'notification dropped: transport closed');
      return;
    }
    this.write(params === undefined ? { method } : { method, params });
  }

  /** Sets the single handler for server→client requests (replaces any previous one). */
  onServerRequest(handler: ServerRequestHandler): void {
    this.handler = handler;
  }

  /** Adds a notification listener; returns its unsubscribe function. A throwing listener is logged, not propagated. */
  onNotification(listener: NotificationListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Ends the output (the app-server exits on stdin EOF). `closed` resolves when its output then ends. Never throws. */
  close(): void {
    if (this.outputEnded) return;
    this.outputEnded = true;
    try {
      this.output.end();
    } catch (err) {
      this.log.debug({ err }, 'ending app-server input failed');
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private write(message: object): void {
    try {
      this.output.write(`${JSON.stringify(message)}\n`);
    } catch (err) {
      // A destroyed stream throws synchronously on some Node versions; the error listener covers the rest.
      this.shutdown(`writing to app-server failed: ${(err as Error).message}`);
    }
  }

  private onData(text: string): void {
    if (!text) return;
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      const piece = text.slice(start, nl);
      if (this.dropping) {
        this.dropping = false;
      } else {
        this.onLine(this.buffer + piece);
      }
      this.buffer = '';
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (this.dropping) return;
    this.buffer += text.slice(start);
    if (this.buffer.length > this.maxLineChars) {
      this.log.warn({ chars: this.buffer.length }, 'app-server line too long; dropping it');
      this.buffer = '';
      this.dropping = true;
    }
  }

  private onLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.trim()) return;
    const msg = parseLine(line);
    if ('invalid' in msg) {
      this.log.warn({ line: truncate(line), why: msg.invalid }, 'ignoring invalid line from app-server');
      return;
    }
    switch (msg.kind) {
      case 'response':
      case 'errorResponse':
        this.settle(msg);
        return;
      case 'notification':
        for (const listener of this.listeners) {
          try {
            listener(msg.method, msg.params);
          } catch (err) {
            this.log.error({ err, method: msg.method }, 'notification listener threw');
          }
        }
        return;
      case 'serverRequest':
        void this.answer(msg.id, msg.method, msg.params).catch((err: unknown) => this.log.error({ err }, 'answering server request failed'));
        return;
    }
  }

  private settle(msg: Extract<Incoming, { kind: 'response' | 'errorResponse' }>): void {
    const entry = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!entry) {
      this.log.debug({ id: msg.id }, 'response for an unknown or timed-out request; ignored');
      return;
    }
    this.pending.delete(msg.id as number);
    clearTimeout(entry.timer);
    if (msg.kind === 'response') entry.resolve(msg.result);
    else entry.reject(new RpcError(msg.error.code, msg.error.message, msg.error.data));
  }

  private async answer(id: RequestId, method: string, params: unknown): Promise<void> {
    let reply: object;
    if (!this.handler) {
      reply = { id, error: { code: METHOD_NOT_FOUND, message: `no handler for server request ${method}` } };
    } else {
      try {
        const result = await this.handler(method, params, id);
        reply = { id, result: result === undefined ? null : result };
      } catch (err) {
        const error =
          err instanceof RpcError
            ? { code: err.code, message: err.message, ...(err.data === undefined ? {} : { data: err.data }) }
            : { code: INTERNAL_ERROR, message: err instanceof Error ? err.message : String(err) };
        reply = { id, error };
      }
    }
    if (this.isClosed) {
      this.log.debug({ id, method }, 'server request answer dropped: transport closed');
      return;
    }
    this.write(reply);
  }

  private shutdown(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const error = new TransportClosedError(reason);
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
    this.pending.clear();
    this.log.debug({ reason }, 'app-server transport closed');
    this.resolveClosed({ reason });
  }
}
