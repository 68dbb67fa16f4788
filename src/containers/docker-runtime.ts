/**
 * ContainerRuntime on Docker (dockerode; local socket or DOCKER_HOST). One container per group runs
 * `codex app-server` from the agent image; the relay speaks JSON-RPC lines over the attached stdio.
 *
 * Invariants:
 * - Every container carries the labels codex-relay.app / .instance / .group, so a restarted relay finds
 *   exactly its own containers (listManaged) and nobody else's.
 * - Mounts are the group's workspace (/workspace) and codex home (/home/codex/.codex), read-write, and
 *   nothing else but the credential gateway's read-only files (OneCLI CA and stubs, `extraMounts`);
 *   all capabilities dropped, no-new-privileges, an init process, memory/cpu/pids limits.
 * - Attach happens BEFORE start, so no byte of the agent's output can be lost.
 * - StdinOnce: when the relay's end of stdin closes (stop, or the relay dying), the app-server sees EOF
 *   and exits on its own; stop() only escalates to `docker stop`/kill when that does not happen.
 * - `exited` never rejects; after an exit the container is removed (stderr already went to the log), so
 *   a crashed agent leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, realpath } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Logger } from '../logger.js';
import {
  ContainerStartError,
  type AgentContainerSpec,
  type AgentExit,
  type AgentMount,
  type ContainerRuntime,
  type ManagedContainer,
  type RunningAgent,
} from './runtime.js';

export const LABEL_APP = 'codex-relay.app';
export const LABEL_APP_VALUE = 'codex-relay';
export const LABEL_INSTANCE = 'codex-relay.instance';
export const LABEL_GROUP = 'codex-relay.group';
/** Where the image expects its mounts; must match the Dockerfile. */
export const AGENT_WORKSPACE = '/workspace';
export const AGENT_CODEX_HOME = '/home/codex/.codex';
/** The image's unprivileged user (Dockerfile: USER 10001:10001). */
export const AGENT_UID = 10001;

