/**
 * Test helpers for running the real pinned codex binary on the host against the fake Responses
 * API: a throwaway CODEX_HOME whose config points at a custom `mock` provider (no retries, short
 * idle timeout, so failures are fast), and a spawned `codex app-server` on stdio.
 *
 * Every spawned process is registered and killed by `cleanupCodex()` (call it in afterEach /
 * afterAll); temp dirs are removed there too.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The native binary (not the Node wrapper): half the startup time and no extra process. */
export const CODEX_NATIVE_BIN =
  process.env.CODEX_NATIVE_BIN ?? join(REPO_ROOT, 'node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex');

const children = new Set<ChildProcessWithoutNullStreams>();
const dirs = new Set<string>();

/** A fresh temp dir, removed by `cleanupCodex()`. */
export function makeTempDir(prefix = 'relay-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function makeCodexHome({ baseUrl, model = 'gpt-test', extraToml = '' }: { baseUrl: string; model?: string; extraToml?: string }): string {
  const home = makeTempDir('codex-home-');
  const toml = `model = "${model}"
model_provider = "mock"

[model_providers.mock]
name = "mock"
base_url = "${baseUrl}"
wire_api = "responses"
env_key = "MOCK_KEY"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 3000
${extraToml ? `\n${extraToml}\n` : ''}`;
  writeFileSync(join(home, 'config.toml'), toml);
  return home;
}

/** Spawns `codex app-server` (plugins disabled: no github sync offline). Killed by `cleanupCodex()`. */
export function spawnHostCodex({ codexHome, cwd }: { codexHome: string; cwd: string }): ChildProcessWithoutNullStreams {
  const child = spawn(CODEX_NATIVE_BIN, ['app-server', '--disable', 'plugins'], {
    cwd,
    // A minimal env: nothing from the developer's shell (keys, proxies, ~/.codex) leaks into the test.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: codexHome, CODEX_HOME: codexHome, MOCK_KEY: 'stub' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  // Tracing logs only; drain them so a chatty run never blocks on a full pipe.
  child.stderr.resume();
  return child;
}

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Kills every spawned app-server still running and removes temp dirs. Never throws. */
export async function cleanupCodex(): Promise<void> {
  const running = [...children];
  for (const child of running) child.kill('SIGKILL');
  await Promise.all(running.map(exited));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
