/**
 * Pure helpers of the session layer (table tests) and its wire-level behaviour with a scripted
 * JSONL peer: handshake shape, server-request answers, notification routing and races.
 */
import { describe, expect, it } from 'vitest';
import {
  answerServerRequest,
  AppServerClient,
  finalTextOf,
  OPTED_OUT_NOTIFICATIONS,
  turnUsage,
  TurnAlreadyActiveError,
  type ApprovalPolicy,
  type ThreadItem,
  type TurnEvent,
} from '../../src/codex/client.js';
import type { ThreadTokenUsage } from '../../src/codex/generated/v2/ThreadTokenUsage.js';
import type { HandledServerRequest } from '../../src/codex/schemas.js';
import { silentLogger } from '../../src/logger.js';
import { jsonlPeer, type JsonlPeer } from '../helpers/jsonl-peer.js';

const ACCEPT: ApprovalPolicy = { commands: 'accept', fileChanges: 'accept' };
const DECLINE: ApprovalPolicy = { commands: 'decline', fileChanges: 'decline' };
const scoped = { threadId: 't', turnId: 'u', itemId: 'i', startedAtMs: 1 };

describe('answerServerRequest', () => {
  const commandReq: HandledServerRequest = {
    method: 'item/commandExecution/requestApproval',
    params: { ...scoped, kind: 'command', environmentId: 'local', command: 'ls' },
  };
  const fileReq: HandledServerRequest = { method: 'item/fileChange/requestApproval', params: { ...scoped } };
  const permReq: HandledServerRequest = {
    method: 'item/permissions/requestApproval',
    params: { ...scoped, environmentId: null, cwd: '/w', reason: null, permissions: { network: { enabled: true }, fileSystem: null } },
  };
  const inputReq: HandledServerRequest = {
    method: 'item/tool/requestUserInput',
    params: {
      ...scoped,
      isBlocking: true,
      autoResolutionMs: null,
      questions: [
        { id: 'q1', header: 'h', question: 'q?', isOther: false, isSecret: false, options: null },
        { id: 'q2', header: 'h', question: 'q?', isOther: false, isSecret: false, options: null },
      ],
    },
  };
  const elicitReq: HandledServerRequest = {
    method: 'mcpServer/elicitation/request',
    params: { threadId: 't', turnId: null, serverName: 's', mode: 'url', _meta: null, message: 'm', url: 'https://x', elicitationId: 'e' },
  };

  it.each([
    ['command, accept policy', commandReq, ACCEPT, { decision: 'accept' }],
    ['command, decline policy', commandReq, DECLINE, { decision: 'decline' }],
    ['file change, accept policy', fileReq, ACCEPT, { decision: 'accept' }],
    ['file change, decline policy', fileReq, DECLINE, { decision: 'decline' }],
    ['file change follows its own setting', fileReq, { commands: 'accept', fileChanges: 'decline' } as ApprovalPolicy, { decision: 'decline' }],
    ['permissions grant nothing, even with accept', permReq, ACCEPT, { permissions: {}, scope: 'turn' }],
    ['user input gets empty answers', inputReq, ACCEPT, { answers: { q1: { answers: [] }, q2: { answers: [] } } }],
    ['elicitation is declined', elicitReq, ACCEPT, { action: 'decline', content: null, _meta: null }],
  ])('%s', (_name, request, policy, expected) => {
    expect(answerServerRequest(request, policy)).toEqual(expected);
  });
});

describe('finalTextOf', () => {
  const agent = (id: string, text: string): ThreadItem =>
    ({ type: 'agentMessage', id, text, moderation: null, phase: null, memoryCitation: null, delivery: null, questions: null }) as ThreadItem;
  const user: ThreadItem = { type: 'userMessage', id: 'u', clientId: null, content: [] };

  it.each([
    ['no items', [], [], ''],
    ['only a user message', [user], [], ''],
    ['the last agent message wins', [user, agent('a', 'first'), agent('b', 'second'), user], [], 'second'],
    ['falls back to the turn summary', [user], [agent('s', 'summary')], 'summary'],
    ['completed items beat the summary', [agent('a', 'item')], [agent('s', 'summary')], 'item'],
  ])('%s', (_name, items, summary, expected) => {
    expect(finalTextOf(items, summary)).toBe(expected);
  });
});

