/**
 * CredentialGateway on OneCLI (ONECLI_URL set): a OneCLI gateway on the host terminates the agent's
 * HTTPS (its own CA), swaps OneCLI's per-agent placeholder for the real key and forwards; the relay's
 * built-in proxy is not used. The container still never holds a real credential.
 *
 * Per container start (two HTTP calls, the same ones `@onecli-sh/sdk` 0.3 makes; implemented with
 * fetch because the SDK is not a dependency of this tree yet):
 *   1. ensure an agent per group: POST {ONECLI_URL}/api/agents {name, identifier}; 409 = exists = fine.
 *   2. fetch its container config: GET {ONECLI_URL}/v1/container-config?agent=<identifier>
 *      → { env, caCertificate, caCertificateContainerPath, credentialStubs?: [{containerPath, content}] }
 *   Both send `Authorization: Bearer <OneCLI API key>` when the vault holds one.
 * The config is applied like the SDK's applyContainerConfig: every returned env var as is; the CA
 * written to a host file and mounted read-only at caCertificateContainerPath; a combined bundle
 * (host system CAs + OneCLI CA) mounted at /tmp/onecli-combined-ca.pem with SSL_CERT_FILE pointing
 * at it (codex's HTTP client honours SSL_CERT_FILE / CODEX_CA_CERTIFICATE); each credential stub
 * written to a host file and mounted read-only; `host.docker.internal:host-gateway` added.
 * Host files live in DATA_DIR/onecli/<slug>/, per group, rewritten on every start.
 *
 * Fail closed: OneCLI unreachable, refusing (any non-2xx but 409 on create), or answering something
 * that does not parse → ContainerStartError with the reason; no container starts. `locked` egress is
 * refused under OneCLI: the agent would need a route to OneCLI's gateway, which the relay does not
 * control.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { ContainerStartError } from '../containers/runtime.js';
import { STUB_ENV_NAME } from '../groups/group-home.js';
import type { Logger } from '../logger.js';
import type { AgentCredentials, CredentialGateway, GatewayGroup, GatewayStats } from './gateway.js';

/** What the codex provider sends as its key under OneCLI; OneCLI replaces it on the way out. */
export const ONECLI_PLACEHOLDER_KEY = 'onecli-managed';
export const COMBINED_CA_CONTAINER_PATH = '/tmp/onecli-combined-ca.pem';
const SYSTEM_CA_PATHS = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const containerPath = z.string().refine((p) => isAbsolute(p) && !p.split('/').includes('..'), 'must be an absolute path without ..');

export const OneCliContainerConfigSchema = z.object({
  env: z.record(z.string().regex(ENV_NAME, 'not an environment variable name'), z.string()),
  caCertificate: z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'is not a PEM certificate' }),
  caCertificateContainerPath: containerPath,
  credentialStubs: z.array(z.object({ containerPath, content: z.string() })).optional(),
});
export type OneCliContainerConfig = z.infer<typeof OneCliContainerConfigSchema>;

export interface OneCliGatewayOptions {
  /** ONECLI_URL, e.g. http://127.0.0.1:10254 */
  url: string;
  /** OneCLI API key from the vault, read per call; undefined = send none (self-hosted without auth). */
  apiKey: () => string | undefined;
  /** Docker network agents join (the relay's open network). */
  network: string;
  /** The model API as agents address it (OneCLI intercepts it): OPENAI_UPSTREAM_URL. */
  modelBaseUrl: string;
  dataDir: string;
  timeoutMs?: number;
  /** Host CA bundles tried for the combined bundle (tests may point elsewhere). */
  systemCaPaths?: string[];
  log: Logger;
}

/** OneCLI agent identifier for a group: 1–50 chars of [a-z0-9-], starting with a letter. Pure. */
export function onecliAgentIdentifier(slug: string): string {
  const id = `codex-relay-${slug}`;
  if (id.length <= 50) return id;
  const hash = createHash('sha256').update(slug).digest('hex').slice(0, 8);
  return `codex-relay-${slug.slice(0, 29).replace(/-+$/, '')}-${hash}`;
}

export class OneCliGateway implements CredentialGateway {
  readonly kind = 'onecli' as const;
  private readonly base: string;
  private readonly where: string;

  constructor(private readonly options: OneCliGatewayOptions) {
    this.base = options.url.replace(/\/+$/, '');
    const u = new URL(this.base);
    this.where = `${u.origin}${u.pathname === '/' ? '' : u.pathname}`;
  }

  async prepare(group: GatewayGroup): Promise<AgentCredentials> {
    if (group.egress === 'locked') {
      throw new ContainerStartError('this group\'s egress is locked, which is not available with OneCLI (ONECLI_URL) yet; set the group to open egress or use the built-in proxy');
    }
    const identifier = onecliAgentIdentifier(group.slug);
    await this.ensureAgent(identifier, group.name);
    const config = await this.containerConfig(identifier);
    const { mounts, env } = this.materialize(group.slug, config);
    this.options.log.info({ group: group.slug, agent: identifier, env: Object.keys(env), mounts: mounts.map((m) => m.target) }, 'OneCLI container config applied');
    return {
      modelBaseUrl: this.options.modelBaseUrl,
      env,
      mounts,
      // OneCLI's proxy env usually names host.docker.internal, which Linux engines only resolve when told.
      extraHosts: ['host.docker.internal:host-gateway'],
      network: this.options.network,
      release: () => undefined,
    };
  }

