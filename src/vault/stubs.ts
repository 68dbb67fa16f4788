/**
 * Per-group stub tokens. A stub is what a container holds instead of a credential: random, minted
 * at each container start, revoked when the container stops, and worthless outside our proxy.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface StubIssuer {
  /** Mints a fresh stub for a group's new container. */
  mint(groupSlug: string): string;
  /** Revokes a stub; unknown stubs are ignored. */
  revoke(stub: string): void;
}

export class StubRegistry implements StubIssuer {
  private readonly byStub = new Map<string, string>();

  mint(groupSlug: string): string {
    const stub = `crs_${randomBytes(24).toString('base64url')}`;
    this.byStub.set(stub, groupSlug);
    return stub;
  }

  revoke(stub: string): void {
    this.byStub.delete(stub);
  }

  /** The group a presented stub belongs to, or undefined. Compares in constant time per entry. */
  groupFor(presented: string): string | undefined {
    const given = Buffer.from(presented);
    for (const [stub, group] of this.byStub) {
      const known = Buffer.from(stub);
      if (known.length === given.length && timingSafeEqual(known, given)) return group;
    }
    return undefined;
  }

  /** All live stubs, for redaction. */
  live(): string[] {
    return [...this.byStub.keys()];
  }
}
