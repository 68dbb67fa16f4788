/**
 * The in-memory registry of group runtimes: exactly one GroupRuntime per group slug, created on
 * first use. Because creation is synchronous and keyed by slug, concurrent first messages for a
 * group always meet the same runtime, and so the same (single) container start.
 */
import type { Group } from '../db/rows.js';
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

  statuses(): GroupStatus[] {
    return [...this.bySlug.values()].map((r) => r.status());
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.bySlug.values()].map((r) => r.stop(reason)));
  }
}
