/**
 * Host firewall for `locked` egress: a locked agent container may reach the credential proxy and
 * nothing else.
 *
 * Why a Docker `internal: true` network is not enough (verified on Docker 20.10, bridge driver): it
 * stops *forwarding* (Docker drops packets leaving the bridge for other networks), but the
 * container still gets a default route via the bridge's gateway address, and any packet for an
 * address of the host itself is local delivery, which goes through the INPUT chain that Docker
 * leaves alone. A throwaway listener on 0.0.0.0 answered from inside an internal-network container
 * on the gateway IP and even on docker0's 172.17.0.1. So the relay adds its own INPUT rules:
 *
 *   INPUT   -i <locked bridge> -j CRL-<network id>          (inserted first)
 *   CRL-…   -p tcp -d <gateway> --dport <proxy port> -j ACCEPT   (one per relay listening there)
 *           -p tcp -j REJECT --reject-with tcp-reset
 *           -j REJECT --reject-with icmp-port-unreachable
 *
 * REJECT rather than DROP, so a blocked connect fails at once instead of hanging the agent.
 * Docker's embedded DNS (127.0.0.11) lives inside the container's own network namespace and is not
 * affected. IPv6: Docker disables it inside containers on networks without EnableIPv6 (checked:
 * `disable_ipv6 = 1`, no addresses), and the relay refuses a locked network that has it enabled.
 *
 * Fail closed: `ensure` throws EgressLockError when the rules cannot be verified or installed (no
 * iptables, relay not root); the caller then does not start the container. Rules are checked on
 * every locked container start (`-C` is cheap), so a firewall reload that wiped them is repaired
 * before the next container runs. `release` removes only this relay's ACCEPT rule; the REJECT rules
 * stay, so a locked bridge is never left open.
 */
import { execFile } from 'node:child_process';

export class EgressLockError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EgressLockError';
  }
}

export interface EgressLockSpec {
  /** Linux bridge interface of the locked Docker network (e.g. br-1de3c3ee14e7). */
  bridge: string;
  /** The network's gateway address: where the proxy listens for locked containers. */
  gateway: string;
  /** The proxy's port on that address. */
  port: number;
  /** Chain name; one per locked network (see egressChainName). */
  chain: string;
}

/** Runs `iptables <args>`; resolves with the exit code (never rejects for a non-zero exit). */
export type IptablesRunner = (args: string[]) => Promise<{ code: number; stderr: string }>;

/** iptables chain names are at most 28 characters. */
export function egressChainName(networkId: string): string {
  return `CRL-${networkId.slice(0, 12)}`;
}

/** The Linux bridge of a Docker bridge network: its explicit name option, else br-<id prefix>. */
export function bridgeNameOf(network: { Id: string; Options?: Record<string, string> | null }): string {
  return network.Options?.['com.docker.network.bridge.name'] || `br-${network.Id.slice(0, 12)}`;
}

/** The rules, as iptables argument lists. Pure; kept apart so the rule set is readable and tested. */
export function egressRules(spec: EgressLockSpec) {
  return {
    jump: ['INPUT', '-i', spec.bridge, '-j', spec.chain],
    accept: [spec.chain, '-p', 'tcp', '-d', `${spec.gateway}/32`, '--dport', String(spec.port), '-j', 'ACCEPT'],
    rejectTcp: [spec.chain, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'],
    rejectRest: [spec.chain, '-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'],
  };
}

export class EgressLock {
  constructor(
    readonly spec: EgressLockSpec,
    private readonly run: IptablesRunner = runIptables,
  ) {}

  /** Makes sure the rules are in place (idempotent). Throws EgressLockError (fail closed). */
  async ensure(): Promise<void> {
    const rules = egressRules(this.spec);
    try {
      if ((await this.run(['-n', '-L', this.spec.chain])).code !== 0) {
        // A concurrent relay may create it between our check and here: "already exists" is fine.
        const created = await this.run(['-N', this.spec.chain]);
        if (created.code !== 0 && !/exists/i.test(created.stderr)) throw new EgressLockError(`iptables -N ${this.spec.chain}: ${created.stderr.trim()}`);
      }
      // Terminal rules first (appended), then our ACCEPT above them, then the jump that activates it all.
      await this.ensureRule(rules.rejectTcp, 'append');
      await this.ensureRule(rules.rejectRest, 'append');
      await this.ensureRule(rules.accept, 'insert');
      await this.ensureRule(rules.jump, 'insert');
    } catch (err) {
      if (err instanceof EgressLockError) throw err;
      throw new EgressLockError(describeRunFailure(err), { cause: err });
    }
  }

  /** Removes this relay's ACCEPT rule. Never throws. */
  async release(): Promise<void> {
    const [chain, ...rest] = egressRules(this.spec).accept;
    await this.run(['-D', chain!, ...rest]).catch(() => undefined);
  }

  private async ensureRule(rule: string[], how: 'append' | 'insert'): Promise<void> {
    const [chain, ...rest] = rule;
    if ((await this.run(['-C', chain!, ...rest])).code === 0) return;
    const added = await this.run(how === 'append' ? ['-A', chain!, ...rest] : ['-I', chain!, '1', ...rest]);
    if (added.code !== 0) throw new EgressLockError(`iptables ${how === 'append' ? '-A' : '-I'} ${rule.join(' ')}: ${added.stderr.trim()}`);
  }
}

/** Removes the jump and the whole chain of a locked network (tests and `docker network rm` cleanup). Never throws. */
export async function removeEgressChain(bridge: string, chain: string, run: IptablesRunner = runIptables): Promise<void> {
  while ((await run(['-D', 'INPUT', '-i', bridge, '-j', chain]).catch(() => ({ code: 1, stderr: '' }))).code === 0) {
    // a jump inserted twice (two relays racing) is removed twice
  }
  await run(['-F', chain]).catch(() => undefined);
  await run(['-X', chain]).catch(() => undefined);
}

/** `iptables -w …` (waits for the xtables lock instead of failing when Docker holds it). */
export function runIptables(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('iptables', ['-w', ...args], { timeout: 15_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve({ code: 0, stderr: String(stderr) });
      const code = (err as NodeJS.ErrnoException).code;
      // Spawn failures (no binary, no permission to exec) are not an exit status: reject.
      if (typeof code === 'string') return reject(err);
      resolve({ code: typeof code === 'number' ? code : 1, stderr: String(stderr) });
    });
  });
}

function describeRunFailure(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (code === 'ENOENT') return 'iptables is not installed on the relay host';
  if (code === 'EACCES' || code === 'EPERM') return 'the relay may not run iptables (run it as root)';
  return err instanceof Error ? err.message : String(err);
}