const STDIN_EOF_GRACE_MS = 2_000;
const CONTAINER_NAME_PART = /^[a-z0-9][a-z0-9_.-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface DockerRuntimeOptions {
  docker: Dockerode;
  image: string;
  /** Distinguishes relays sharing one Docker engine; only this instance's containers are listed. */
  instanceId: string;
  log: Logger;
  /** Grace period for `docker stop` before SIGKILL (default 5 s). */
  stopTimeoutSec?: number;
  /** Owner given to the mounted host dirs (default the image's uid 10001). */
  agentUid?: number;
}

export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Dockerode;
  private readonly log: Logger;
  private chownWarned = false;

  constructor(private readonly options: DockerRuntimeOptions) {
    this.docker = options.docker;
    this.log = options.log;
  }

  async start(spec: AgentContainerSpec): Promise<RunningAgent> {
    const { docker, image, instanceId } = this.options;
    if (!CONTAINER_NAME_PART.test(spec.groupSlug)) {
      throw new ContainerStartError(`invalid group slug ${JSON.stringify(spec.groupSlug)}`);
    }
    const badEnv = Object.keys(spec.env).find((name) => !ENV_NAME.test(name));
    if (badEnv !== undefined) throw new ContainerStartError(`invalid environment variable name ${JSON.stringify(badEnv)}`);
    const extraMounts = checkExtraMounts(spec.extraMounts ?? []);

    const workspaceDir = await this.prepareMountDir(spec.workspaceDir);
    const codexHomeDir = await this.prepareMountDir(spec.codexHomeDir);
    await this.chownForAgent([workspaceDir, codexHomeDir]);

    const name = `codex-relay-${spec.groupSlug}-${randomBytes(3).toString('hex')}`;
    const endpoint = describeDockerEndpoint(docker);
    let container: Dockerode.Container;
    try {
      container = await docker.createContainer({
        name,
        Image: image,
        Labels: { [LABEL_APP]: LABEL_APP_VALUE, [LABEL_INSTANCE]: instanceId, [LABEL_GROUP]: spec.groupSlug },
        Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
        OpenStdin: true,
        StdinOnce: true,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        HostConfig: {
          Mounts: [
            { Type: 'bind', Source: workspaceDir, Target: AGENT_WORKSPACE, ReadOnly: spec.workspaceReadOnly === true },
            { Type: 'bind', Source: codexHomeDir, Target: AGENT_CODEX_HOME, ReadOnly: false },
            ...extraMounts,
          ],
          ...(spec.extraHosts?.length ? { ExtraHosts: spec.extraHosts } : {}),
          Memory: Math.round(spec.limits.memoryMb * 1024 * 1024),
          // Same as Memory: no swap on top of the limit, so "OOM killed" means what it says.
          MemorySwap: Math.round(spec.limits.memoryMb * 1024 * 1024),
          NanoCpus: Math.round(spec.limits.cpus * 1e9),
          PidsLimit: spec.limits.pids,
          Init: true,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          ...(spec.network ? { NetworkMode: spec.network } : {}),
        },
      });
    } catch (err) {
      throw mapDockerError(err, { phase: 'create', image, endpoint });
    }

    const log = this.log.child({ group: spec.groupSlug, containerId: container.id.slice(0, 12) });
    let socket: Duplex;
    try {
      // Attach before start: output written before an attach would otherwise be lost.
      socket = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    } catch (err) {
      await removeQuietly(container, log);
      throw mapDockerError(err, { phase: 'attach', image, endpoint });
    }
    const stdout = new PassThrough();
    docker.modem.demuxStream(socket, stdout, stderrLogger(log));
    socket.on('error', (err: Error) => log.debug({ err: err.message }, 'agent stdio stream error'));
    socket.on('end', () => stdout.end());
    socket.on('close', () => stdout.end());

    try {
      await container.start();
    } catch (err) {
      socket.destroy();
      await removeQuietly(container, log);
      throw mapDockerError(err, { phase: 'start', image, endpoint });
    }
    log.info({ name, image }, 'agent container started');
    return new DockerAgent(container, spec, socket, stdout, log, this.options.stopTimeoutSec ?? 5);
  }

  async listManaged(): Promise<ManagedContainer[]> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_APP}=${LABEL_APP_VALUE}`, `${LABEL_INSTANCE}=${this.options.instanceId}`] },
    });
    return list.map((c) => ({ containerId: c.Id, groupSlug: c.Labels[LABEL_GROUP] ?? '', running: c.State === 'running' }));
  }

  async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
    } catch (err) {
      if (isGone(err)) return;
      throw err;
    }
  }

  /** Absolute, existing, symlink-free path for a bind mount. */
  private async prepareMountDir(dir: string): Promise<string> {
    try {
      await mkdir(dir, { recursive: true });
      return await realpath(isAbsolute(dir) ? dir : resolve(dir));
    } catch (err) {
      throw new ContainerStartError(`cannot prepare ${dir} for the agent: ${errorText(err)}`, { cause: err });
    }
  }

  /**
   * The host creates group dirs as root; the agent runs as uid 10001 and must write them. `chown -R -h`
   * never follows symlinks (the workspace is agent-controlled: a link to /etc must not hand /etc over).
   * Never throws: without the right to chown (relay not root) it logs a warning once and goes on.
   */
  private async chownForAgent(dirs: string[]): Promise<void> {
    const uid = this.options.agentUid ?? AGENT_UID;
    if (process.getuid?.() === uid) return;
    try {
      await runQuiet('chown', ['-R', '-h', `${uid}:${uid}`, '--', ...dirs]);
    } catch (err) {
      if (this.chownWarned) return;
      this.chownWarned = true;
      this.log.warn(
        { dirs, uid, err: errorText(err) },
        'cannot hand the group dirs to the agent user; the agent may fail to write its workspace or ~/.codex (run the relay as root, or make the dirs writable for that uid)',
      );
    }
  }
}

/** A started container. `exited` is wired at construction so no exit is missed. */
class DockerAgent implements RunningAgent {
  readonly containerId: string;
  readonly groupSlug: string;
  readonly exited: Promise<AgentExit>;
  private stopReason: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly container: Dockerode.Container,
    private readonly spec: AgentContainerSpec,
    private readonly socket: Duplex,
    readonly stdout: Readable,
    private readonly log: Logger,
    private readonly stopTimeoutSec: number,
  ) {
    this.containerId = container.id;
    this.groupSlug = spec.groupSlug;
    this.exited = this.watchExit();
  }

  get stdin(): Duplex {
    return this.socket;
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    this.stopReason = reason;
    try {
      this.socket.end();
      let exit = await withTimeout(this.exited, STDIN_EOF_GRACE_MS);
      if (!exit) {
        this.log.info({ reason }, 'agent did not exit on stdin EOF; stopping the container');
        await this.container.stop({ t: this.stopTimeoutSec }).catch((err: unknown) => {
          if (statusCodeOf(err) !== 304 && !isGone(err)) this.log.warn({ err: errorText(err) }, 'docker stop failed');
        });
        exit = await withTimeout(this.exited, (this.stopTimeoutSec + 5) * 1000);
        if (!exit) {
          await this.container.kill().catch(() => undefined);
          await withTimeout(this.exited, 5_000);
        }
      }
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'stopping the agent failed');
    } finally {
      this.socket.destroy();
      await removeQuietly(this.container, this.log);
    }
  }

  /** Waits for the container to stop and explains why. Never rejects. */
  private async watchExit(): Promise<AgentExit> {
    let exit: AgentExit;
    try {
      const result = (await this.container.wait()) as { StatusCode?: number };
      const exitCode = typeof result.StatusCode === 'number' ? result.StatusCode : null;
      let oomKilled = false;
      try {
        oomKilled = (await this.container.inspect()).State.OOMKilled === true;
      } catch {
        // Removed in the meantime: the exit code alone has to do.
      }
      exit = { exitCode, reason: describeExit({ exitCode, oomKilled, stopReason: this.stopReason, memoryMb: this.spec.limits.memoryMb }) };
    } catch (err) {
      exit = {
        exitCode: null,
        reason: describeExit({ exitCode: null, oomKilled: false, stopReason: this.stopReason, error: isGone(err) ? 'container removed' : errorText(err) }),
      };
    }
    this.log.info({ exitCode: exit.exitCode, reason: exit.reason }, 'agent container exited');
    if (!this.stopping) void removeQuietly(this.container, this.log);
    return exit;
  }
}

export interface ExitFacts {
  exitCode: number | null;
  oomKilled: boolean;
  /** Set when the relay asked the container to stop. */
  stopReason?: string;
  memoryMb?: number;
  /** Why the exit code is unknown. */
  error?: string;
}

/** Plain-words reason for an agent exit. Pure; table-tested. */
export function describeExit(facts: ExitFacts): string {
  if (facts.oomKilled) return `OOM killed${facts.memoryMb ? ` (memory limit ${facts.memoryMb} MB)` : ''}`;
  if (facts.stopReason !== undefined) {
    const code = facts.exitCode === null ? '' : `, exit code ${facts.exitCode}`;
    return `stopped by relay: ${facts.stopReason}${code}`;
  }
  if (facts.exitCode === null) return `lost track of the container${facts.error ? `: ${facts.error}` : ''}`;
  const code = facts.exitCode;
  if (code === 137) return 'exited with code 137 (killed)';
  if (code === 143) return 'exited with code 143 (terminated)';
  if (code > 128 && code < 128 + 65) {
    const signal = Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0];
    if (signal) return `exited with code ${code} (${signal})`;
  }
  return `exited with code ${code}`;
}

/**
 * Creates the relay's user-defined bridge network when absent and returns its gateway (the address
 * containers reach the host on). Throws when an existing network's `internal` flag contradicts the
 * request: silently giving agents egress they were meant not to have is worse than failing.
 */
export async function ensureNetwork(
  docker: Dockerode,
  name: string,
  options: { internal?: boolean } = {},
): Promise<{ name: string; gateway: string }> {
  let info: Dockerode.NetworkInspectInfo | undefined = await inspectNetwork(docker, name);
  if (!info) {
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: options.internal ?? false,
        CheckDuplicate: true,
        Labels: { [LABEL_APP]: LABEL_APP_VALUE },
      });
    } catch (err) {
      // 409: created concurrently by another relay process; use theirs.
      if (statusCodeOf(err) !== 409) throw mapDockerError(err, { phase: 'network', endpoint: describeDockerEndpoint(docker) });
    }
    info = await inspectNetwork(docker, name);
    if (!info) throw new ContainerStartError(`Docker network ${name} vanished right after it was created`);
  }
  if (options.internal !== undefined && info.Internal !== options.internal) {
    throw new ContainerStartError(
      `Docker network ${name} exists with internal=${info.Internal} but internal=${options.internal} was asked for; remove it (docker network rm ${name}) and restart`,
    );
  }
  const gateway = info.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (!gateway) throw new ContainerStartError(`Docker network ${name} has no gateway address (driver ${info.Driver})`);
  return { name: info.Name, gateway: gateway.replace(/\/\d+$/, '') };
}

async function inspectNetwork(docker: Dockerode, name: string): Promise<Dockerode.NetworkInspectInfo | undefined> {
  try {
    return (await docker.getNetwork(name).inspect()) as Dockerode.NetworkInspectInfo;
  } catch (err) {
    if (statusCodeOf(err) === 404) return undefined;
    throw mapDockerError(err, { phase: 'network', endpoint: describeDockerEndpoint(docker) });
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EPERM', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ECONNRESET', 'EPIPE']);

/** The one place dockerode errors become user-facing ContainerStartErrors. */
export function mapDockerError(
  err: unknown,
  ctx: { phase: 'create' | 'attach' | 'start' | 'network'; image?: string; endpoint: string },
): ContainerStartError {
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const status = statusCodeOf(err);
  if (status === undefined && code && UNREACHABLE_CODES.has(code)) {
    const hint = code === 'EACCES' ? 'permission denied: run the relay as root or add its user to the docker group' : 'start dockerd or set DOCKER_HOST';
    return new ContainerStartError(`Docker is not reachable at ${ctx.endpoint} (${code}); ${hint}`, { cause: err });
  }
  if (ctx.phase === 'create' && status === 404) {
    return new ContainerStartError(`agent image ${ctx.image} not found; run npm run image:build`, { cause: err });
  }
  const what = ctx.phase === 'network' ? 'prepare the agent network' : `${ctx.phase} the agent container`;
  return new ContainerStartError(`Docker could not ${what}: ${dockerMessage(err)}`, { cause: err });
}

/** "unix:///var/run/docker.sock" or "tcp://host:2375", for error messages. */
export function describeDockerEndpoint(docker: Dockerode): string {
  const modem = docker.modem as { socketPath?: unknown; host?: string; port?: number | string; protocol?: string };
  if (typeof modem.socketPath === 'string') return `unix://${modem.socketPath}`;
  if (modem.host) return `${modem.protocol === 'https' ? 'https' : 'tcp'}://${modem.host}${modem.port ? `:${modem.port}` : ''}`;
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

