/**
 * The default CredentialGateway: the relay's own credential proxy with the key from the host vault.
 *
 * Per container start it mints a fresh stub (revoked when the container stops) and picks the route:
 *   - egress `open`:   the relay's bridge network; the proxy listens on its gateway address.
 *   - egress `locked`: an `internal: true` network (`<DOCKER_NETWORK>-locked`), created on first use;
 *                      the same proxy also listens on that network's gateway, and host INPUT rules
 *                      (egress-lock.ts) leave that one address:port as the only thing a locked
 *                      container can reach. Rules are re-verified before every locked start.
 *
 * Error contract: `prepare` throws ContainerStartError when the locked route cannot be built or
 * verified (fail closed); open groups never depend on iptables.
 */
import type Dockerode from 'dockerode';
import { ensureNetwork } from '../containers/docker-runtime.js';
import { ContainerStartError } from '../containers/runtime.js';
import { STUB_ENV_NAME } from '../groups/group-home.js';
import type { Logger } from '../logger.js';
import type { CredentialProxy } from './credential-proxy.js';
import { bridgeNameOf, egressChainName, EgressLock, EgressLockError, type IptablesRunner } from './egress-lock.js';
import type { AgentCredentials, CredentialGateway, GatewayGroup, GatewayStats } from './gateway.js';
import type { StubRegistry } from './stubs.js';

interface Route {
  network: string;
  proxyUrl: string;
}

interface LockedRoute extends Route {
  lock: EgressLock;
}

export interface BuiltinGatewayOptions {
  docker: Dockerode;
  proxy: CredentialProxy;
  stubs: StubRegistry;
  /** The open network (already created) and the proxy URL on its gateway. */
  open: Route;
  /** Name of the internal network for locked groups; created on the first locked start. */
  lockedNetwork: string;
  /** Port for the proxy's listener on the locked gateway (0 = any free port). */
  proxyPort: number;
  iptables?: IptablesRunner;
  log: Logger;
}

export class BuiltinGateway implements CredentialGateway {
  readonly kind = 'builtin' as const;
  private locked: Promise<LockedRoute> | undefined;

  constructor(private readonly options: BuiltinGatewayOptions) {}

  async prepare(group: GatewayGroup): Promise<AgentCredentials> {
    const route = group.egress === 'locked' ? await this.lockedRoute() : this.options.open;
    const { stubs } = this.options;
    const stub = stubs.mint(group.slug);
    return {
      modelBaseUrl: route.proxyUrl,
      env: { [STUB_ENV_NAME]: stub },
      mounts: [],
      extraHosts: [],
      network: route.network,
      release: () => stubs.revoke(stub),
    };
  }

  stats(): GatewayStats {
    return { kind: this.kind, ...this.options.proxy.snapshot() };
  }

  async close(): Promise<void> {
    const route = await this.locked?.catch(() => undefined);
    await route?.lock.release();
    await this.options.proxy.close().catch(() => undefined);
  }

  private async lockedRoute(): Promise<LockedRoute> {
    // Built once (network + listener); a failed build is forgotten so the next start retries.
    const building = (this.locked ??= this.buildLockedRoute());
    let route: LockedRoute;
    try {
      route = await building;
    } catch (err) {
      if (this.locked === building) this.locked = undefined;
      throw err;
    }
    try {
      await route.lock.ensure();
    } catch (err) {
      const why = err instanceof EgressLockError ? err.message : String(err);
      this.options.log.error({ network: route.network, err: why }, 'egress lock could not be verified; locked container not started');
      throw new ContainerStartError(
        `this group's egress is locked, but the relay could not install its firewall rules (${why}). ` +
          'Locked groups need the relay to run as root on a host with iptables; or set the group to open egress.',
        { cause: err },
      );
    }
    return route;
  }

  private async buildLockedRoute(): Promise<LockedRoute> {
    const { docker, proxy, proxyPort, lockedNetwork, iptables, log } = this.options;
    const net = await ensureNetwork(docker, lockedNetwork, { internal: true });
    const info = (await docker.getNetwork(net.name).inspect()) as Dockerode.NetworkInspectInfo & { Options?: Record<string, string> | null };
    if (info.Driver !== 'bridge') throw new ContainerStartError(`Docker network ${net.name} uses driver ${info.Driver}; locked egress needs a bridge network`);
    if (info.EnableIPv6) {
      throw new ContainerStartError(`Docker network ${net.name} has IPv6 enabled, which the egress lock does not cover; remove it (docker network rm ${net.name})`);
    }
    const proxyUrl = await proxy.listen(net.gateway, proxyPort);
    const lock = new EgressLock(
      { bridge: bridgeNameOf(info), gateway: net.gateway, port: Number(new URL(proxyUrl).port), chain: egressChainName(info.Id) },
      iptables,
    );
    log.info({ network: net.name, bridge: lock.spec.bridge, proxyUrl }, 'locked-egress network ready');
    return { network: net.name, proxyUrl, lock };
  }
}
