import { describe, expect, it } from 'vitest';
import { parseNotification, parseServerRequest } from '../../src/codex/schemas.js';

const turn = { id: 'T', rootTurnId: null, items: [], itemsView: 'summary', status: 'completed', error: null, startedAt: 1, completedAt: 2, durationMs: 5 };

describe('parseNotification', () => {
  it.each([
    ['turn/completed', { threadId: 't', turn }],
    ['turn/completed with an error', { threadId: 't', turn: { ...turn, status: 'failed', error: { message: 'boom', codexErrorInfo: { httpConnectionFailed: { httpStatusCode: 500 } }, additionalDetails: null, misalignment: null } } }],
    ['item/started', { threadId: 't', turnId: 'T', startedAtMs: 1, item: { type: 'commandExecution', id: 'c', command: 'ls', cwd: '/w', status: 'inProgress', aggregatedOutput: null, exitCode: null, extra: 1 } }],
    ['item/completed', { threadId: 't', turnId: 'T', completedAtMs: 1, item: { type: 'fileChange', id: 'f', changes: [{ path: '/a', kind: { type: 'add' }, diff: '' }], status: 'completed' } }],
    ['item/completed', { threadId: 't', turnId: 'T', completedAtMs: 1, item: { type: 'reasoning', id: 'r', summary: [], content: [] } }],
    ['item/completed', { threadId: 't', turnId: 'T', completedAtMs: 1, item: { type: 'someFutureKind', id: 'z' } }],
    ['item/agentMessage/delta', { threadId: 't', turnId: 'T', itemId: 'm', delta: 'x' }],
    ['error', { threadId: 't', turnId: 'T', willRetry: true, error: { message: 'Reconnecting... 1/5', codexErrorInfo: 'other', additionalDetails: null, misalignment: null } }],
    ['serverRequest/resolved', { threadId: 't', requestId: 0 }],
    ['thread/status/changed', { threadId: 't', status: { type: 'idle' } }],
  ])('accepts %s', (label, params) => {
    const method = label.split(' ')[0] ?? label;
    const result = parseNotification(method, params);
    expect(result).toHaveProperty('ok');
    // Pass-through: unread fields survive validation.
    if ('ok' in result) expect(result.ok.params).toEqual(params);
  });

  it.each([
    ['turn/completed', { threadId: 't', turn: { ...turn, status: 'exploded' } }],
    ['turn/completed', { threadId: 't' }],
    ['item/completed', { threadId: 't', turnId: 'T', item: { type: 'agentMessage', id: 'm' } }],
    ['item/completed', { threadId: 't', turnId: 'T', item: { type: 'commandExecution', id: 'c', command: 5 } }],
    ['item/agentMessage/delta', { threadId: 't', turnId: 'T', itemId: 'm' }],
    ['error', { threadId: 't', turnId: 'T', error: { message: 'x' } }],
    ['thread/tokenUsage/updated', { threadId: 't', turnId: 'T', tokenUsage: { total: {}, last: {} } }],
    ['thread/status/changed', null],
  ])('rejects a malformed %s', (method, params) => {
    expect(parseNotification(method, params)).toHaveProperty('invalid');
  });

  it('reports methods the relay does not read as unknown', () => {
    expect(parseNotification('turn/diff/updated', { diff: '' })).toEqual({ unknown: true });
    expect(parseNotification('toString', {})).toEqual({ unknown: true });
  });
});

describe('parseServerRequest', () => {
  it('accepts a real command approval and keeps every field', () => {
    const params = {
      kind: 'command',
      threadId: 't',
      turnId: 'T',
      itemId: 'call_abc',
      startedAtMs: 1,
      environmentId: 'local',
      reason: 'Need to write outside workspace',
      command: "/bin/bash -lc 'echo x'",
      availableDecisions: ['accept', 'cancel'],
    };
    expect(parseServerRequest('item/commandExecution/requestApproval', params)).toEqual({ ok: { method: 'item/commandExecution/requestApproval', params } });
  });

  it('rejects malformed params and reports unhandled methods as unknown', () => {
    expect(parseServerRequest('item/fileChange/requestApproval', { threadId: 't' })).toHaveProperty('invalid');
    expect(parseServerRequest('item/tool/requestUserInput', { threadId: 't', turnId: 'T', itemId: 'i', questions: [{}] })).toHaveProperty('invalid');
    expect(parseServerRequest('item/tool/call', {})).toEqual({ unknown: true });
    expect(parseServerRequest('execCommandApproval', {})).toEqual({ unknown: true });
  });
});
