/**
 * Composition root: builds the relay from a validated Config. Everything is passed in at
 * construction (no module globals), so tests build the same app with a fake model upstream and a
 * test chat adapter, and `main.ts` builds it with the real ones.
 */
import Dockerode from 'dockerode';
import type { ChatAdapter } from './chat/adapter.js';
import type { Config } from './config.js';
import { DockerRuntime } from './containers/docker-runtime.js';
import type { ContainerRuntime } from './containers/runtime.js';
import type { Platform } from './core/inbound.js';
import { Store } from './db/store.js';
import type { Logger } from './logger.js';
import { ArchiveService } from './archive/archive-service.js';
import { GroupRuntimes } from './router/group-runtimes.js';
import { Router } from './router/router.js';
import { createCredentialGateway } from './vault/create-gateway.js';
import type { CredentialGateway } from './vault/gateway.js';
import { createRedactor, type Redactor } from './vault/redact.js';
import { StubRegistry } from './vault/stubs.js';
import { Vault } from './vault/vault.js';
import { codexVersion } from './version.js';

export interface AppOverrides {
  docker?: Dockerode;
  /** Extra config.toml lines for agents (tests shorten model retries). */
  agentConfigExtra?: string;
  progressIntervalMs?: number;
  /** Benchmark hook: called right before `turn/start` is written for an inbox row. */
  onTurnStartSent?: (inboxId: number) => void;
  /** How often archive retention runs after the start-up run (default daily). */
  retentionIntervalMs?: number;
}

export class RelayApp {
  private constructor(
    /** Delivery path per platform; shared with the group runtimes, filled by registerAdapter. */
    private readonly adapters: Map<Platform, ChatAdapter>,
    readonly config: Config,
    readonly store: Store,
    readonly vault: Vault,
    readonly stubs: StubRegistry,
    /** Built-in credential proxy (default) or OneCLI: how containers reach the model without a key. */
    readonly credentials: CredentialGateway,
    readonly containers: ContainerRuntime,
    readonly runtimes: GroupRuntimes,
    readonly router: Router,
    readonly redact: Redactor,
    readonly log: Logger,
    /** Exchange archive: files, posting policy, `/codex archive` (transcriptFor / postTranscript), retention. */
    readonly archive: ArchiveService,
  ) {}

  static async create(config: Config, log: Logger, overrides: AppOverrides = {}): Promise<RelayApp> {
    const docker = overrides.docker ?? new Dockerode();
    const store = Store.open(config.dataDir, log, { groupDefaults: config.groupDefaults });
    let credentials: CredentialGateway | undefined;
    try {
      const vault = Vault.open(config.dataDir);
      const stubs = new StubRegistry();
      const redact = createRedactor(() => [...vault.secrets(), ...stubs.live()]);
      credentials = await createCredentialGateway({ config, docker, vault, stubs, log });
      const containers = new DockerRuntime({ docker, image: config.agentImage, instanceId: config.instanceId, log: log.child({ part: 'docker' }) });
      // A previous run's containers lost their stdio when it stopped; their threads resume from
      // the group's Codex home, so the containers themselves are removed, not adopted.
      for (const leftover of await containers.listManaged()) {
        log.info({ containerId: leftover.containerId, group: leftover.groupSlug }, 'removing container left by a previous run');
        await containers.remove(leftover.containerId);
      }
      const adapters = new Map<Platform, ChatAdapter>();
      const archive = new ArchiveService({ store, dataDir: config.dataDir, adapterFor: (p) => adapters.get(p), redact, log: log.child({ part: 'archive' }) });
      const runtimes = new GroupRuntimes({
        store,
        containers,
        credentials,
        dataDir: config.dataDir,
        clientVersion: codexVersion(),
        agentConfigExtra: overrides.agentConfigExtra,
        progressIntervalMs: overrides.progressIntervalMs,
        onTurnStartSent: overrides.onTurnStartSent,
        onExchange: (id, group, target, delivered) => archive.onExchange(id, group, target, delivered),
        adapterFor: (platform) => adapters.get(platform),
        redact,
        log,
      });
      const router = new Router(store, runtimes, log.child({ part: 'router' }));
      archive.startRetention(overrides.retentionIntervalMs);
      return new RelayApp(adapters, config, store, vault, stubs, credentials, containers, runtimes, router, redact, log, archive);
    } catch (err) {
      await credentials?.close(); // the proxy listener must not outlive a failed start
      store.close();
      throw err;
    }
  }

  /** Makes an adapter the delivery path for its platform. */
  registerAdapter(adapter: ChatAdapter): void {
    this.adapters.set(adapter.platform, adapter);
  }

  /** Stops every agent, the proxy and the store. Never throws. */
  async stop(reason = 'shutdown'): Promise<void> {
    await this.runtimes.shutdownAll(reason).catch((err: unknown) => this.log.warn({ err }, 'stopping agents failed'));
    await this.credentials.close().catch(() => undefined);
    this.archive.close();
    this.store.close();
  }
}