  stats(): GatewayStats {
    return { kind: this.kind, requestsByGroup: {}, rejected: 0, upstreamFailures: 0 };
  }

  async close(): Promise<void> {}

  private async ensureAgent(identifier: string, name: string): Promise<void> {
    const what = `create the agent ${identifier}`;
    const res = await this.call('POST', '/api/agents', what, JSON.stringify({ name: `Codex Relay: ${name}`.slice(0, 100), identifier }));
    if (res.ok || res.status === 409) {
      await res.body?.cancel();
      return;
    }
    throw await this.refused(res, what);
  }

  private async containerConfig(identifier: string): Promise<OneCliContainerConfig> {
    const what = `fetch the container config of agent ${identifier}`;
    const res = await this.call('GET', `/v1/container-config?agent=${encodeURIComponent(identifier)}`, what);
    if (!res.ok) throw await this.refused(res, what);
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw new ContainerStartError(`OneCLI at ${this.where} answered the container config with something that is not JSON; the agent was not started`, { cause: err });
    }
    const parsed = OneCliContainerConfigSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ContainerStartError(`OneCLI at ${this.where} sent a container config the relay does not understand (${issue?.path.join('.') || 'body'}: ${issue?.message}); the agent was not started`);
    }
    return parsed.data;
  }

  private async call(method: 'GET' | 'POST', path: string, what: string, body?: string): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const key = this.options.apiKey();
    if (key) headers.authorization = `Bearer ${key}`;
    try {
      return await fetch(`${this.base}${path}`, { method, headers, body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs ?? 5_000} ms` : (cause?.code ?? (err as Error).message);
      this.options.log.warn({ onecli: this.where, what, reason }, 'OneCLI unreachable');
      throw new ContainerStartError(
        `OneCLI at ${this.where} could not be reached to ${what} (${reason}). With ONECLI_URL set, credentials only come from OneCLI, so the agent was not started; start OneCLI or unset ONECLI_URL`,
        { cause: err },
      );
    }
  }

  private async refused(res: Response, what: string): Promise<ContainerStartError> {
    const detail = await res
      .text()
      .then((t) => t.replace(/\s+/g, ' ').trim().slice(0, 200))
      .catch(() => '');
    this.options.log.warn({ onecli: this.where, what, status: res.status }, 'OneCLI refused');
    const hint = res.status === 401 || res.status === 403 ? '; check the OneCLI API key (npm run setup -- vault set-onecli-key)' : '';
    return new ContainerStartError(`OneCLI at ${this.where} refused to ${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}${hint}. The agent was not started`);
  }

  /** Writes the CA, the combined bundle and the stubs to host files; returns the mounts and env. */
  private materialize(slug: string, config: OneCliContainerConfig): { mounts: AgentCredentials['mounts']; env: Record<string, string> } {
    const dir = join(this.options.dataDir, 'onecli', slug);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mounts: AgentCredentials['mounts'] = [];
    const env: Record<string, string> = { ...config.env };
    // Certificates and stubs are public or placeholders by OneCLI's design; 0644 lets the agent's uid read them.
    mounts.push({ source: writeFile(join(dir, 'ca.pem'), config.caCertificate), target: config.caCertificateContainerPath, readOnly: true });
    const systemCa = (this.options.systemCaPaths ?? SYSTEM_CA_PATHS).map(readIfPresent).find((text) => text !== undefined);
    if (systemCa !== undefined && env.SSL_CERT_FILE === undefined) {
      const combined = `${systemCa.trimEnd()}\n${config.caCertificate.trimEnd()}\n`;
      mounts.push({ source: writeFile(join(dir, 'combined-ca.pem'), combined), target: COMBINED_CA_CONTAINER_PATH, readOnly: true });
      env.SSL_CERT_FILE = COMBINED_CA_CONTAINER_PATH;
    } else if (systemCa === undefined) {
      this.options.log.warn({ tried: this.options.systemCaPaths ?? SYSTEM_CA_PATHS }, 'no system CA bundle on the host; agents get the OneCLI CA file only');
    }
    (config.credentialStubs ?? []).forEach((stub, i) => {
      mounts.push({ source: writeFile(join(dir, `stub-${i}-${basename(stub.containerPath)}`), stub.content), target: stub.containerPath, readOnly: true });
    });
    const targets = mounts.map((m) => m.target);
    const clash = targets.find((t, i) => targets.indexOf(t) !== i);
    if (clash) throw new ContainerStartError(`OneCLI asked for two files at ${clash} in the container; the agent was not started`);
    // The codex provider reads its key from this variable; OneCLI swaps the placeholder for the real key.
    env[STUB_ENV_NAME] = ONECLI_PLACEHOLDER_KEY;
    return { mounts, env };
  }
}

function writeFile(path: string, content: string): string {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
  return path;
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