describe('turnUsage', () => {
  const b = (n: number) => ({ totalTokens: n, inputTokens: n, cachedInputTokens: 0, cacheWriteInputTokens: 0, outputTokens: 0, reasoningOutputTokens: 0 });
  const u = (total: number, last: number): ThreadTokenUsage => ({ total: b(total), last: b(last), modelContextWindow: null });

  it.each([
    ['no notifications', undefined, undefined, null],
    ['one request on a fresh thread', u(15, 15), u(15, 15), 15],
    ['one request after earlier turns', u(115, 15), u(115, 15), 15],
    ['two requests in the turn', u(115, 15), u(130, 15), 30],
    ['a repeated notification is not double counted', u(115, 15), u(115, 15), 15],
  ])('%s', (_name, first, last, expected) => {
    expect(turnUsage(first, last)?.totalTokens ?? null).toBe(expected);
  });
});

// ---- wire level -------------------------------------------------------------------------------

async function connected(approvals: ApprovalPolicy = ACCEPT): Promise<{ peer: JsonlPeer; client: AppServerClient }> {
  const peer = jsonlPeer();
  const connecting = AppServerClient.connect({ input: peer.toClient, output: peer.fromClient, log: silentLogger(), version: '1.2.3', approvals });
  const init = await peer.next();
  peer.send({ id: init.id, result: { userAgent: 'ua', codexHome: '/h', platformFamily: 'unix', platformOs: 'linux' } });
  const client = await connecting;
  expect(await peer.next()).toEqual({ method: 'initialized' });
  return { peer, client };
}

const turn = (id: string, status: string) => ({ id, rootTurnId: id, items: [], itemsView: 'summary', status, error: null, startedAt: null, completedAt: null, durationMs: 3 });
const agentItem = (id: string, text: string) => ({ type: 'agentMessage', id, text, moderation: null, phase: null, memoryCitation: null, delivery: null, questions: null });

