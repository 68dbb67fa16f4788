import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JsonRpcTransport, parseLine, RpcError, RpcTimeoutError, TransportClosedError } from '../../src/codex/transport.js';
import { silentLogger } from '../../src/logger.js';
import { jsonlPeer } from '../helpers/jsonl-peer.js';

function setup(requestTimeoutMs = 30_000) {
  const peer = jsonlPeer();
  const transport = new JsonRpcTransport({ input: peer.toClient, output: peer.fromClient, log: silentLogger(), requestTimeoutMs });
  return { peer, transport };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('parseLine', () => {
  it.each([
    ['{"id":1,"result":{"a":1}}', { kind: 'response', id: 1, result: { a: 1 } }],
    ['{"id":1,"result":null}', { kind: 'response', id: 1, result: null }],
    ['{"id":"x","error":{"code":-32600,"message":"bad"}}', { kind: 'errorResponse', id: 'x', error: { code: -32600, message: 'bad' } }],
    ['{"method":"turn/started","params":{"a":1},"emittedAtMs":5}', { kind: 'notification', method: 'turn/started', params: { a: 1 } }],
    ['{"method":"initialized"}', { kind: 'notification', method: 'initialized', params: undefined }],
    ['{"id":0,"method":"item/tool/call","params":{}}', { kind: 'serverRequest', id: 0, method: 'item/tool/call', params: {} }],
  ])('classifies %s', (line, expected) => {
    expect(parseLine(line)).toEqual(expected);
  });

  it.each(['not json', '[1,2]', '42', '{"id":1}', '{"id":{"x":1},"result":1}', '{"method":5}', '{"id":1,"error":{"message":"no code"}}', 'null'])(
    'rejects %s',
    (line) => {
      expect(parseLine(line)).toHaveProperty('invalid');
    },
  );
});

describe('JsonRpcTransport', () => {
  it('writes requests as single lines without a jsonrpc field and correlates responses', async () => {
    const { peer, transport } = setup();
    const a = transport.request('thread/start', { cwd: '/w' });
    const b = transport.request('thread/list', undefined);
    const reqA = await peer.next();
    const reqB = await peer.next();
    expect(reqA).toEqual({ id: 1, method: 'thread/start', params: { cwd: '/w' } });
    expect(reqB).toEqual({ id: 2, method: 'thread/list' });
    expect(peer.written[0]).not.toContain('jsonrpc');
    // answered out of order
    peer.send({ id: 2, result: { data: [] } });
    peer.send({ id: 1, result: { thread: { id: 't' } } });
    await expect(a).resolves.toEqual({ thread: { id: 't' } });
    await expect(b).resolves.toEqual({ data: [] });
  });

  it('reassembles lines split across chunks, including a split multi-byte character', async () => {
    const { peer, transport } = setup();
    const seen: unknown[] = [];
    transport.onNotification((method, params) => seen.push([method, params]));
    const line = Buffer.from('{"method":"warning","params":{"message":"héllo ✓"}}\n{"method":"b"}\n', 'utf8');
    const cut = line.indexOf(Buffer.from('✓')) + 1; // inside the 3-byte character
    peer.toClient.write(line.subarray(0, 10));
    peer.toClient.write(line.subarray(10, cut));
    peer.toClient.write(line.subarray(cut));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([
      ['warning', { message: 'héllo ✓' }],
      ['b', undefined],
    ]);
  });

  it('ignores garbage, blank and non-conforming lines and keeps working', async () => {
    const { peer, transport } = setup();
    const seen: string[] = [];
    transport.onNotification((method) => seen.push(method));
    const pending = transport.request('x', {});
    await peer.next();
    peer.writeRaw('garbage\n\n   \n{"id":99}\n{"broken json\r\n[1]\n{"method":"ok"}\r\n{"id":1,"result":"done"}\n');
    await expect(pending).resolves.toBe('done');
    expect(seen).toEqual(['ok']);
  });

  it('handles a final line without a trailing newline when the input ends', async () => {
    const { peer, transport } = setup();
    const seen: string[] = [];
    transport.onNotification((method) => seen.push(method));
    peer.toClient.end('{"method":"last"}');
    await transport.closed;
    expect(seen).toEqual(['last']);
  });

  it('rejects with RpcError carrying code, message and data', async () => {
    const { peer, transport } = setup();
    const pending = transport.request('turn/steer', {});
    await peer.next();
    peer.send({ id: 1, error: { code: -32600, message: 'no active turn to steer', data: { x: 1 } } });
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: -32600, message: 'no active turn to steer', data: { x: 1 } });
  });

  it('times out a request with RpcTimeoutError and ignores the late response', async () => {
    vi.useFakeTimers();
    const { peer, transport } = setup(1000);
    const slow = transport.request('slow', {});
    const custom = transport.request('custom', {}, { timeoutMs: 5000 });
    const slowResult = slow.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1001);
    const err = await slowResult;
    expect(err).toBeInstanceOf(RpcTimeoutError);
    expect(err).toMatchObject({ method: 'slow', timeoutMs: 1000 });
    peer.send({ id: 1, result: 'late' }); // ignored, no throw
    peer.send({ id: 2, result: 'in time' });
    await expect(custom).resolves.toBe('in time');
  });

  it('rejects all pending requests at once with TransportClosedError when the input ends', async () => {
    const { peer, transport } = setup();
    const a = transport.request('a', {});
    const b = transport.request('b', {});
    peer.toClient.end();
    await expect(a).rejects.toBeInstanceOf(TransportClosedError);
    await expect(b).rejects.toBeInstanceOf(TransportClosedError);
    await expect(transport.closed).resolves.toEqual({ reason: 'app-server output ended' });
    await expect(transport.request('c', {})).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('closes when the input errors', async () => {
    const { peer, transport } = setup();
    const a = transport.request('a', {});
    peer.toClient.destroy(new Error('boom'));
    await expect(a).rejects.toBeInstanceOf(TransportClosedError);
    expect((await transport.closed).reason).toContain('boom');
  });

  it('closes instead of crashing when writing to a dead peer fails', async () => {
    const peer = jsonlPeer();
    const broken = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const transport = new JsonRpcTransport({ input: peer.toClient, output: broken, log: silentLogger() });
    await expect(transport.request('a', {})).rejects.toBeInstanceOf(TransportClosedError);
    expect((await transport.closed).reason).toContain('EPIPE');
  });

  it('close() ends the output; new requests reject', async () => {
    const { peer, transport } = setup();
    const ended = new Promise((r) => peer.fromClient.once('end', r));
    transport.close();
    peer.fromClient.resume();
    await ended;
    await expect(transport.request('a', {})).rejects.toBeInstanceOf(TransportClosedError);
    transport.notify('ignored'); // no throw
  });

  it('delivers notifications to listeners until they unsubscribe; a throwing listener does not break others', async () => {
    const { peer, transport } = setup();
    const seen: string[] = [];
    transport.onNotification(() => {
      throw new Error('listener bug');
    });
    const off = transport.onNotification((method) => seen.push(method));
    peer.send({ method: 'one', params: {} });
    await new Promise((r) => setImmediate(r));
    off();
    peer.send({ method: 'two', params: {} });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['one']);
  });

  it('sends notifications without an id', async () => {
    const { peer, transport } = setup();
    transport.notify('initialized');
    transport.notify('x', { a: 1 });
    expect(await peer.next()).toEqual({ method: 'initialized' });
    expect(await peer.next()).toEqual({ method: 'x', params: { a: 1 } });
  });

  describe('server requests', () => {
    it('answers -32601 when no handler is set', async () => {
      const { peer } = setup();
      peer.send({ id: 0, method: 'item/tool/call', params: {} });
      expect(await peer.next()).toMatchObject({ id: 0, error: { code: -32601 } });
    });

    it("writes the handler's result, keeping the server's id (number or string)", async () => {
      const { peer, transport } = setup();
      transport.onServerRequest(async (method, params, id) => ({ echoed: { method, params, id } }));
      peer.send({ id: 7, method: 'm', params: { p: 1 } });
      expect(await peer.next()).toEqual({ id: 7, result: { echoed: { method: 'm', params: { p: 1 }, id: 7 } } });
      peer.send({ id: 's-1', method: 'n' });
      expect(await peer.next()).toMatchObject({ id: 's-1', result: { echoed: { method: 'n' } } });
    });

    it('answers undefined results with null', async () => {
      const { peer, transport } = setup();
      transport.onServerRequest(async () => undefined);
      peer.send({ id: 1, method: 'm' });
      expect(await peer.next()).toEqual({ id: 1, result: null });
    });

    it('answers an RpcError thrown by the handler with its code and message', async () => {
      const { peer, transport } = setup();
      transport.onServerRequest(async (method) => {
        throw new RpcError(-32601, `codex-relay does not handle ${method}`);
      });
      peer.send({ id: 3, method: 'item/tool/call', params: {} });
      expect(await peer.next()).toEqual({ id: 3, error: { code: -32601, message: 'codex-relay does not handle item/tool/call' } });
    });

    it('answers any other thrown error with -32603', async () => {
      const { peer, transport } = setup();
      transport.onServerRequest(async () => {
        throw new Error('oops');
      });
      peer.send({ id: 4, method: 'm' });
      expect(await peer.next()).toEqual({ id: 4, error: { code: -32603, message: 'oops' } });
    });

    it('does not mix server request ids with its own request ids', async () => {
      const { peer, transport } = setup();
      transport.onServerRequest(async () => 'answer');
      const mine = transport.request('mine', {});
      expect(await peer.next()).toMatchObject({ id: 1, method: 'mine' });
      peer.send({ id: 1, method: 'theirs' }); // same numeric id, but it is a server request
      expect(await peer.next()).toEqual({ id: 1, result: 'answer' });
      peer.send({ id: 1, result: 'for mine' });
      await expect(mine).resolves.toBe('for mine');
    });
  });
});
