/**
 * DockerRuntime against the real engine and the real agent image (built on first use): codex
 * app-server answers `initialize` over the attached stdio, runs as uid 10001 with exactly the two
 * mounts, the labels and the limits asked for, and every way of ending it resolves `exited` and leaves
 * no container behind.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AGENT_CODEX_HOME,
  AGENT_WORKSPACE,
  describeExit,
  DockerRuntime,
  ensureNetwork,
  LABEL_APP,
  LABEL_GROUP,
  LABEL_INSTANCE,
} from '../../src/containers/docker-runtime.js';
import { ContainerStartError, type AgentContainerSpec, type RunningAgent } from '../../src/containers/runtime.js';
import { silentLogger } from '../../src/logger.js';
import { agentImage, describeDocker, testDocker } from '../helpers/docker.js';

describe('describeExit', () => {
  it.each([
    [{ exitCode: 0, oomKilled: false }, 'exited with code 0'],
    [{ exitCode: 1, oomKilled: false }, 'exited with code 1'],
    [{ exitCode: 137, oomKilled: false }, 'exited with code 137 (killed)'],
    [{ exitCode: 143, oomKilled: false }, 'exited with code 143 (terminated)'],
    [{ exitCode: 139, oomKilled: false }, 'exited with code 139 (SIGSEGV)'],
    [{ exitCode: 137, oomKilled: true, memoryMb: 512 }, 'OOM killed (memory limit 512 MB)'],
    [{ exitCode: 0, oomKilled: false, stopReason: 'idle' }, 'stopped by relay: idle, exit code 0'],
    [{ exitCode: null, oomKilled: false, error: 'container removed' }, 'lost track of the container: container removed'],
  ])('%j → %s', (facts, reason) => {
    expect(describeExit(facts)).toBe(reason);
  });
});

/** Collects newline-terminated lines from a stream; `next` waits for one matching `match`. */
function lineReader(stream: Readable) {
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    async next(match: (line: string) => boolean, timeoutMs = 30_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = lines.findIndex(match);
        if (index >= 0) return lines.splice(index, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching line within ${timeoutMs} ms; saw: ${lines.join('\n').slice(0, 2000)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}

/** `docker exec` as the container's user; returns exit code and stdout. */
async function execIn(docker: Dockerode, containerId: string, cmd: string[]): Promise<{ code: number | null; out: string }> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  err.resume();
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
  });
  const info = await exec.inspect();
  return { code: info.ExitCode, out: text.trim() };
}

