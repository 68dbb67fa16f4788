/**
 * How a group's sandbox setting is enforced. Codex's own sandbox (bubblewrap) cannot create
 * namespaces inside an unprivileged, capability-less container, so the container is the sandbox:
 * Codex is told so (`externalSandbox`) and the mounts carry the restriction. Pure; table-tested.
 *
 *   read-only          → workspace mounted read-only
 *   workspace-write    → workspace read-write; nothing else of the host is mounted
 *   danger-full-access → same as workspace-write: the container boundary still holds
 */
import type { SandboxPolicy } from '../codex/generated/v2/SandboxPolicy.js';
import type { Group } from '../db/rows.js';

export interface ContainerSandbox {
  workspaceReadOnly: boolean;
  turnPolicy: SandboxPolicy;
}

export function containerSandbox(group: Pick<Group, 'sandboxMode' | 'egress'>): ContainerSandbox {
  return {
    workspaceReadOnly: group.sandboxMode === 'read-only',
    turnPolicy: { type: 'externalSandbox', networkAccess: group.egress === 'locked' ? 'restricted' : 'enabled' },
  };
}
