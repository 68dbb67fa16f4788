/**
 * Builds the agent image from the repo's Dockerfile: `npm run image:build [-- --force] [--tag T]`.
 *
 * - CODEX_VERSION comes from the `@openai/codex` devDependency in package.json (one source of truth); the
 *   default tag is `codex-relay-agent:<CODEX_VERSION>`.
 * - Offline by default: the codex platform tarball is packed into container/vendor on the host (`npm pack`,
 *   served from npm's cache after `npm ci`), so the build itself needs no network. When packing fails the
 *   build falls back to the Dockerfile's online path (npm inside the build).
 * - Base image: env AGENT_BASE_IMAGE, else the registry-free local `codex-relay-base:bookworm` when it
 *   exists (.ci/build-base-image.sh), else the public `node:20-bookworm-slim`.
 * - The build context holds only the Dockerfile, container/ (minus other vendored tarballs) and is sent
 *   uncompressed: the tarball inside is already gzip.
 * - An existing tag is kept unless `force`, or unless its recipe label (hash of Dockerfile, container/
 *   scripts, codex version and base image) shows it was built from something else: a stale image rebuilds.
 * Error contract: buildAgentImage throws ImageBuildError with a message fit for a terminal.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Dockerode from 'dockerode';
import { z } from 'zod';
import { createLogger, type Logger } from '../src/logger.js';
import { codexVersion } from '../src/version.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const VENDOR_DIR = join(REPO_ROOT, 'container', 'vendor');
export const LOCAL_BASE_IMAGE = 'codex-relay-base:bookworm';
export const PUBLIC_BASE_IMAGE = 'node:20-bookworm-slim';

export class ImageBuildError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageBuildError';
  }
}

/** The exact pinned codex version. Throws when package.json pins a range instead of a version. */
export function pinnedCodexVersion(): string {
  const version = codexVersion();
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new ImageBuildError(`package.json must pin @openai/codex to an exact version, found ${JSON.stringify(version)}`);
  }
  return version;
}

export function defaultAgentImageTag(): string {
  return `codex-relay-agent:${pinnedCodexVersion()}`;
}

/** npm's platform suffix for a Docker architecture ("amd64" → "linux-x64"). */
export function codexPlatformFor(dockerArch: string): 'linux-x64' | 'linux-arm64' {
  if (dockerArch === 'amd64' || dockerArch === 'x86_64') return 'linux-x64';
  if (dockerArch === 'arm64' || dockerArch === 'aarch64') return 'linux-arm64';
  throw new ImageBuildError(`Docker runs on ${dockerArch}; codex ships linux-x64 and linux-arm64 only`);
}

export function vendorTarballName(version: string, platform: string): string {
  return `openai-codex-${version}-${platform}.tgz`;
}

/** True when the image (tag or id) exists locally. Throws only when Docker itself fails. */
export async function imageExists(docker: Dockerode, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw err;
  }
}

/** AGENT_BASE_IMAGE, else the local registry-free base when present, else the public default. */
export async function resolveBaseImage(docker: Dockerode, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromEnv = env.AGENT_BASE_IMAGE?.trim();
  if (fromEnv) return fromEnv;
  return (await imageExists(docker, LOCAL_BASE_IMAGE)) ? LOCAL_BASE_IMAGE : PUBLIC_BASE_IMAGE;
}

export interface BuildAgentImageOptions {
  docker: Dockerode;
  /** Default defaultAgentImageTag(). */
  tag?: string;
  /** Default resolveBaseImage(). */
  baseImage?: string;
  log: Logger;
  /** Rebuild even when the tag exists. */
  force?: boolean;
}

export interface BuildAgentImageResult {
  tag: string;
  built: boolean;
  baseImage?: string;
  durationMs: number;
}

