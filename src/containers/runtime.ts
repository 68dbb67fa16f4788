/**
 * ContainerRuntime seam: how the core gets a running agent (codex app-server) for a group.
 * The Docker implementation lives beside this file; the seam stays narrow so a Kubernetes
 * implementation could replace it: start one, find ours, stop one.
 */
import type { Readable, Writable } from 'node:stream';

export interface ResourceLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
}

export interface AgentContainerSpec {
  groupSlug: string;
  /** Host path mounted read-write at the container's workspace. */
  workspaceDir: string;
  /** Mount the workspace read-only (the group's read-only sandbox mode). */
  workspaceReadOnly?: boolean;
  /** Host path mounted read-write at the container user's ~/.codex (config.toml, AGENTS.md, stub auth). */
  codexHomeDir: string;
  limits: ResourceLimits;
  /** Environment for the agent. Must never hold a real credential (callers pass stubs only). */
  env: Record<string, string>;
  /** Docker network to attach to (the relay's own bridge network). */
  network?: string;
  /** Extra bind mounts from the credential gateway (e.g. OneCLI's CA certificate); read-only unless said. */
  extraMounts?: AgentMount[];
  /** Extra /etc/hosts entries, "name:address" or "name:host-gateway". */
  extraHosts?: string[];
}

export interface AgentMount {
  /** Absolute host path (file or directory) that exists. */
  source: string;
  /** Absolute path inside the container; must not be the workspace or the codex home. */
  target: string;
  /** Default true. */
  readOnly?: boolean;
}

export interface AgentExit {
  exitCode: number | null;
  /** Plain-words reason: "exited with code 137 (killed)", "OOM killed", "stopped by relay". */
  reason: string;
}

/** A started agent: its stdio carries the app-server JSON-RPC lines. */
export interface RunningAgent {
  readonly containerId: string;
  readonly groupSlug: string;
  /** Lines to the app-server. */
  readonly stdin: Writable;
  /** Lines from the app-server (stdout only; stderr goes to the log). */
  readonly stdout: Readable;
  /** Resolves once when the container stops, for whatever reason. Never rejects. */
  readonly exited: Promise<AgentExit>;
  /** Graceful stop: close stdin, wait briefly, then stop/kill and remove. Never throws. */
  stop(reason: string): Promise<void>;
}

export interface ManagedContainer {
  containerId: string;
  groupSlug: string;
  running: boolean;
}

export interface ContainerRuntime {
  /** Creates and starts an agent container. Throws ContainerStartError with a user-facing reason. */
  start(spec: AgentContainerSpec): Promise<RunningAgent>;
  /** Every container this relay instance created (found by label), running or not. */
  listManaged(): Promise<ManagedContainer[]>;
  /** Removes a container by id (force). Never throws when it is already gone. */
  remove(containerId: string): Promise<void>;
}

export class ContainerStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ContainerStartError';
  }
}
