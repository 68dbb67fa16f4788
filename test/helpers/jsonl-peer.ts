/**
 * The other end of a JsonRpcTransport for unit tests: two PassThrough streams, raw writes toward
 * the transport and a queue of the JSON lines it wrote. Stands in for the app-server's stdio only
 * at the framing level; behaviour of the real server is covered by the integration tests.
 */
import { PassThrough } from 'node:stream';

export interface JsonlPeer {
  /** Give this to the transport as `input`. */
  toClient: PassThrough;
  /** Give this to the transport as `output`. */
  fromClient: PassThrough;
  /** Writes raw text (no newline added). */
  writeRaw(text: string): void;
  /** Writes one JSON line. */
  send(message: unknown): void;
  /** The next line the client wrote, parsed. Rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Every line the client wrote so far, raw. */
  written: string[];
}

export function jsonlPeer(): JsonlPeer {
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  const written: string[] = [];
  const queue: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  let buffer = '';
  fromClient.setEncoding('utf8');
  fromClient.on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      written.push(line);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else queue.push(line);
      nl = buffer.indexOf('\n');
    }
  });
  return {
    toClient,
    fromClient,
    written,
    writeRaw: (text) => void toClient.write(text),
    send: (message) => void toClient.write(`${JSON.stringify(message)}\n`),
    next(timeoutMs = 2000) {
      const ready = queue.shift();
      if (ready !== undefined) return Promise.resolve(JSON.parse(ready) as Record<string, unknown>);
      return new Promise((resolve, reject) => {
        const waiter = (line: string): void => {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error('peer: no line from client in time'));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
  };
}
