/**
 * The in-memory registry of group runtimes: exactly one GroupRuntime per group slug, created on
 * first use. Because creation is synchronous and keyed by slug, concurrent first messages for a
 * group always meet the same runtime, and so the same (single) container start.
 */
import type { Group } from '../db/rows.js';
import { writeAgentsMd } from '../groups/agent-session.js';
import { GroupRuntime, type GroupRuntimeDeps, type GroupStatus } from '../groups/group-runtime.js';

export class GroupRuntimes {
  private readonly bySlug = new Map<string, GroupRuntime>();

  constructor(private readonly deps: GroupRuntimeDeps) {}

  get(group: Group): GroupRuntime {
    let runtime = this.bySlug.get(group.slug);
    if (!runtime) {
      runtime = new GroupRuntime(group, this.deps);
      this.bySlug.set(group.slug, runtime);
    }
    return runtime;
  }

  find(slug: string): GroupRuntime | undefined {
    return this.bySlug.get(slug);
  }

  /**
   * After the instructions changed (`/codex instructions set`): rewrites the group's AGENTS.md now,
   * whether or not its agent runs; the next turn uses it. Throws on I/O errors.
   */
  applyInstructions(group: Group): void {
    const runtime = this.bySlug.get(group.slug);
    if (runtime) runtime.applyInstructions(group);
    else writeAgentsMd(group, this.deps);
  }

  statuses(): GroupStatus[] {
    return [...this.bySlug.values()].map((r) => r.status());
  }

  /** Relay shutdown: every runtime requeues its running turns and stops its agent. */
  async shutdownAll(reason: string): Promise<void> {
    await Promise.all([...this.bySlug.values()].map((r) => r.shutdown(reason)));
  }
}
