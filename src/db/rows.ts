/**
 * Row schemas: every row read back from SQLite goes through one of these (snake_case columns in,
 * camelCase typed object out). JSON columns are parsed and validated by their own schemas, so a
 * column is never typed by a comment. The group-setting enums and limits live here too, because the
 * env config (defaults for new groups), the store (writes) and chat commands (edits) must agree.
 *
 * Invariant: the store writes only values these schemas accept, so a row that fails its schema was
 * changed behind the relay's back (or by a bug) and is refused, never half-used.
 */
import { z } from 'zod';
import { InboundMessageSchema, PlatformSchema } from '../core/inbound.js';
import { CorruptRowError } from './errors.js';

// ── Group settings ─────────────────────────────────────────────────────────────────────────────

export const SLUG_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const ReasoningEffortSchema = z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']);
export type ReasoningEffort = z.infer<typeof ReasoningEffortSchema>;
export const SandboxModeSchema = z.enum(['read-only', 'workspace-write', 'danger-full-access']);
export type SandboxMode = z.infer<typeof SandboxModeSchema>;
export const ApprovalPolicySchema = z.enum(['untrusted', 'on-request', 'never']);
export type ApprovalPolicy = z.infer<typeof ApprovalPolicySchema>;
export const EgressSchema = z.enum(['open', 'locked']);
export type Egress = z.infer<typeof EgressSchema>;
export const ArchivePolicySchema = z.enum(['off', 'on-request', 'tool-activity', 'always']);
export type ArchivePolicy = z.infer<typeof ArchivePolicySchema>;

/** Inclusive bounds shared by env defaults and per-group edits. */
export const GROUP_LIMITS = {
  memoryMb: { min: 256, max: 262_144 },
  cpus: { min: 0.1, max: 256 },
  pidsLimit: { min: 32, max: 65_536 },
  idleTimeoutSec: { min: 10, max: 7 * 86_400 },
  turnTimeoutSec: { min: 10, max: 86_400 },
  retentionDays: { min: 1, max: 36_500 },
} as const;

export const MODEL_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;
export const INSTRUCTIONS_MAX_CHARS = 32 * 1024;

const int = (k: keyof typeof GROUP_LIMITS) => z.number().int().min(GROUP_LIMITS[k].min).max(GROUP_LIMITS[k].max);

/** Every setting of a group that can be changed after setup. */
export const GroupSettingsSchema = z.object({
  name: z.string().trim().min(1).max(200),
  model: z.string().regex(MODEL_RE, 'not a model name'),
  reasoningEffort: ReasoningEffortSchema,
  instructions: z.string().max(INSTRUCTIONS_MAX_CHARS),
  sandboxMode: SandboxModeSchema,
  approvalPolicy: ApprovalPolicySchema,
  memoryMb: int('memoryMb'),
  cpus: z.number().min(GROUP_LIMITS.cpus.min).max(GROUP_LIMITS.cpus.max),
  pidsLimit: int('pidsLimit'),
  idleTimeoutSec: int('idleTimeoutSec'),
  turnTimeoutSec: int('turnTimeoutSec'),
  egress: EgressSchema,
  archivePolicy: ArchivePolicySchema,
  /** null = keep forever. */
  retentionDays: int('retentionDays').nullable(),
  /** Platform user ids allowed to talk to the agent; null = everyone in the chat. */
  allowedUsers: z.array(z.string().min(1).max(200)).max(1000).nullable(),
});
export type GroupSettings = z.infer<typeof GroupSettingsSchema>;

/** What the operator configures for new groups (env `DEFAULT_*`); the rest has fixed defaults. */
export const GroupDefaultsSchema = GroupSettingsSchema.pick({
  model: true,
  reasoningEffort: true,
  sandboxMode: true,
  approvalPolicy: true,
  memoryMb: true,
  cpus: true,
  pidsLimit: true,
  idleTimeoutSec: true,
  turnTimeoutSec: true,
  egress: true,
});
export type GroupDefaults = z.infer<typeof GroupDefaultsSchema>;

/** The built-in defaults; config's `DEFAULT_*` fall back to exactly these. */
export const BUILTIN_GROUP_DEFAULTS: Readonly<GroupDefaults> = Object.freeze({
  model: 'gpt-5.5',
  reasoningEffort: 'medium',
  sandboxMode: 'workspace-write',
  approvalPolicy: 'never',
  memoryMb: 2048,
  cpus: 1.0,
  pidsLimit: 512,
  idleTimeoutSec: 600,
  turnTimeoutSec: 900,
  egress: 'open',
});

