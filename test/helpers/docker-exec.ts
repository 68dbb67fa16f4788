/**
 * Helpers for looking inside agent containers from tests: run a command (`docker exec`), scan the
 * container's whole filesystem as the engine sees it (`docker export`), and try a TCP connection
 * from inside. Real Docker through dockerode; no CLI needed.
 */
import type Dockerode from 'dockerode';
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { PassThrough } from 'node:stream';

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` in a running container and collects its output. */
export async function dockerExec(docker: Dockerode, containerId: string, cmd: string[], options: { user?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: options.user });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`docker exec ${cmd.join(' ')} took longer than ${options.timeoutMs ?? 60_000} ms`));
    }, options.timeoutMs ?? 60_000);
    stream.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.on('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const info = await exec.inspect();
  return { exitCode: info.ExitCode, stdout: Buffer.concat(chunks.out).toString('utf8'), stderr: Buffer.concat(chunks.err).toString('utf8') };
}

/** Whether a TCP connection to host:port from inside the container succeeds (bash /dev/tcp, 5 s limit). */
export async function canConnectFrom(docker: Dockerode, containerId: string, host: string, port: number): Promise<boolean> {
  const result = await dockerExec(docker, containerId, ['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`]);
  return result.exitCode === 0;
}

/**
 * Streams `docker export` (the container's complete root filesystem: image layers plus its own
 * writes; bind mounts are not included) and counts occurrences of each needle. Needles may span
 * chunk boundaries.
 */
export async function scanContainerExport(docker: Dockerode, containerId: string, needles: string[]): Promise<{ bytes: number; hits: Record<string, number> }> {
  const stream = (await docker.getContainer(containerId).export()) as NodeJS.ReadableStream;
  const hits: Record<string, number> = Object.fromEntries(needles.map((n) => [n, 0]));
  const keep = Math.max(...needles.map((n) => n.length)) - 1;
  let tail = Buffer.alloc(0);
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    const window = Buffer.concat([tail, chunk]);
    for (const needle of needles) {
      let at = window.indexOf(needle);
      while (at !== -1) {
        // A hit lying wholly inside the kept tail was already counted with the previous chunk.
        if (at + needle.length > tail.length) hits[needle]! += 1;
        at = window.indexOf(needle, at + 1);
      }
    }
    tail = window.subarray(Math.max(0, window.length - keep));
  }
  return { bytes, hits };
}

/**
 * The host's address on Docker's default bridge (docker0): what `host-gateway` in ExtraHosts resolves
 * to. The engine API leaves the default bridge's gateway out of IPAM, so it is read off the interface.
 */
export async function defaultBridgeAddress(docker: Dockerode): Promise<string> {
  const info = await docker.getNetwork('bridge').inspect();
  const fromIpam = info.IPAM?.Config?.find((c: { Gateway?: string }) => c.Gateway)?.Gateway as string | undefined;
  if (fromIpam) return fromIpam;
  const iface = (info.Options as Record<string, string> | undefined)?.['com.docker.network.bridge.name'] ?? 'docker0';
  // os.networkInterfaces() leaves out interfaces that are down, as docker0 is with no container on it.
  const address =
    networkInterfaces()[iface]?.find((a) => a.family === 'IPv4')?.address ??
    /inet (\d+\.\d+\.\d+\.\d+)/.exec(execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', iface], { encoding: 'utf8' }))?.[1];
  if (!address) throw new Error(`no IPv4 address on ${iface}`);
  return address;
}
