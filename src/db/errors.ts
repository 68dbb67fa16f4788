/**
 * One error hierarchy for the store, each with a stable `code` so callers branch on the code, never
 * on message text.
 */
import type { z } from 'zod';

export type StoreErrorCode = 'corrupt_row' | 'illegal_transition' | 'not_found' | 'conflict' | 'invalid_input';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** A row read back does not match its schema: it was edited outside the relay, or a bug wrote it. */
export class CorruptRowError extends StoreError {
  constructor(
    readonly table: string,
    /** Human-readable key of the row, e.g. `slug=team-a` or `id=42`. */
    readonly key: string,
    readonly issues: readonly z.core.$ZodIssue[],
  ) {
    super('corrupt_row', `corrupt row in ${table} (${key}): ${formatIssues(issues)}`);
    this.name = 'CorruptRowError';
  }
}

export class IllegalTransitionError extends StoreError {
  constructor(
    readonly table: string,
    readonly id: number,
    readonly from: string,
    readonly to: string,
  ) {
    super('illegal_transition', `${table} row ${id}: cannot go from "${from}" to "${to}"`);
    this.name = 'IllegalTransitionError';
  }
}

export class NotFoundError extends StoreError {
  constructor(table: string, key: string) {
    super('not_found', `no row in ${table} with ${key}`);
    this.name = 'NotFoundError';
  }
}

/** A unique key is already taken (group slug, chat key). */
export class ConflictError extends StoreError {
  constructor(message: string) {
    super('conflict', message);
    this.name = 'ConflictError';
  }
}

/** Input refused before it reached SQL (e.g. a group setting out of range). */
export class InvalidInputError extends StoreError {
  constructor(
    what: string,
    readonly issues: readonly z.core.$ZodIssue[],
  ) {
    super('invalid_input', `invalid ${what}: ${formatIssues(issues)}`);
    this.name = 'InvalidInputError';
  }
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
