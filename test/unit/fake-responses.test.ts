/** The fake Responses API itself: framing and scripting (codex-driven use is in the integration tests). */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { reply, startFakeResponses, type FakeResponses } from '../fakes/fake-responses.js';

let fake: FakeResponses | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const userInput = (text: string) => ({ input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text }] }] });

async function post(body: unknown): Promise<{ status: number; text: string; events: Array<{ type: string } & Record<string, unknown>> }> {
  const res = await fetch(`${fake?.baseUrl}/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text().catch(() => '');
  const events = text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { type: string });
  return { status: res.status, text, events };
}

describe('fake Responses API', () => {
  it('echoes the last user text by default and records the request', async () => {
    fake = await startFakeResponses();
    const { status, events } = await post(userInput('ping'));
    expect(status).toBe(200);
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.output_item.added',
      'response.output_text.delta',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(JSON.stringify(events[3])).toContain('echo: ping');
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/v1/responses', body: userInput('ping') });
  });

  it('answers a tool output with text, and plays queued replies in order before the handler', async () => {
    fake = await startFakeResponses();
    fake.script([reply.shellCall('echo hi'), reply.error(429, 'slow down', { 'retry-after': '1' })]);
    fake.script(() => reply.responseFailed('model broke'));
    const call = await post(userInput('x'));
    const item = call.events.find((e) => e.type === 'response.output_item.done')?.item as { name: string; arguments: string };
    expect(item.name).toBe('exec_command');
    expect(JSON.parse(item.arguments)).toEqual({ cmd: 'echo hi' });
    expect((await post(userInput('x'))).status).toBe(429);
    expect((await post(userInput('x'))).events.map((e) => e.type)).toEqual(['response.created', 'response.failed']);
    fake.script(() => undefined);
    const afterTool = await post({ input: [{ type: 'function_call_output', call_id: 'c', output: 'tool said hi' }] });
    expect(JSON.stringify(afterTool.events)).toContain('tool finished: tool said hi');
  });

  it('drops the connection after response.created', async () => {
    fake = await startFakeResponses();
    fake.script([reply.dropAfterCreated()]);
    const res = await fetch(`${fake.baseUrl}/responses`, { method: 'POST', body: '{}' });
    await expect(res.text()).rejects.toThrow();
  });

  it('answers WebSocket upgrade attempts with 426', async () => {
    fake = await startFakeResponses();
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${fake?.baseUrl}/responses`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(426);
  });

  it('waits for requests and closes while a reply hangs', async () => {
    fake = await startFakeResponses();
    fake.script([reply.hang()]);
    const res = await fetch(`${fake.baseUrl}/responses`, { method: 'POST', body: '{}' });
    expect(await fake.waitForRequests(1)).toHaveLength(1);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('response.created');
    await fake.close(); // does not wait for the hanging reply
    fake = undefined;
    await expect(reader.read()).rejects.toThrow();
  });
});
