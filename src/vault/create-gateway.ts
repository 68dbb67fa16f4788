/**
 * Picks and builds the CredentialGateway from the config: OneCLI when ONECLI_URL is set, else the
 * built-in proxy bound to the relay network's gateway (or PROXY_BIND_HOST). Ensures the relay's
 * open Docker network exists either way. Throws when the network or the proxy listener cannot be
 * set up (the relay does not start without a way to keep keys out of containers).
 */
import type Dockerode from 'dockerode';
import type { Config } from '../config.js';
import { ensureNetwork } from '../containers/docker-runtime.js';
import type { Logger } from '../logger.js';
import { BuiltinGateway } from './builtin-gateway.js';
import { CredentialProxy } from './credential-proxy.js';
import type { CredentialGateway } from './gateway.js';
import { OneCliGateway } from './onecli-gateway.js';
import type { StubRegistry } from './stubs.js';
import type { Vault } from './vault.js';

/** The internal network locked groups join: `<DOCKER_NETWORK>-locked`. */
export function lockedNetworkName(config: Pick<Config, 'dockerNetwork'>): string {
  return `${config.dockerNetwork}-locked`;
}

export async function createCredentialGateway(deps: {
  config: Config;
  docker: Dockerode;
  vault: Vault;
  stubs: StubRegistry;
  log: Logger;
}): Promise<CredentialGateway> {
  const { config, docker, vault, stubs, log } = deps;
  const network = await ensureNetwork(docker, config.dockerNetwork);
  if (config.onecliUrl) {
    log.info({ onecli: new URL(config.onecliUrl).origin }, 'credentials via OneCLI; the built-in proxy is off');
    return new OneCliGateway({
      url: config.onecliUrl,
      apiKey: () => vault.onecliApiKey,
      network: network.name,
      modelBaseUrl: config.openaiUpstreamUrl,
      dataDir: config.dataDir,
      log: log.child({ part: 'onecli' }),
    });
  }
  const proxy = new CredentialProxy({
    upstream: config.openaiUpstreamUrl,
    stubs,
    realKey: () => vault.openaiApiKey,
    log: log.child({ part: 'proxy' }),
  });
  const proxyUrl = await proxy.listen(config.proxyBindHost || network.gateway, config.proxyPort);
  return new BuiltinGateway({
    docker,
    proxy,
    stubs,
    open: { network: network.name, proxyUrl },
    lockedNetwork: lockedNetworkName(config),
    proxyPort: config.proxyPort,
    log: log.child({ part: 'proxy' }),
  });
}
