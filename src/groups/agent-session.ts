/**
 * One live agent for a group: a started container plus the app-server client on its stdio.
 * Starting writes the group's Codex home (config.toml pointing at the credential proxy, AGENTS.md
 * composed from the row), gets the container's credentials from the CredentialGateway (a fresh stub,
 * proxy route, network; it fails closed), starts the container and performs the handshake.
 * Stopping (or the container dying) revokes the stub.
 */
import { AppServerClient, type ApprovalPolicy } from '../codex/client.js';
import type { ContainerRuntime, RunningAgent, AgentExit } from '../containers/runtime.js';
import type { Group } from '../db/rows.js';
import type { Logger } from '../logger.js';
import type { AgentCredentials, CredentialGateway } from '../vault/gateway.js';
import { ensureGroupDirs, groupPaths, renderAgentConfig, writeFileAtomic } from './group-home.js';
import { composeAgentsMd } from './instructions.js';
import { containerSandbox } from './sandbox.js';

export interface AgentSessionDeps {
  containers: ContainerRuntime;
  /** Issues each container's stub, model base URL, network and extra mounts (built-in proxy or OneCLI). */
  credentials: CredentialGateway;
  dataDir: string;
  clientVersion: string;
  sharedInstructions?: () => string | undefined;
  /** Extra config.toml lines (tests shorten model retries with it). */
  agentConfigExtra?: string;
  handshakeTimeoutMs?: number;
  log: Logger;
}

export class AgentSession {
  /** Codex thread ids resumed or started in this app-server process. */
  readonly loadedThreads = new Set<string>();
  readonly startedAt = Date.now();

  private constructor(
    readonly agent: RunningAgent,
    readonly client: AppServerClient,
    private readonly credentials: AgentCredentials,
  ) {
    void agent.exited.then(() => credentials.release());
  }

  static async start(group: Group, deps: AgentSessionDeps): Promise<AgentSession> {
    const paths = groupPaths(deps.dataDir, group.slug);
    ensureGroupDirs(paths);
    // First, so a gateway that cannot vouch for the container (fail closed) stops everything here.
    const credentials = await deps.credentials.prepare(group);
    let agent: RunningAgent | undefined;
    try {
      writeFileAtomic(
        `${paths.codexHome}/config.toml`,
        renderAgentConfig({
          model: group.model,
          reasoningEffort: group.reasoningEffort,
          approvalPolicy: group.approvalPolicy,
          proxyUrl: credentials.modelBaseUrl,
          extraToml: deps.agentConfigExtra,
        }),
      );
      writeAgentsMd(group, deps);
      agent = await deps.containers.start({
        groupSlug: group.slug,
        workspaceDir: paths.workspace,
        workspaceReadOnly: containerSandbox(group).workspaceReadOnly,
        codexHomeDir: paths.codexHome,
        limits: { memoryMb: group.memoryMb, cpus: group.cpus, pids: group.pidsLimit },
        env: credentials.env,
        network: credentials.network,
        extraMounts: credentials.mounts,
        extraHosts: credentials.extraHosts,
      });
      const client = await AppServerClient.connect({
        input: agent.stdout,
        output: agent.stdin,
        log: deps.log.child({ group: group.slug }),
        version: deps.clientVersion,
        approvals: approvalsFor(group),
        requestTimeoutMs: deps.handshakeTimeoutMs ?? 30_000,
      });
      return new AgentSession(agent, client, credentials);
    } catch (err) {
      credentials.release();
      if (agent) await agent.stop('handshake failed');
      throw err;
    }
  }

  /** Closes the app-server's stdin and stops the container. Never throws. */
  async stop(reason: string): Promise<void> {
    this.credentials.release();
    this.client.close();
    await this.agent.stop(reason);
  }

  /** The container's exit, or undefined when it is still running after `waitMs`. */
  async exitWithin(waitMs: number): Promise<AgentExit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    try {
      return await Promise.race([this.agent.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Writes the group's AGENTS.md (composed from its row, capped at 32 KiB) into its Codex home, at
 * every container start and whenever the instructions change. Returns the file's path. Throws on
 * I/O errors.
 *
 * Rewriting the file is all it takes for a change to apply on the next turn, container running or
 * not. Verified against codex 0.169 (see test/integration/archive.test.ts): the app-server reads
 * CODEX_HOME/AGENTS.md again before every turn, and when it changed it adds a user message "These
 * AGENTS.md instructions replace all previously provided AGENTS.md instructions." with the new text
 * to the existing thread; new threads and threads resumed after a restart read the new file too.
 * So no restart and no new Codex thread (which would lose the conversation) is needed. The home is
 * bind-mounted as a directory, so the container sees the renamed-in file.
 */
export function writeAgentsMd(group: Group, deps: Pick<AgentSessionDeps, 'dataDir' | 'sharedInstructions'>): string {
  const paths = groupPaths(deps.dataDir, group.slug);
  ensureGroupDirs(paths);
  const path = `${paths.codexHome}/AGENTS.md`;
  writeFileAtomic(
    path,
    composeAgentsMd({
      platform: group.platform,
      groupName: group.name,
      groupInstructions: group.instructions,
      sharedInstructions: deps.sharedInstructions?.(),
    }),
  );
  return path;
}

/**
 * Approval requests only reach the relay under `untrusted` / `on-request`. There is nobody in the
 * chat to click "approve" mid-turn, so the group's policy decides: a group that asks Codex to
 * request approval gets its commands declined, and Codex explains that in its answer.
 */
export function approvalsFor(group: Pick<Group, 'approvalPolicy'>): ApprovalPolicy {
  return group.approvalPolicy === 'never'
    ? { commands: 'accept', fileChanges: 'accept' }
    : { commands: 'decline', fileChanges: 'decline' };
}