describeDocker(
  'DockerRuntime (real Docker, real codex)',
  () => {
    const docker = testDocker();
    const instanceId = `test-${randomBytes(4).toString('hex')}`;
    const agents: RunningAgent[] = [];
    const networks: string[] = [];
    let runtime: DockerRuntime;
    let tmp: string;

    const specFor = (slug: string, extra: Partial<AgentContainerSpec> = {}): AgentContainerSpec => {
      const root = join(tmp, slug);
      return {
        groupSlug: slug,
        workspaceDir: join(root, 'workspace'),
        codexHomeDir: join(root, 'codex-home'),
        limits: { memoryMb: 512, cpus: 1.5, pids: 256 },
        env: { CODEX_RELAY_TEST: 'stub-value' },
        ...extra,
      };
    };
    const startAgent = async (spec: AgentContainerSpec): Promise<RunningAgent> => {
      const agent = await runtime.start(spec);
      agents.push(agent);
      return agent;
    };

    beforeAll(() => {
      tmp = mkdtempSync(join(tmpdir(), 'codex-relay-docker-'));
      runtime = new DockerRuntime({ docker, image: agentImage(), instanceId, log: silentLogger(), stopTimeoutSec: 2 });
    });

    afterAll(async () => {
      await Promise.all(agents.map((agent) => agent.stop('test cleanup')));
      for (const leftover of await runtime.listManaged().catch(() => [])) await runtime.remove(leftover.containerId);
      for (const name of networks) await docker.getNetwork(name).remove().catch(() => undefined);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('runs codex app-server as non-root with only the two mounts, the labels and the limits', async () => {
      const spec = specFor('throwaway-a');
      // What the host prepares as root: a config file, and a link an agent could have planted earlier.
      mkdirSync(spec.codexHomeDir, { recursive: true });
      mkdirSync(spec.workspaceDir, { recursive: true });
      writeFileSync(join(spec.codexHomeDir, 'config.toml'), '# test\n');
      const outside = join(tmp, 'host-secret.txt');
      writeFileSync(outside, 'root only\n', { mode: 0o600 });
      symlinkSync(outside, join(spec.workspaceDir, 'link-to-host-file'));

      const agent = await startAgent(spec);
      const lines = lineReader(agent.stdout);
      agent.stdin.write(`${JSON.stringify({ id: 1, method: 'initialize', params: { clientInfo: { name: 't', title: null, version: '0' } } })}\n`);
      const response = JSON.parse(await lines.next((line) => line.startsWith('{"id":1,'))) as { result?: { userAgent?: string; codexHome?: string } };
      expect(response.result?.userAgent).toContain('0.169.0');
      expect(response.result?.codexHome).toBe(AGENT_CODEX_HOME);

      const info = await docker.getContainer(agent.containerId).inspect();
      expect(info.State.Running).toBe(true);
      expect(info.Config.User).toBe('10001:10001');
      expect(info.Config.Labels).toMatchObject({ [LABEL_APP]: 'codex-relay', [LABEL_INSTANCE]: instanceId, [LABEL_GROUP]: 'throwaway-a' });
      expect(info.Name).toMatch(/^\/codex-relay-throwaway-a-[0-9a-f]{6}$/);
      expect(info.Config.Env).toContain('CODEX_RELAY_TEST=stub-value');
      expect(info.Config.OpenStdin).toBe(true);
      expect(info.Config.StdinOnce).toBe(true);
      expect(info.Config.Tty).toBe(false);

      const mounts = info.Mounts.map((m) => ({ type: m.Type, source: m.Source, destination: m.Destination, rw: m.RW })).sort((a, b) =>
        a.destination.localeCompare(b.destination),
      );
      expect(mounts).toEqual([
        { type: 'bind', source: realpathSync(spec.codexHomeDir), destination: AGENT_CODEX_HOME, rw: true },
        { type: 'bind', source: realpathSync(spec.workspaceDir), destination: AGENT_WORKSPACE, rw: true },
      ]);
      expect(info.HostConfig.Binds ?? []).toEqual([]);

      const host = info.HostConfig;
      expect(host.Memory).toBe(512 * 1024 * 1024);
      expect(host.NanoCpus).toBe(1.5e9);
      expect(host.PidsLimit).toBe(256);
      expect(host.Init).toBe(true);
      expect(host.CapDrop).toEqual(['ALL']);
      expect(host.CapAdd ?? []).toEqual([]);
      expect(host.Privileged).toBe(false);
      expect(host.SecurityOpt).toEqual(['no-new-privileges']);

      const uid = await execIn(docker, agent.containerId, ['id', '-u']);
      expect(uid.out).toBe('10001');
      // The agent can write both mounts (the host chowned them) ...
      const write = await execIn(docker, agent.containerId, ['sh', '-c', `touch ${AGENT_WORKSPACE}/w ${AGENT_CODEX_HOME}/c ${AGENT_CODEX_HOME}/config.toml`]);
      expect(write.code).toBe(0);
      // ... but the chown never followed a link out of the workspace.
      expect(lstatSync(outside).uid).toBe(process.getuid?.() ?? 0);
      const env = await execIn(docker, agent.containerId, ['printenv', 'CODEX_RELAY_TEST']);
      expect(env.out).toBe('stub-value');

      const managed = await runtime.listManaged();
      expect(managed).toContainEqual({ containerId: agent.containerId, groupSlug: 'throwaway-a', running: true });
    });

    it('stop() closes stdin, the app-server exits by itself and the container is removed', async () => {
      const agent = await startAgent(specFor('throwaway-b'));
      const started = Date.now();
      await agent.stop('test says stop');
      const exit = await agent.exited;
      expect(exit.exitCode).toBe(0);
      expect(exit.reason).toBe('stopped by relay: test says stop, exit code 0');
      expect(Date.now() - started).toBeLessThan(2_000 + 1_000);
      await expect(docker.getContainer(agent.containerId).inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect((await runtime.listManaged()).map((c) => c.containerId)).not.toContain(agent.containerId);
      await agent.stop('again'); // idempotent, never throws
    });

    it('docker kill resolves exited with 137 (killed) and leaves no container', async () => {
      const agent = await startAgent(specFor('throwaway-c'));
      let ended = false;
      agent.stdout.on('end', () => (ended = true));
      agent.stdout.resume();
      await docker.getContainer(agent.containerId).kill();
      const exit = await agent.exited;
      expect(exit.exitCode).toBe(137);
      expect(exit.reason).toMatch(/137|killed/);
      await expect.poll(() => ended, { timeout: 5_000 }).toBe(true);
      await expect
        .poll(async () => (await runtime.listManaged()).map((c) => c.containerId), { timeout: 10_000 })
        .not.toContain(agent.containerId);
    });

    it('ensureNetwork creates a labelled bridge once, returns its gateway and refuses a contradicting flag', async () => {
      const name = `codex-relay-test-${randomBytes(3).toString('hex')}`;
      networks.push(name);
      const first = await ensureNetwork(docker, name, { internal: true });
      expect(first.name).toBe(name);
      expect(first.gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(await ensureNetwork(docker, name, { internal: true })).toEqual(first);
      expect(await ensureNetwork(docker, name)).toEqual(first);
      await expect(ensureNetwork(docker, name, { internal: false })).rejects.toThrow(/internal=true/);
      const info = await docker.getNetwork(name).inspect();
      expect(info.Labels).toMatchObject({ [LABEL_APP]: 'codex-relay' });
      expect(info.Driver).toBe('bridge');

      const agent = await startAgent(specFor('throwaway-d', { network: name }));
      const inspect = await docker.getContainer(agent.containerId).inspect();
      expect(inspect.HostConfig.NetworkMode).toBe(name);
      expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([name]);
      await agent.stop('done');
    });

    it('maps a missing image and an unreachable daemon to ContainerStartError with the fix', async () => {
      const missing = new DockerRuntime({ docker, image: 'codex-relay-agent:does-not-exist', instanceId, log: silentLogger() });
      const error = await missing.start(specFor('throwaway-e')).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ContainerStartError);
      expect((error as Error).message).toBe('agent image codex-relay-agent:does-not-exist not found; run npm run image:build');

      const { default: Docker } = await import('dockerode');
      const nowhere = new Docker({ socketPath: join(tmp, 'no-docker.sock') });
      const unreachable = new DockerRuntime({ docker: nowhere, image: agentImage(), instanceId, log: silentLogger() });
      const error2 = await unreachable.start(specFor('throwaway-f')).catch((err: unknown) => err);
      expect(error2).toBeInstanceOf(ContainerStartError);
      expect((error2 as Error).message).toMatch(/^Docker is not reachable at unix:\/\/.*no-docker\.sock \(ENOENT\)/);
    });
  },
  { agentImage: 'build' },
);
