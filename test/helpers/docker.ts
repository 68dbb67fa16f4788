/**
 * Docker gating for integration suites. Real Docker, real image, real codex — never mocked.
 *
 * describeDocker(name, fn, options):
 * - Docker reachable: runs `fn` as a normal suite.
 * - Not reachable, CI set: registers one test that FAILS ("Docker is required in CI but not reachable"),
 *   so a broken CI machine can never pass by skipping.
 * - Not reachable locally: skips the suite and prints one `[skip]` line to stderr saying why.
 * - options.agentImage 'require': the agent image must exist (CI: failure with a hint; locally: skip).
 *   'build': a beforeAll builds it with buildAgentImage when absent (slow the first time).
 */
import Dockerode from 'dockerode';
import { beforeAll, describe, it } from 'vitest';
import { silentLogger, createLogger } from '../../src/logger.js';
import { buildAgentImage, defaultAgentImageTag, imageExists } from '../../setup/build-image.js';

export type DockerStatus = { ok: true } | { ok: false; reason: string };

let statusPromise: Promise<DockerStatus> | undefined;
const printed = new Set<string>();

/** One client for the test process (DOCKER_HOST or the local socket). */
export function testDocker(): Dockerode {
  return new Dockerode();
}

/** Whether the engine answers a ping within 5 s; the reason when not. Cached per test file. */
export function dockerStatus(): Promise<DockerStatus> {
  statusPromise ??= (async (): Promise<DockerStatus> => {
    const docker = testDocker();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5_000);
      });
      await Promise.race([docker.ping(), timeout]);
      return { ok: true };
    } catch (err) {
      const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
      const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
      return { ok: false, reason: `${where}: ${code ? `${code} ` : ''}${err instanceof Error ? err.message : String(err)}` };
    } finally {
      clearTimeout(timer);
    }
  })();
  return statusPromise;
}

export async function dockerAvailable(): Promise<boolean> {
  return (await dockerStatus()).ok;
}

/** The agent image tests run: env AGENT_IMAGE, else the pinned default tag. */
export function agentImage(): string {
  return process.env.AGENT_IMAGE?.trim() || defaultAgentImageTag();
}

/** Whether the agent image exists; the reason (with the fix) when not. */
export async function agentImageStatus(docker: Dockerode = testDocker()): Promise<DockerStatus> {
  const tag = agentImage();
  try {
    if (await imageExists(docker, tag)) return { ok: true };
    return { ok: false, reason: `agent image ${tag} not found; run npm run image:build` };
  } catch (err) {
    return { ok: false, reason: `cannot inspect agent image ${tag}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Builds the agent image when it is absent (no-op otherwise). Build output goes to stderr when DEBUG_IMAGE_BUILD is set. */
export async function ensureAgentImage(docker: Dockerode = testDocker()): Promise<string> {
  const tag = agentImage();
  const log = process.env.DEBUG_IMAGE_BUILD ? createLogger({ level: 'info' }) : silentLogger();
  await buildAgentImage({ docker, tag, log });
  return tag;
}

export interface DescribeDockerOptions {
  agentImage?: 'require' | 'build';
}

export function describeDocker(name: string, fn: () => void | Promise<void>, options: DescribeDockerOptions = {}): void {
  describe(name, async () => {
    const docker = await dockerStatus();
    if (!docker.ok) {
      unavailable(name, `Docker is required in CI but not reachable: ${docker.reason}`, `Docker not reachable (${docker.reason}) — run .ci/run or start dockerd`);
      return;
    }
    if (options.agentImage === 'require') {
      const image = await agentImageStatus();
      if (!image.ok) {
        unavailable(name, `the agent image is required in CI: ${image.reason}`, image.reason);
        return;
      }
    }
    if (options.agentImage === 'build') {
      // A first build unpacks ~170 MB and commits ~400 MB of layers: give it minutes, not the hook default.
      beforeAll(async () => {
        await ensureAgentImage();
      }, 15 * 60_000);
    }
    await fn();
  });
}

function unavailable(name: string, ciMessage: string, skipReason: string): void {
  if (process.env.CI) {
    it('has Docker and the agent image', () => {
      throw new Error(ciMessage);
    });
    return;
  }
  if (!printed.has(name)) {
    printed.add(name);
    process.stderr.write(`[skip] ${name}: ${skipReason}\n`);
  }
  it.skip(`${name} (${skipReason})`, () => undefined);
}
