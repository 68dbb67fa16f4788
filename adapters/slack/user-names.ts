/**
 * Display names of Slack users, learned with `users.info` AFTER a message is stored (never on the
 * way in: the inbox write comes first), so a person's first message may show their id to Codex and
 * later ones their name. Bounded in size; lookups for one user are never run twice at once.
 *
 * Error contract: `learn` never throws (failures are logged at debug and retried on a later message).
 */
import type { webApi } from '@slack/bolt';
import { z } from 'zod';
import type { Logger } from '../../src/logger.js';

const UserInfoSchema = z.object({
  user: z.object({
    name: z.string().optional(),
    real_name: z.string().optional(),
    profile: z.object({ display_name: z.string().optional(), real_name: z.string().optional() }).optional(),
  }),
});

const MAX_ENTRIES = 5000;

export class UserNames {
  private readonly names = new Map<string, string>();
  private readonly pending = new Set<string>();

  constructor(
    private readonly client: webApi.WebClient,
    private readonly log: Logger,
  ) {}

  cached(userId: string): string | undefined {
    return this.names.get(userId);
  }

  remember(userId: string, name: string): void {
    if (this.names.size >= MAX_ENTRIES) this.names.delete(this.names.keys().next().value as string);
    this.names.set(userId, name.slice(0, 200));
  }

  /** Looks the user up in the background when the name is not known yet. */
  learn(userId: string): void {
    if (this.names.has(userId) || this.pending.has(userId)) return;
    this.pending.add(userId);
    void this.client.users
      .info({ user: userId })
      .then((raw) => {
        const parsed = UserInfoSchema.safeParse(raw);
        if (!parsed.success) return;
        const u = parsed.data.user;
        const name = u.profile?.display_name || u.profile?.real_name || u.real_name || u.name;
        if (name) this.remember(userId, name);
      })
      .catch((err: unknown) => this.log.debug({ err, userId }, 'users.info failed; keeping the id'))
      .finally(() => this.pending.delete(userId));
  }
}
