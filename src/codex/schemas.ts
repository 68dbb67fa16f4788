/**
 * Zod checks for the app-server messages the relay reads: a trust boundary, because the other
 * end is a process inside a container running model-driven code.
 *
 * Each schema validates only the fields the relay reads and passes the rest through (loose
 * objects). Its output is typed as the *generated* protocol type, and `conform<T>()` refuses to
 * compile unless that generated type fits the schema — so a field checked here cannot drift from
 * the pinned binary's protocol, and no shape is guessed by hand.
 *
 * `parseNotification` / `parseServerRequest` never throw: unknown methods come back as
 * `unknown`, failures as `invalid` with a short reason for the log.
 */
import { z } from 'zod';
import type { ServerNotification } from './generated/ServerNotification.js';
import type { ServerRequest } from './generated/ServerRequest.js';
import type { ThreadItem } from './generated/v2/ThreadItem.js';
import type { ThreadStartResponse } from './generated/v2/ThreadStartResponse.js';
import type { ThreadResumeResponse } from './generated/v2/ThreadResumeResponse.js';
import type { TokenUsageBreakdown } from './generated/v2/TokenUsageBreakdown.js';
import type { Turn } from './generated/v2/Turn.js';
import type { TurnError } from './generated/v2/TurnError.js';
import type { TurnStartResponse } from './generated/v2/TurnStartResponse.js';
import type { TurnSteerResponse } from './generated/v2/TurnSteerResponse.js';
import type { InitializeResponse } from './generated/InitializeResponse.js';

/**
 * Types the schema's output as the generated type `T`. Compiles only when `T` is assignable to
 * what the schema checks (every checked field exists in `T` with a compatible type).
 */
function conform<T>() {
  return <S extends z.ZodType>(schema: S, ..._fits: [T] extends [z.output<S>] ? [] : ['generated type does not fit this schema']): z.ZodType<T> =>
    schema as unknown as z.ZodType<T>;
}

// ---- shared pieces ----------------------------------------------------------------------------

const TurnStatusSchema = z.enum(['completed', 'interrupted', 'failed', 'inProgress']);

export const TurnErrorSchema = conform<TurnError>()(
  z.looseObject({ message: z.string(), codexErrorInfo: z.unknown(), additionalDetails: z.string().nullable().optional() }),
);

export const TokenUsageBreakdownSchema = conform<TokenUsageBreakdown>()(
  z.looseObject({
    totalTokens: z.number(),
    inputTokens: z.number(),
    cachedInputTokens: z.number(),
    cacheWriteInputTokens: z.number(),
    outputTokens: z.number(),
    reasoningOutputTokens: z.number(),
  }),
);

/** Known item kinds get their read fields checked; any other kind needs only `type` and `id`. */
const CHECKED_ITEM_TYPES = ['userMessage', 'agentMessage', 'commandExecution', 'fileChange', 'mcpToolCall'] as const satisfies readonly ThreadItem['type'][];
type CheckedItemType = (typeof CHECKED_ITEM_TYPES)[number];
export const ThreadItemSchema = conform<ThreadItem>()(
  z.union([
    z.looseObject({ type: z.literal('userMessage'), id: z.string(), content: z.array(z.looseObject({ type: z.string() })) }),
    z.looseObject({ type: z.literal('agentMessage'), id: z.string(), text: z.string() }),
    z.looseObject({
      type: z.literal('commandExecution'),
      id: z.string(),
      command: z.string(),
      status: z.enum(['inProgress', 'completed', 'failed', 'declined']),
      aggregatedOutput: z.string().nullable(),
      exitCode: z.number().nullable(),
    }),
    z.looseObject({
      type: z.literal('fileChange'),
      id: z.string(),
      changes: z.array(z.looseObject({ path: z.string() })),
      status: z.enum(['inProgress', 'completed', 'failed', 'declined']),
    }),
    z.looseObject({ type: z.literal('mcpToolCall'), id: z.string(), server: z.string(), tool: z.string() }),
    // Typed as "any other generated kind" so the per-kind checks above stay tied to the generated
    // variants; at runtime any other string passes (kinds added by newer servers are just shown less).
    z.looseObject({
      type: z.custom<Exclude<ThreadItem['type'], CheckedItemType>>(
        (t) => typeof t === 'string' && !(CHECKED_ITEM_TYPES as readonly string[]).includes(t),
        'malformed item of a checked kind',
      ),
      id: z.string(),
    }),
  ]),
);

export const TurnSchema = conform<Turn>()(
  z.looseObject({
    id: z.string(),
    items: z.array(ThreadItemSchema),
    status: TurnStatusSchema,
    error: TurnErrorSchema.nullable(),
    durationMs: z.number().nullable(),
  }),
);

// ---- notifications ----------------------------------------------------------------------------

type NotificationParams<M extends ServerNotification['method']> = Extract<ServerNotification, { method: M }>['params'];