/** Extra mounts as Docker mount specs; refuses relative paths and anything over the agent's own mounts. */
function checkExtraMounts(mounts: AgentMount[]): Dockerode.MountSettings[] {
  return mounts.map((m) => {
    if (!isAbsolute(m.source) || !isAbsolute(m.target)) throw new ContainerStartError(`extra mount paths must be absolute: ${m.source} -> ${m.target}`);
    const target = resolve(m.target);
    for (const own of [AGENT_WORKSPACE, AGENT_CODEX_HOME]) {
      if (target === own || target.startsWith(`${own}/`) || own.startsWith(`${target}/`)) {
        throw new ContainerStartError(`extra mount ${m.target} would cover the agent's ${own}`);
      }
    }
    return { Type: 'bind', Source: m.source, Target: target, ReadOnly: m.readOnly !== false };
  });
}

/** A Writable that logs the agent's stderr (codex tracing lines) at debug, one entry per line. */
function stderrLogger(log: Logger): Writable {
  let pending = '';
  const emit = (line: string) => {
    // eslint-disable-next-line no-control-regex
    const text = line.replace(/\x1b\[[0-9;]*m/g, '').trimEnd();
    if (text) log.debug({ line: text.slice(0, 4000) }, 'agent stderr');
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (pending.length > 16_000) {
        emit(pending);
        pending = '';
      }
      for (const line of lines) emit(line);
      callback();
    },
    final(callback) {
      if (pending) emit(pending);
      callback();
    },
  });
}

async function removeQuietly(container: Dockerode.Container, log: Logger): Promise<void> {
  try {
    await container.remove({ force: true });
  } catch (err) {
    if (!isGone(err)) log.warn({ err: errorText(err) }, 'removing the agent container failed');
  }
}

function runQuiet(command: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${command} exited with ${code}: ${stderr.trim().split('\n').slice(0, 2).join(' | ')}`));
    });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolvePromise) => {
    timer = setTimeout(() => resolvePromise(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function statusCodeOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number'
    ? err.statusCode
    : undefined;
}

/** 404: no such container; 409 on remove: removal already in progress. */
function isGone(err: unknown): boolean {
  const status = statusCodeOf(err);
  return status === 404 || status === 409;
}

function dockerMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'json' in err) {
    const json = (err as { json?: unknown }).json;
    if (typeof json === 'object' && json !== null && 'message' in json && typeof json.message === 'string') return json.message;
  }
  return errorText(err);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