describe('AppServerClient (scripted peer)', () => {
  it('sends initialize with clientInfo and the opt-out list, then initialized', async () => {
    const peer = jsonlPeer();
    const connecting = AppServerClient.connect({ input: peer.toClient, output: peer.fromClient, log: silentLogger(), version: '1.2.3', approvals: ACCEPT });
    const init = await peer.next();
    expect(init).toEqual({
      id: 1,
      method: 'initialize',
      params: {
        clientInfo: { name: 'codex-relay', title: null, version: '1.2.3' },
        capabilities: { experimentalApi: false, requestAttestation: false, optOutNotificationMethods: OPTED_OUT_NOTIFICATIONS },
      },
    });
    expect(OPTED_OUT_NOTIFICATIONS).not.toContain('item/agentMessage/delta');
    peer.send({ id: 1, result: { userAgent: 'ua', codexHome: '/h', platformFamily: 'unix', platformOs: 'linux' } });
    const client = await connecting;
    expect(client.info.codexHome).toBe('/h');
  });

  it('fails connect on a malformed initialize response and ends the output', async () => {
    const peer = jsonlPeer();
    const connecting = AppServerClient.connect({ input: peer.toClient, output: peer.fromClient, log: silentLogger(), version: '1', approvals: ACCEPT });
    await peer.next();
    const ended = new Promise((r) => peer.fromClient.once('end', r));
    peer.send({ id: 1, result: { nope: true } });
    await expect(connecting).rejects.toThrow(/initialize/);
    await ended;
  });

  it('answers an unknown server request with -32601, never a blind accept', async () => {
    const { peer } = await connected();
    peer.send({ id: 0, method: 'item/tool/call', params: { threadId: 't', turnId: 'u', callId: 'c', tool: 'x', arguments: {} } });
    expect(await peer.next()).toEqual({ id: 0, error: { code: -32601, message: 'codex-relay does not handle item/tool/call' } });
    peer.send({ id: 1, method: 'account/chatgptAuthTokens/refresh', params: {} });
    expect(await peer.next()).toMatchObject({ id: 1, error: { code: -32601 } });
  });

  it('answers approvals per policy and rejects malformed ones with -32602', async () => {
    const { peer } = await connected({ commands: 'decline', fileChanges: 'accept' });
    peer.send({ id: 0, method: 'item/commandExecution/requestApproval', params: { ...scoped, kind: 'command', environmentId: 'local' } });
    expect(await peer.next()).toEqual({ id: 0, result: { decision: 'decline' } });
    peer.send({ id: 1, method: 'item/fileChange/requestApproval', params: { ...scoped } });
    expect(await peer.next()).toEqual({ id: 1, result: { decision: 'accept' } });
    peer.send({ id: 2, method: 'item/commandExecution/requestApproval', params: { threadId: 't' } });
    expect(await peer.next()).toMatchObject({ id: 2, error: { code: -32602 } });
  });

  it('routes notifications that race ahead of the turn/start response into the turn', async () => {
    const { peer, client } = await connected();
    const starting = client.startTurn({ threadId: 't1', input: [{ type: 'text', text: 'hi', text_elements: [] }] });
    const req = await peer.next();
    expect(req).toMatchObject({ method: 'turn/start', params: { threadId: 't1' } });
    const usage = { totalTokens: 15, inputTokens: 10, cachedInputTokens: 0, cacheWriteInputTokens: 0, outputTokens: 5, reasoningOutputTokens: 0 };
    // Everything in one chunk, the response in the middle: the turn completes before startTurn returns.
    peer.writeRaw(
      [
        { method: 'turn/started', params: { threadId: 't1', turn: turn('T', 'inProgress') } },
        { method: 'item/started', params: { threadId: 't1', turnId: 'T', item: agentItem('m', ''), startedAtMs: 1 } },
        { id: req.id, result: { turn: turn('T', 'inProgress') } },
        { method: 'item/agentMessage/delta', params: { threadId: 't1', turnId: 'T', itemId: 'm', delta: 'Hel' } },
        { method: 'item/completed', params: { threadId: 'other', turnId: 'X', item: agentItem('x', 'not mine'), completedAtMs: 2 } },
        { method: 'item/completed', params: { threadId: 't1', turnId: 'OLD', item: agentItem('o', 'stale turn'), completedAtMs: 2 } },
        { method: 'item/completed', params: { threadId: 't1', turnId: 'T', item: { type: 'agentMessage', id: 'bad' }, completedAtMs: 2 } },
        { method: 'error', params: { threadId: 't1', turnId: 'T', willRetry: true, error: { message: 'Reconnecting... 1/5', codexErrorInfo: null, additionalDetails: null } } },
        { method: 'item/completed', params: { threadId: 't1', turnId: 'T', item: agentItem('m', 'Hello'), completedAtMs: 3 } },
        { method: 'thread/tokenUsage/updated', params: { threadId: 't1', turnId: 'T', tokenUsage: { total: usage, last: usage, modelContextWindow: null } } },
        { method: 'turn/completed', params: { threadId: 't1', turn: turn('T', 'completed') } },
      ]
        .map((m) => JSON.stringify(m))
        .join('\n') + '\n',
    );
    const handle = await starting;
    expect(handle.turnId).toBe('T');
    const events: TurnEvent[] = [];
    handle.onEvent((e) => events.push(e)); // subscribed late: early events are replayed
    const outcome = await handle.completed;
    expect(events.map((e) => e.kind)).toEqual(['itemStarted', 'agentDelta', 'retrying', 'itemCompleted', 'tokens']);
    expect(outcome.finalText).toBe('Hello');
    expect(outcome.items).toHaveLength(1);
    expect(outcome.usage).toEqual(usage);
    expect(outcome.turn.status).toBe('completed');
    expect(client.isTurnActive('t1')).toBe(false);
  });

  it('refuses a second startTurn on a thread with an active turn', async () => {
    const { peer, client } = await connected();
    const starting = client.startTurn({ threadId: 't1', input: [] });
    const req = await peer.next();
    peer.send({ id: req.id, result: { turn: turn('T', 'inProgress') } });
    await starting;
    expect(client.isTurnActive('t1')).toBe(true);
    await expect(client.startTurn({ threadId: 't1', input: [] })).rejects.toBeInstanceOf(TurnAlreadyActiveError);
  });

  it('forgets the turn when turn/start fails', async () => {
    const { peer, client } = await connected();
    const starting = client.startTurn({ threadId: 'gone', input: [] });
    const req = await peer.next();
    peer.send({ id: req.id, error: { code: -32600, message: 'thread not found: gone' } });
    await expect(starting).rejects.toMatchObject({ code: -32600 });
    expect(client.isTurnActive('gone')).toBe(false);
  });

  it('tracks thread status', async () => {
    const { peer, client } = await connected();
    peer.send({ method: 'thread/status/changed', params: { threadId: 't', status: { type: 'active', activeFlags: ['waitingOnApproval'] } } });
    peer.send({ method: 'thread/status/changed', params: { threadId: 't', status: { type: 'bogus' } } }); // invalid: skipped
    await new Promise((r) => setImmediate(r));
    expect(client.threadStatus('t')).toEqual({ type: 'active', activeFlags: ['waitingOnApproval'] });
  });
});