export async function buildAgentImage(options: BuildAgentImageOptions): Promise<BuildAgentImageResult> {
  const { docker, log } = options;
  const started = Date.now();
  const version = pinnedCodexVersion();
  const tag = options.tag ?? defaultAgentImageTag();

  let arch: string;
  try {
    arch = (await docker.version()).Arch;
  } catch (err) {
    throw new ImageBuildError(`Docker is not reachable (${errorText(err)}); start dockerd or run .ci/run`, { cause: err });
  }
  const baseImage = options.baseImage ?? (await resolveBaseImage(docker));
  const recipe = recipeHash(version, baseImage);
  if (!options.force) {
    const existing = await imageRecipe(docker, tag);
    // An image without the label was built by hand: keep it, as asked. One from an older recipe is stale.
    if (existing.exists && (existing.recipe === undefined || existing.recipe === recipe)) {
      log.info({ tag }, 'agent image already present (use --force to rebuild)');
      return { tag, built: false, durationMs: Date.now() - started };
    }
    if (existing.exists) log.info({ tag, was: existing.recipe, now: recipe }, 'agent image is stale (Dockerfile, container/, version or base changed); rebuilding');
  }

  const baseIsLocal = await imageExists(docker, baseImage);
  const platform = codexPlatformFor(arch);
  const tarball = await ensureVendorTarball(version, platform, log);
  log.info({ tag, baseImage, codexVersion: version, offline: tarball !== undefined }, 'building agent image');

  const entries = contextEntries(tarball);
  const context = spawn('tar', ['-c', '-f', '-', '-C', REPO_ROOT, ...entries], { stdio: ['ignore', 'pipe', 'pipe'] });
  const tarDone = processDone(context, 'tar');
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(context.stdout, {
      t: tag,
      buildargs: { BASE_IMAGE: baseImage, CODEX_VERSION: version },
      rm: true,
      forcerm: true,
      pull: false,
      labels: { 'codex-relay.codex-version': version, [RECIPE_LABEL]: recipe },
    });
  } catch (err) {
    context.kill();
    throw new ImageBuildError(`Docker refused the build: ${errorText(err)}`, { cause: err });
  }
  const failure = await followBuild(stream, log);
  await tarDone.catch((err: unknown) => {
    throw new ImageBuildError(`packing the build context failed: ${errorText(err)}`, { cause: err });
  });
  if (failure) {
    const hint = baseIsLocal
      ? ''
      : ` (base image ${baseImage} is not present locally and had to be pulled; without a registry run .ci/build-base-image.sh, or set AGENT_BASE_IMAGE to a local image)`;
    throw new ImageBuildError(`building ${tag} from ${baseImage} failed: ${failure}${hint}`);
  }
  if (!(await imageExists(docker, tag))) {
    throw new ImageBuildError(`the build of ${tag} reported success but the image is missing`);
  }
  const durationMs = Date.now() - started;
  log.info({ tag, baseImage, seconds: Math.round(durationMs / 100) / 10 }, 'agent image built');
  return { tag, built: true, baseImage, durationMs };
}

const RECIPE_LABEL = 'codex-relay.recipe';

