/**
 * The session layer against the real pinned codex binary on the host, with the model replaced by
 * the fake Responses API on 127.0.0.1. Each test gets its own fake, CODEX_HOME and workspace;
 * every app-server is killed in afterEach.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppServerClient, type ApprovalPolicy, type TurnEvent, type TurnOutcome } from '../../src/codex/client.js';
import type { ThreadStartParams } from '../../src/codex/generated/v2/ThreadStartParams.js';
import { TransportClosedError } from '../../src/codex/transport.js';
import { silentLogger } from '../../src/logger.js';
import { inputItems, messageTexts, reply, startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';
import { cleanupCodex, makeCodexHome, makeTempDir, spawnHostCodex } from '../helpers/codex-home.js';

const ACCEPT_ALL: ApprovalPolicy = { commands: 'accept', fileChanges: 'accept' };
const fakes: FakeResponses[] = [];

afterEach(async () => {
  await cleanupCodex();
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function setup(opts: { approvals?: ApprovalPolicy; codexHome?: string; fake?: FakeResponses; workspace?: string } = {}) {
  const fake = opts.fake ?? (await startFakeResponses());
  if (!opts.fake) fakes.push(fake);
  const codexHome = opts.codexHome ?? makeCodexHome({ baseUrl: fake.baseUrl });
  const workspace = opts.workspace ?? makeTempDir('workspace-');
  const child = spawnHostCodex({ codexHome, cwd: workspace });
  const client = await AppServerClient.connect({
    input: child.stdout,
    output: child.stdin,
    log: silentLogger(),
    version: '0.0.0-test',
    approvals: opts.approvals ?? ACCEPT_ALL,
  });
  return { fake, codexHome, workspace, child, client };
}

async function startThread(client: AppServerClient, params: ThreadStartParams): Promise<string> {
  const started = await client.startThread(params);
  return started.thread.id;
}

function textInput(text: string) {
  return [{ type: 'text' as const, text, text_elements: [] }];
}

async function runTurn(client: AppServerClient, threadId: string, text: string, events: TurnEvent[] = []): Promise<TurnOutcome> {
  const handle = await client.startTurn({ threadId, input: textInput(text) });
  handle.onEvent((e) => events.push(e));
  return handle.completed;
}

function commandItems(outcome: TurnOutcome) {
  return outcome.items.flatMap((i) => (i.type === 'commandExecution' ? [i] : []));
}

describe('AppServerClient against codex app-server', () => {
  it('performs the handshake', async () => {
    const { client, codexHome } = await setup();
    expect(client.info.userAgent).toContain('codex-relay');
    expect(client.info.codexHome).toBe(codexHome);
  });

  it('runs a plain turn: final text, usage, deltas, status completed', async () => {
    const { client, workspace, fake } = await setup();
    const threadId = await startThread(client, { cwd: workspace });
    fake.script([reply.text('Hello from mock model', { deltas: ['Hello', ' from mock model'] })]);

    const events: TurnEvent[] = [];
    const outcome = await runTurn(client, threadId, 'hi there', events);

    expect(outcome.turn.status).toBe('completed');
    expect(outcome.turn.error).toBeNull();
    expect(outcome.finalText).toBe('Hello from mock model');
    expect(outcome.usage).toMatchObject({ inputTokens: 10, outputTokens: 5, totalTokens: 15 });
    expect(outcome.items.map((i) => i.type)).toEqual(['userMessage', 'agentMessage']);
    expect(events.filter((e) => e.kind === 'agentDelta').map((e) => (e.kind === 'agentDelta' ? e.delta : ''))).toEqual(['Hello', ' from mock model']);
    expect(outcome.completedAtMs).toBeGreaterThanOrEqual(outcome.startedAtMs);
    expect(client.isTurnActive(threadId)).toBe(false);
    expect(messageTexts(fake.requests.at(-1)?.body, 'user').at(-1)).toBe('hi there');

    // Timing of later turns on a warm thread (the first turn includes thread warm-up).
    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const next = await runTurn(client, threadId, `again ${i}`);
      timings.push(performance.now() - t0);
      expect(next.finalText).toBe(`echo: again ${i}`);
    }
    timings.sort((a, b) => a - b);
    console.info(
      `plain turn timings: first ${outcome.completedAtMs - outcome.startedAtMs} ms; next 5 startTurn→completed median ${timings[2]?.toFixed(1)} ms, max ${timings[4]?.toFixed(1)} ms`,
    );
  });

  it('runs a tool-using turn: shell call output goes back to the model', async () => {
    const { client, workspace, fake } = await setup();
    const threadId = await startThread(client, { cwd: workspace, approvalPolicy: 'never', sandbox: 'danger-full-access' });
    fake.script([reply.shellCall('echo hello-from-tool')]);

    const outcome = await runTurn(client, threadId, 'run a tool');

    expect(outcome.turn.status).toBe('completed');
    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(2);
    const last = inputItems(posts[1]?.body).at(-1);
    expect(last?.type).toBe('function_call_output');
    expect(JSON.stringify(last?.output)).toContain('hello-from-tool');
    const commands = commandItems(outcome);
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatchObject({ status: 'completed', exitCode: 0 });
    expect(commands[0]?.aggregatedOutput).toContain('hello-from-tool');
    expect(outcome.finalText).toContain('tool finished');
    // Two model requests of 15 tokens each.
    expect(outcome.usage?.totalTokens).toBe(30);
  });

  describe('approvals by policy (untrusted + workspace-write asks for every command)', () => {
    const threadParams = (cwd: string): ThreadStartParams => ({ cwd, approvalPolicy: 'untrusted', sandbox: 'workspace-write' });

    it('declines: the command item is declined and the command does not run', async () => {
      const { client, workspace, fake } = await setup({ approvals: { commands: 'decline', fileChanges: 'decline' } });
      const threadId = await startThread(client, threadParams(workspace));
      fake.script([reply.shellCall('touch declined-marker')]);

      const outcome = await runTurn(client, threadId, 'make a file');

      expect(outcome.turn.status).toBe('completed');
      expect(commandItems(outcome).map((c) => c.status)).toEqual(['declined']);
      expect(existsSync(join(workspace, 'declined-marker'))).toBe(false);
      const last = inputItems(fake.requests.filter((r) => r.method === 'POST')[1]?.body).at(-1);
      expect(JSON.stringify(last?.output)).toMatch(/rejected/i);
    });

    it('accepts: the command runs', async () => {
      const { client, workspace, fake } = await setup({ approvals: { commands: 'accept', fileChanges: 'decline' } });
      const threadId = await startThread(client, threadParams(workspace));
      fake.script([reply.shellCall('touch accepted-marker && echo made-it')]);

      const outcome = await runTurn(client, threadId, 'make a file');

      expect(outcome.turn.status).toBe('completed');
      expect(commandItems(outcome)).toMatchObject([{ status: 'completed', exitCode: 0 }]);
      expect(existsSync(join(workspace, 'accepted-marker'))).toBe(true);
    });
  });

  it('resumes a thread after an app-server restart with the same CODEX_HOME', async () => {
    const first = await setup();
    const threadId = await startThread(first.client, { cwd: first.workspace });
    first.fake.script([reply.text('reply #1 (banana)')]);
    const turn1 = await runTurn(first.client, threadId, 'first message: remember APPLE');
    expect(turn1.finalText).toBe('reply #1 (banana)');
    first.child.kill('SIGKILL');
    await first.client.closed;

    const second = await setup({ fake: first.fake, codexHome: first.codexHome, workspace: first.workspace });
    const resumed = await second.client.resumeThread({ threadId });
    expect(resumed.thread.id).toBe(threadId);
    const turn2 = await runTurn(second.client, threadId, 'second message: what fruit?');

    expect(turn2.turn.status).toBe('completed');
    const body = first.fake.requests.at(-1)?.body;
    expect(messageTexts(body, 'user')).toEqual(expect.arrayContaining(['first message: remember APPLE', 'second message: what fruit?']));
    expect(messageTexts(body, 'assistant')).toContain('reply #1 (banana)');
  });

  it('steers input into the running turn: one completion, both user messages sent', async () => {
    const { client, workspace, fake } = await setup();
    const threadId = await startThread(client, { cwd: workspace });
    fake.script([reply.hang()]);

    const handle = await client.startTurn({ threadId, input: textInput('long task') });
    await fake.waitForRequests(1);
    const steered = await client.steerTurn({ threadId, expectedTurnId: handle.turnId, input: textInput('steer now') });
    expect(steered.turnId).toBe(handle.turnId);
    const outcome = await handle.completed;

    expect(outcome.turn.status).toBe('completed');
    expect(outcome.turn.id).toBe(handle.turnId);
    expect(outcome.finalText).toBe('echo: steer now');
    const users = outcome.items.filter((i) => i.type === 'userMessage');
    expect(users).toHaveLength(2);
    const last = fake.requests.filter((r) => r.method === 'POST').at(-1)?.body;
    expect(messageTexts(last, 'user').slice(-2)).toEqual(['long task', 'steer now']);
    expect(client.isTurnActive(threadId)).toBe(false);
  });

  it('interrupts a hanging turn: status interrupted', async () => {
    const { client, workspace, fake } = await setup();
    const threadId = await startThread(client, { cwd: workspace });
    fake.script([reply.hang()]);

    const handle = await client.startTurn({ threadId, input: textInput('never ends') });
    await fake.waitForRequests(1);
    expect(client.isTurnActive(threadId)).toBe(true);
    await client.interruptTurn({ threadId, turnId: handle.turnId });
    const outcome = await handle.completed;

    expect(outcome.turn.status).toBe('interrupted');
    expect(outcome.finalText).toBe('');
    expect(client.isTurnActive(threadId)).toBe(false);
  });

  it('rejects completed with TransportClosedError when the app-server dies mid-turn', async () => {
    const { client, workspace, fake, child } = await setup();
    const threadId = await startThread(client, { cwd: workspace });
    fake.script([reply.hang()]);

    const handle = await client.startTurn({ threadId, input: textInput('doomed') });
    await fake.waitForRequests(1);
    child.kill('SIGKILL');

    await expect(handle.completed).rejects.toBeInstanceOf(TransportClosedError);
    expect(client.isTurnActive(threadId)).toBe(false);
    await expect(client.startThread({ cwd: workspace })).rejects.toBeInstanceOf(TransportClosedError);
  });

  it.each([
    ['response.failed', reply.responseFailed('the model fell over')],
    ['a dropped stream', reply.dropAfterCreated()],
  ])('reports %s as a failed turn', async (_name, r) => {
    const { client, workspace, fake } = await setup();
    const threadId = await startThread(client, { cwd: workspace });
    fake.script(() => r);

    const outcome = await runTurn(client, threadId, 'this will fail too');

    expect(outcome.turn.status).toBe('failed');
    expect(outcome.turn.error?.message).toBeTruthy();
  });

  it('reports a model HTTP 500 as a failed turn with an error message', async () => {
    const { client, workspace, fake } = await setup();
    const threadId = await startThread(client, { cwd: workspace });
    fake.script(() => reply.error(500));

    const outcome = await runTurn(client, threadId, 'this will fail');

    expect(outcome.turn.status).toBe('failed');
    expect(outcome.turn.error?.message).toBeTruthy();
    expect(outcome.finalText).toBe('');
  });
});
