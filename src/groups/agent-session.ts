/**
 * One live agent for a group: a started container plus the app-server client on its stdio.
 * Starting writes the group's Codex home (config.toml pointing at the credential proxy, AGENTS.md
 * composed from the row), mints a fresh stub, starts the container and performs the handshake.
 * Stopping (or the container dying) revokes the stub.
 */
import { AppServerClient, type ApprovalPolicy } from '../codex/client.js';
import type { ContainerRuntime, RunningAgent, AgentExit } from '../containers/runtime.js';
import type { Group } from '../db/rows.js';
import type { Logger } from '../logger.js';
import type { StubIssuer } from '../vault/stubs.js';
import { ensureGroupDirs, groupPaths, renderAgentConfig, STUB_ENV_NAME, writeFileAtomic } from './group-home.js';
import { composeAgentsMd } from './instructions.js';
import { containerSandbox } from './sandbox.js';

export interface AgentSessionDeps {
  containers: ContainerRuntime;
  stubs: StubIssuer;
  /** Credential proxy URL as containers reach it. */
  proxyUrl: string;
  network?: string;
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
    private readonly stub: string,
    private readonly stubs: StubIssuer,
  ) {
    void agent.exited.then(() => stubs.revoke(stub));
  }

  static async start(group: Group, deps: AgentSessionDeps): Promise<AgentSession> {
    const paths = groupPaths(deps.dataDir, group.slug);
    ensureGroupDirs(paths);
    writeFileAtomic(
      `${paths.codexHome}/config.toml`,
      renderAgentConfig({
        model: group.model,
        reasoningEffort: group.reasoningEffort,
        approvalPolicy: group.approvalPolicy,
        proxyUrl: deps.proxyUrl,
        extraToml: deps.agentConfigExtra,
      }),
    );
    writeFileAtomic(
      `${paths.codexHome}/AGENTS.md`,
      composeAgentsMd({
        platform: group.platform,
        groupName: group.name,
        groupInstructions: group.instructions,
        sharedInstructions: deps.sharedInstructions?.(),
      }),
    );
    const stub = deps.stubs.mint(group.slug);
    let agent: RunningAgent | undefined;
    try {
      agent = await deps.containers.start({
        groupSlug: group.slug,
        workspaceDir: paths.workspace,
        workspaceReadOnly: containerSandbox(group).workspaceReadOnly,
        codexHomeDir: paths.codexHome,
        limits: { memoryMb: group.memoryMb, cpus: group.cpus, pids: group.pidsLimit },
        env: { [STUB_ENV_NAME]: stub },
        network: deps.network,
      });
      const client = await AppServerClient.connect({
        input: agent.stdout,
        output: agent.stdin,
        log: deps.log.child({ group: group.slug }),
        version: deps.clientVersion,
        approvals: approvalsFor(group),
        requestTimeoutMs: deps.handshakeTimeoutMs ?? 30_000,
      });
      return new AgentSession(agent, client, stub, deps.stubs);
    } catch (err) {
      deps.stubs.revoke(stub);
      if (agent) await agent.stop('handshake failed');
      throw err;
    }
  }

  /** Closes the app-server's stdin and stops the container. Never throws. */
  async stop(reason: string): Promise<void> {
    this.stubs.revoke(this.stub);
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
 * Approval requests only reach the relay under `untrusted` / `on-request`. There is nobody in the
 * chat to click "approve" mid-turn, so the group's policy decides: a group that asks Codex to
 * request approval gets its commands declined, and Codex explains that in its answer.
 */
export function approvalsFor(group: Pick<Group, 'approvalPolicy'>): ApprovalPolicy {
  return group.approvalPolicy === 'never'
    ? { commands: 'accept', fileChanges: 'accept' }
    : { commands: 'decline', fileChanges: 'decline' };
}
