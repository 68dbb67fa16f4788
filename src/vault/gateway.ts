/**
 * CredentialGateway seam: how an agent container reaches the model API without holding a real
 * credential. Two implementations:
 *   - builtin (default): the relay's own credential proxy + the host vault (builtin-gateway.ts);
 *   - OneCLI (ONECLI_URL set): a OneCLI gateway on the host does the key swap (onecli-gateway.ts).
 *
 * `prepare` runs before every container start and decides everything credential-related about that
 * container: the model base URL its config.toml points at, its environment (stubs only), extra
 * read-only mounts (CA certificate, credential stubs), the Docker network it joins (locked egress)
 * and how to revoke what was issued. It fails closed: when the gateway cannot vouch for a container
 * (OneCLI unreachable or refusing, egress lock not installable) it throws ContainerStartError with a
 * reason meant for the chat, and no container is started.
 */
import type { AgentMount } from '../containers/runtime.js';
import type { Group } from '../db/rows.js';

export type GatewayGroup = Pick<Group, 'slug' | 'name' | 'egress'>;

export interface AgentCredentials {
  /** Model API base as the container reaches it, without /v1 (the provider's base_url gets /v1). */
  modelBaseUrl: string;
  /** Container environment: stub token and proxy settings. Never a real credential. */
  env: Record<string, string>;
  /** Extra read-only bind mounts (host files written by the gateway). */
  mounts: AgentMount[];
  /** Extra /etc/hosts entries ("name:address" or "name:host-gateway"). */
  extraHosts: string[];
  /** Docker network the container joins. */
  network: string;
  /** Revokes what was issued for this container (its stub). Idempotent; never throws. */
  release(): void;
}

export interface GatewayStats {
  kind: CredentialGateway['kind'];
  requestsByGroup: Record<string, number>;
  rejected: number;
  upstreamFailures: number;
}

export interface CredentialGateway {
  readonly kind: 'builtin' | 'onecli';
  /** Issues credentials for one container start. Throws ContainerStartError (fail closed). */
  prepare(group: GatewayGroup): Promise<AgentCredentials>;
  /** Request counts (the built-in proxy counts per group; OneCLI keeps its own). */
  stats(): GatewayStats;
  /** Stops listening / removes host rules this relay added. Never throws. */
  close(): Promise<void>;
}
