/**
 * Who may do what. Owners and admins come from env (RELAY_OWNER_IDS / RELAY_ADMIN_IDS) and from the
 * admins table; when neither names anyone, the first person to run `/codex setup` becomes the owner
 * (setup pairing). Talking to the bot is open to everyone in a set-up chat unless the group has an
 * allowlist. Pure decisions over the two sources.
 */
import type { Platform } from '../core/inbound.js';
import type { AdminsRepo } from '../db/admins.js';
import type { Group } from '../db/rows.js';

export type UserKey = `${Platform}:${string}`;

export function userKey(platform: Platform, userId: string): UserKey {
  return `${platform}:${userId}`;
}

export interface AccessSources {
  ownerIds: readonly string[];
  adminIds: readonly string[];
  admins: AdminsRepo;
}

export class AccessPolicy {
  constructor(private readonly sources: AccessSources) {}

  isOwner(key: UserKey): boolean {
    return this.sources.ownerIds.includes(key) || this.sources.admins.get(key)?.role === 'owner';
  }

  isAdmin(key: UserKey): boolean {
    return this.isOwner(key) || this.sources.adminIds.includes(key) || this.sources.admins.get(key) !== undefined;
  }

  /** True while nobody is owner or admin anywhere: the next setup pairs its caller as owner. */
  needsPairing(): boolean {
    return this.sources.ownerIds.length === 0 && this.sources.adminIds.length === 0 && this.sources.admins.count() === 0;
  }

  /** Makes `key` the owner if pairing is still open. Returns true when it did. */
  pairOwner(key: UserKey): boolean {
    if (!this.needsPairing()) return false;
    this.sources.admins.add(key, 'owner', null);
    return true;
  }

  addAdmin(key: UserKey, by: UserKey): void {
    this.sources.admins.add(key, 'admin', by);
  }
}

/** May this user talk to the group's agent? Everyone, unless the group has an allowlist. */
export function mayTalk(group: Pick<Group, 'allowedUsers'>, userId: string): boolean {
  return group.allowedUsers === null || group.allowedUsers.includes(userId);
}