/** Hash of what decides the image's content: Dockerfile, container/ scripts, codex version, base image name. */
export function recipeHash(version: string, baseImage: string): string {
  const hash = createHash('sha256').update(`${version}\0${baseImage}\0`);
  for (const entry of contextEntries(undefined).sort()) {
    const file = join(REPO_ROOT, entry);
    if (!statSync(file).isFile()) continue;
    hash.update(`${entry}\0`).update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

async function imageRecipe(docker: Dockerode, tag: string): Promise<{ exists: boolean; recipe?: string }> {
  try {
    const info = await docker.getImage(tag).inspect();
    return { exists: true, recipe: info.Config?.Labels?.[RECIPE_LABEL] };
  } catch (err) {
    if (statusCode(err) === 404) return { exists: false };
    throw err;
  }
}

/**
 * Makes sure container/vendor holds the platform tarball for `version`; returns its file name, or
 * undefined when it could not be packed (the Dockerfile then takes the online path).
 * Tries the registry (npm cache first), then the copy installed in node_modules.
 */
async function ensureVendorTarball(version: string, platform: string, log: Logger): Promise<string | undefined> {
  const name = vendorTarballName(version, platform);
  const target = join(VENDOR_DIR, name);
  if (existsSync(target) && statSync(target).size > 0) return name;

  const sources = [`@openai/codex@${version}-${platform}`];
  const installed = join(REPO_ROOT, 'node_modules', '@openai', `codex-${platform}`);
  if (existsSync(join(installed, 'package.json'))) sources.push(installed);
  for (const source of sources) {
    log.info({ source, into: 'container/vendor' }, 'npm pack codex platform tarball');
    try {
      await run('npm', ['pack', source, '--prefer-offline', '--silent', '--pack-destination', VENDOR_DIR], REPO_ROOT);
      if (existsSync(target)) return name;
      log.warn({ source, expected: name }, 'npm pack did not produce the expected tarball');
    } catch (err) {
      log.warn({ source, err: errorText(err) }, 'npm pack failed');
    }
  }
  log.warn({ expected: name }, 'no vendored codex tarball; the image build will fetch codex itself (needs npm and network in the build)');
  return undefined;
}

/** Dockerfile + container/ without vendored tarballs, plus the one tarball this build needs. */
function contextEntries(tarball: string | undefined): string[] {
  const entries = ['Dockerfile'];
  for (const entry of readdirSync(join(REPO_ROOT, 'container'))) {
    if (entry !== 'vendor') entries.push(join('container', entry));
  }
  if (existsSync(join(VENDOR_DIR, 'README.md'))) entries.push(join('container', 'vendor', 'README.md'));
  if (tarball) entries.push(join('container', 'vendor', tarball));
  return entries;
}

const BuildEvent = z.object({
  stream: z.string().optional(),
  status: z.string().optional(),
  error: z.string().optional(),
  errorDetail: z.object({ message: z.string().optional() }).optional(),
});

/** Logs the builder's output line by line; resolves with the build's error message, if any. */
function followBuild(stream: NodeJS.ReadableStream, log: Logger): Promise<string | undefined> {
  return new Promise((resolvePromise) => {
    let buffer = '';
    let failure: string | undefined;
    let settled = false;
    const handle = (line: string) => {
      if (!line.trim()) return;
      let parsed: z.infer<typeof BuildEvent>;
      try {
        const result = BuildEvent.safeParse(JSON.parse(line));
        if (!result.success) return;
        parsed = result.data;
      } catch {
        log.info({ line }, 'build');
        return;
      }
      if (parsed.error || parsed.errorDetail?.message) {
        failure = parsed.errorDetail?.message ?? parsed.error;
        log.error({ error: failure }, 'build');
      }
      const text = (parsed.stream ?? parsed.status ?? '').replace(/\s+$/, '');
      for (const part of text.split('\n')) if (part.trim()) log.info(part);
    };
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      if (buffer) handle(buffer);
      resolvePromise(failure ?? error);
    };
    stream.on('data', (chunk: Buffer | string) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) handle(line);
    });
    stream.on('end', () => finish());
    stream.on('close', () => finish());
    stream.on('error', (err: unknown) => finish(`build stream failed: ${errorText(err)}`));
  });
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  return processDone(child, command);
}

function processDone(child: ReturnType<typeof spawn>, what: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${what} exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

function statusCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number'
    ? err.statusCode
    : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface CliArgs {
  force: boolean;
  tag?: string;
}

function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = { force: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--force' || arg === '-f') args.force = true;
    else if (arg === '--tag' || arg === '-t') args.tag = argv[++i];
    else if (arg?.startsWith('--tag=')) args.tag = arg.slice('--tag='.length);
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(
        'usage: npm run image:build [-- --force] [--tag name:tag]\n' +
          `  default tag ${defaultAgentImageTag()}; base image from AGENT_BASE_IMAGE, else ${LOCAL_BASE_IMAGE} if present, else ${PUBLIC_BASE_IMAGE}\n`,
      );
      process.exit(0);
    } else throw new ImageBuildError(`unknown argument ${arg}`);
  }
  return args;
}

async function main(): Promise<void> {
  const log = createLogger({ pretty: true });
  try {
    const args = parseArgs(process.argv.slice(2));
    await buildAgentImage({ docker: new Dockerode(), tag: args.tag, log, force: args.force });
  } catch (err) {
    // Through the logger, so the message comes after the build output it explains.
    log.error(`image build failed: ${errorText(err)}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
