/**
 * A group's folder on the host: `groups/<slug>/` with `workspace/` (mounted at /workspace),
 * `codex-home/` (mounted at the agent's ~/.codex: config.toml, AGENTS.md, Codex's own sessions and
 * state, so threads survive container restarts) and `archive/`. Slugs are validated so no path
 * trick can escape the data directory.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { SLUG_RE } from '../db/rows.js';

/** Where the image mounts things; must match the Dockerfile's user and workdir. */
export const CONTAINER_WORKSPACE = '/workspace';
export const STUB_ENV_NAME = 'CODEX_RELAY_TOKEN';
const PROVIDER_ID = 'codex-relay';

export interface GroupPaths {
  root: string;
  workspace: string;
  codexHome: string;
  archive: string;
}

export function groupPaths(dataDir: string, slug: string): GroupPaths {
  if (!SLUG_RE.test(slug)) throw new Error(`invalid group slug: ${JSON.stringify(slug)}`);
  const groupsDir = resolve(dataDir, 'groups');
  const root = resolve(groupsDir, slug);
  if (!root.startsWith(groupsDir + sep)) throw new Error(`group slug escapes the data directory: ${slug}`);
  return { root, workspace: join(root, 'workspace'), codexHome: join(root, 'codex-home'), archive: join(root, 'archive') };
}

export function ensureGroupDirs(paths: GroupPaths): void {
  for (const dir of [paths.workspace, paths.codexHome, paths.archive]) mkdirSync(dir, { recursive: true });
}

export interface AgentConfigInput {
  model: string;
  reasoningEffort: string;
  approvalPolicy: string;
  /** Base URL of the credential proxy as the container reaches it, without /v1. */
  proxyUrl: string;
  /** Extra TOML appended verbatim inside the provider table (tests use it to shorten model retries). */
  extraToml?: string;
}

/**
 * The agent's config.toml: a custom model provider whose base URL is the credential proxy and whose
 * key is read from the stub env var. The built-in `openai` provider is not used because it ignores
 * a base URL from the environment and would try WebSockets first (APP-SERVER-NOTES §6.6).
 */
export function renderAgentConfig(input: AgentConfigInput): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    '# Written by codex-relay on every container start. Holds no secret: the key is a stub.',
    `model = ${q(input.model)}`,
    `model_provider = ${q(PROVIDER_ID)}`,
    `model_reasoning_effort = ${q(input.reasoningEffort)}`,
    `approval_policy = ${q(input.approvalPolicy)}`,
    // The container is the sandbox (see sandbox.ts); each turn also says so with externalSandbox.
    'sandbox_mode = "danger-full-access"',
    '',
    // The stub reaches codex through the environment, but the commands codex runs must not inherit it
    // (codex 0.169 passes every variable on by default, so `env` output would carry it into transcripts).
    '[shell_environment_policy]',
    `exclude = [${q(STUB_ENV_NAME)}]`,
    '',
    `[model_providers.${PROVIDER_ID}]`,
    `name = "Codex Relay credential proxy"`,
    `base_url = ${q(`${input.proxyUrl.replace(/\/$/, '')}/v1`)}`,
    'wire_api = "responses"',
    `env_key = ${q(STUB_ENV_NAME)}`,
    input.extraToml ?? '',
    '',
  ].join('\n');
}

/** Writes a file atomically (temp + rename) so a crash never leaves a half-written config. */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}