// ── JSON column helper ─────────────────────────────────────────────────────────────────────────

/** A TEXT column holding JSON, validated by `inner` after parsing. */
function jsonText<T extends z.ZodType>(inner: T) {
  return z
    .string()
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(inner);
}

const ms = z.number().int().nonnegative();
const nullableText = z.string().nullable();
const nullableCount = z.number().int().nonnegative().nullable();

// ── groups ─────────────────────────────────────────────────────────────────────────────────────

export const GroupRowSchema = z
  .object({
    slug: z.string().regex(SLUG_RE),
    chat_key: z.string().min(1),
    platform: PlatformSchema,
    name: GroupSettingsSchema.shape.name,
    model: GroupSettingsSchema.shape.model,
    reasoning_effort: ReasoningEffortSchema,
    instructions: GroupSettingsSchema.shape.instructions,
    sandbox_mode: SandboxModeSchema,
    approval_policy: ApprovalPolicySchema,
    memory_mb: GroupSettingsSchema.shape.memoryMb,
    cpus: GroupSettingsSchema.shape.cpus,
    pids_limit: GroupSettingsSchema.shape.pidsLimit,
    idle_timeout_sec: GroupSettingsSchema.shape.idleTimeoutSec,
    turn_timeout_sec: GroupSettingsSchema.shape.turnTimeoutSec,
    egress: EgressSchema,
    archive_policy: ArchivePolicySchema,
    retention_days: GroupSettingsSchema.shape.retentionDays,
    allowed_users: jsonText(z.array(z.string())).nullable(),
    created_at: ms,
    updated_at: ms,
  })
  .transform((r) => ({
    slug: r.slug,
    chatKey: r.chat_key,
    platform: r.platform,
    name: r.name,
    model: r.model,
    reasoningEffort: r.reasoning_effort,
    instructions: r.instructions,
    sandboxMode: r.sandbox_mode,
    approvalPolicy: r.approval_policy,
    memoryMb: r.memory_mb,
    cpus: r.cpus,
    pidsLimit: r.pids_limit,
    idleTimeoutSec: r.idle_timeout_sec,
    turnTimeoutSec: r.turn_timeout_sec,
    egress: r.egress,
    archivePolicy: r.archive_policy,
    retentionDays: r.retention_days,
    allowedUsers: r.allowed_users,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
export type Group = z.output<typeof GroupRowSchema>;

// ── chat_threads ───────────────────────────────────────────────────────────────────────────────

export const ChatThreadRowSchema = z
  .object({
    group_slug: z.string().regex(SLUG_RE),
    thread_key: z.string().min(1),
    codex_thread_id: nullableText,
    created_at: ms,
    updated_at: ms,
    last_turn_at: ms.nullable(),
  })
  .transform((r) => ({
    groupSlug: r.group_slug,
    threadKey: r.thread_key,
    codexThreadId: r.codex_thread_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastTurnAt: r.last_turn_at,
  }));
export type ChatThread = z.output<typeof ChatThreadRowSchema>;

// ── inbox ──────────────────────────────────────────────────────────────────────────────────────

export const InboxStatusSchema = z.enum(['received', 'running', 'answered', 'failed']);
export type InboxStatus = z.infer<typeof InboxStatusSchema>;

export const InboxRowSchema = z
  .object({
    id: z.number().int().positive(),
    event_id: z.string().min(1),
    platform: PlatformSchema,
    chat_key: z.string().min(1),
    thread_key: z.string().min(1),
    channel_id: z.string().min(1),
    group_slug: z.string().regex(SLUG_RE).nullable(),
    user_id: z.string().min(1),
    user_name: nullableText,
    text: z.string(),
    payload: jsonText(InboundMessageSchema),
    status: InboxStatusSchema,
    attempts: z.number().int().nonnegative(),
    error: nullableText,
    codex_turn_id: nullableText,
    received_at: ms,
    updated_at: ms,
  })
  .transform((r) => ({
    id: r.id,
    /** `platform:eventId`, unique. */
    eventId: r.event_id,
    platform: r.platform,
    chatKey: r.chat_key,
    threadKey: r.thread_key,
    channelId: r.channel_id,
    groupSlug: r.group_slug,
    userId: r.user_id,
    userName: r.user_name,
    text: r.text,
    /** The full message as accepted, for replay after a restart. */
    payload: r.payload,
    status: r.status,
    /** How many times the message was put back in the queue after a failed or interrupted run. */
    attempts: r.attempts,
    error: r.error,
    codexTurnId: r.codex_turn_id,
    receivedAt: r.received_at,
    updatedAt: r.updated_at,
  }));
export type InboxRow = z.output<typeof InboxRowSchema>;

// ── exchanges ──────────────────────────────────────────────────────────────────────────────────

/** One thing Codex did during a turn (command, file change, tool call, …), as the archive renders it. */
export const ArchivedItemSchema = z.object({
  type: z.string().min(1),
  id: z.string(),
  summary: z.string(),
  detail: z.string().optional(),
  exitCode: z.number().int().nullable().optional(),
  durationMs: z.number().nonnegative().nullable().optional(),
  status: z.string().optional(),
});
export type ArchivedItem = z.infer<typeof ArchivedItemSchema>;

export const ExchangeStatusSchema = z.enum(['completed', 'interrupted', 'failed']);
export type ExchangeStatus = z.infer<typeof ExchangeStatusSchema>;

export const ExchangeRowSchema = z
  .object({
    id: z.number().int().positive(),
    group_slug: z.string().regex(SLUG_RE),
    thread_key: z.string().min(1),
    inbox_id: z.number().int().positive().nullable(),
    codex_thread_id: nullableText,
    codex_turn_id: nullableText,
    platform: PlatformSchema,
    user_id: z.string().min(1),
    prompt: z.string(),
    items: jsonText(z.array(ArchivedItemSchema)),
    answer: nullableText,
    status: ExchangeStatusSchema,
    error: nullableText,
    input_tokens: nullableCount,
    output_tokens: nullableCount,
    total_tokens: nullableCount,
    started_at: ms,
    completed_at: ms,
    duration_ms: z.number().int().nonnegative(),
  })
  .transform((r) => ({
    id: r.id,
    groupSlug: r.group_slug,
    threadKey: r.thread_key,
    inboxId: r.inbox_id,
    codexThreadId: r.codex_thread_id,
    codexTurnId: r.codex_turn_id,
    platform: r.platform,
    userId: r.user_id,
    prompt: r.prompt,
    items: r.items,
    answer: r.answer,
    status: r.status,
    error: r.error,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    totalTokens: r.total_tokens,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    durationMs: r.duration_ms,
  }));
export type Exchange = z.output<typeof ExchangeRowSchema>;

/** What the archive hands to ExchangesRepo.insert; `durationMs` is computed from the timestamps. */
const newCount = z.number().int().nonnegative().nullable().default(null);

export const NewExchangeSchema = z
  .object({
    groupSlug: z.string().regex(SLUG_RE),
    threadKey: z.string().min(1),
    inboxId: z.number().int().positive().nullable().default(null),
    codexThreadId: z.string().min(1).nullable().default(null),
    codexTurnId: z.string().min(1).nullable().default(null),
    platform: PlatformSchema,
    userId: z.string().min(1),
    prompt: z.string(),
    items: z.array(ArchivedItemSchema).default([]),
    answer: z.string().nullable().default(null),
    status: ExchangeStatusSchema,
    error: z.string().nullable().default(null),
    inputTokens: newCount,
    outputTokens: newCount,
    totalTokens: newCount,
    /** ms since epoch. */
    startedAt: z.number().int().nonnegative(),
    completedAt: z.number().int().nonnegative(),
  })
  .refine((e) => e.completedAt >= e.startedAt, { message: 'completedAt is before startedAt', path: ['completedAt'] });
export type NewExchange = z.input<typeof NewExchangeSchema>;

export const TokenTotalsRowSchema = z
  .object({
    exchanges: z.number().int().nonnegative(),
    input_tokens: z.number().int().nonnegative(),
    output_tokens: z.number().int().nonnegative(),
    total_tokens: z.number().int().nonnegative(),
  })
  .transform((r) => ({
    exchanges: r.exchanges,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    totalTokens: r.total_tokens,
  }));
export type TokenTotals = z.output<typeof TokenTotalsRowSchema>;

// ── reading ────────────────────────────────────────────────────────────────────────────────────

/** Parses one raw row. Throws CorruptRowError naming the table and the row's key when it does not fit. */
export function readRow<S extends z.ZodType>(schema: S, table: string, key: string, raw: unknown): z.output<S> {
  const result = schema.safeParse(raw);
  if (!result.success) throw new CorruptRowError(table, key, result.error.issues);
  return result.data;
}