const notificationSchemas = {
  'turn/started': conform<NotificationParams<'turn/started'>>()(z.looseObject({ threadId: z.string(), turn: z.looseObject({ id: z.string() }) })),
  'turn/completed': conform<NotificationParams<'turn/completed'>>()(z.looseObject({ threadId: z.string(), turn: TurnSchema })),
  'item/started': conform<NotificationParams<'item/started'>>()(
    z.looseObject({ threadId: z.string(), turnId: z.string(), item: ThreadItemSchema }),
  ),
  'item/completed': conform<NotificationParams<'item/completed'>>()(
    z.looseObject({ threadId: z.string(), turnId: z.string(), item: ThreadItemSchema }),
  ),
  'item/agentMessage/delta': conform<NotificationParams<'item/agentMessage/delta'>>()(
    z.looseObject({ threadId: z.string(), turnId: z.string(), itemId: z.string(), delta: z.string() }),
  ),
  error: conform<NotificationParams<'error'>>()(
    z.looseObject({ threadId: z.string(), turnId: z.string(), willRetry: z.boolean(), error: TurnErrorSchema }),
  ),
  'thread/tokenUsage/updated': conform<NotificationParams<'thread/tokenUsage/updated'>>()(
    z.looseObject({
      threadId: z.string(),
      turnId: z.string(),
      tokenUsage: z.looseObject({ total: TokenUsageBreakdownSchema, last: TokenUsageBreakdownSchema }),
    }),
  ),
  'serverRequest/resolved': conform<NotificationParams<'serverRequest/resolved'>>()(
    z.looseObject({ threadId: z.string(), requestId: z.union([z.string(), z.number()]) }),
  ),
  'thread/status/changed': conform<NotificationParams<'thread/status/changed'>>()(
    z.looseObject({ threadId: z.string(), status: z.looseObject({ type: z.enum(['notLoaded', 'idle', 'systemError', 'active']) }) }),
  ),
} as const;

export type KnownNotificationMethod = keyof typeof notificationSchemas;
/** The notifications the relay reads, typed from the generated `ServerNotification` union. */
export type KnownNotification = Extract<ServerNotification, { method: KnownNotificationMethod }>;

export type ParseResult<T> = { ok: T } | { unknown: true } | { invalid: string };

/** Validates a notification the relay reads. Never throws. */
export function parseNotification(method: string, params: unknown): ParseResult<KnownNotification> {
  if (!Object.hasOwn(notificationSchemas, method)) return { unknown: true };
  const result = notificationSchemas[method as KnownNotificationMethod].safeParse(params);
  if (!result.success) return { invalid: summarize(result.error) };
  return { ok: { method, params: result.data } as KnownNotification };
}

// ---- server → client requests -----------------------------------------------------------------

type RequestParams<M extends ServerRequest['method']> = Extract<ServerRequest, { method: M }>['params'];

const turnScoped = { threadId: z.string(), turnId: z.string(), itemId: z.string() };

const serverRequestSchemas = {
  'item/commandExecution/requestApproval': conform<RequestParams<'item/commandExecution/requestApproval'>>()(
    z.looseObject({ ...turnScoped, command: z.string().nullable().optional(), reason: z.string().nullable().optional() }),
  ),
  'item/fileChange/requestApproval': conform<RequestParams<'item/fileChange/requestApproval'>>()(
    z.looseObject({ ...turnScoped, reason: z.string().nullable().optional() }),
  ),
  'item/permissions/requestApproval': conform<RequestParams<'item/permissions/requestApproval'>>()(
    z.looseObject({ ...turnScoped, permissions: z.looseObject({}) }),
  ),
  'item/tool/requestUserInput': conform<RequestParams<'item/tool/requestUserInput'>>()(
    z.looseObject({ ...turnScoped, questions: z.array(z.looseObject({ id: z.string() })) }),
  ),
  'mcpServer/elicitation/request': conform<RequestParams<'mcpServer/elicitation/request'>>()(
    z.looseObject({ threadId: z.string(), turnId: z.string().nullable(), serverName: z.string() }),
  ),
} as const;

export type HandledServerRequestMethod = keyof typeof serverRequestSchemas;
/** The server requests the relay answers, typed from the generated `ServerRequest` union (minus the id). */
export type HandledServerRequest = WithoutId<Extract<ServerRequest, { method: HandledServerRequestMethod }>>;
type WithoutId<R> = R extends unknown ? Omit<R, 'id'> : never;

/** Validates a server request the relay knows how to answer. Never throws. */
export function parseServerRequest(method: string, params: unknown): ParseResult<HandledServerRequest> {
  if (!Object.hasOwn(serverRequestSchemas, method)) return { unknown: true };
  const result = serverRequestSchemas[method as HandledServerRequestMethod].safeParse(params);
  if (!result.success) return { invalid: summarize(result.error) };
  return { ok: { method, params: result.data } as HandledServerRequest };
}

// ---- responses to our requests ----------------------------------------------------------------

export const InitializeResponseSchema = conform<InitializeResponse>()(z.looseObject({ userAgent: z.string(), codexHome: z.string() }));
const ThreadResponseShape = z.looseObject({ thread: z.looseObject({ id: z.string() }) });
export const ThreadStartResponseSchema = conform<ThreadStartResponse>()(ThreadResponseShape);
export const ThreadResumeResponseSchema = conform<ThreadResumeResponse>()(ThreadResponseShape);
export const TurnStartResponseSchema = conform<TurnStartResponse>()(z.looseObject({ turn: z.looseObject({ id: z.string(), status: TurnStatusSchema }) }));
export const TurnSteerResponseSchema = conform<TurnSteerResponse>()(z.looseObject({ turnId: z.string() }));

function summarize(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
