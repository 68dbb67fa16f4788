/**
 * Core pipeline benchmark, all against the same fake model in one run:
 *   (a) raw app-server turn: the pinned codex binary on the host, our client, no router
 *   (b) warm turn through router + container (accept → answer delivered)
 *   (c) cold turn: no container yet (accept → answer delivered)
 *   (d) routing overhead: InboundMessage accepted → turn/start written, over 200 messages in 20 groups
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RelayApp } from '../src/app.js';
import { AppServerClient } from '../src/codex/client.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { startFakeResponses } from '../test/fakes/fake-responses.js';
import { cleanupCodex, makeCodexHome, makeTempDir, spawnHostCodex } from '../test/helpers/codex-home.js';
import { agentImage } from '../test/helpers/docker.js';
import { answered, RecordingAdapter } from '../test/helpers/recording-adapter.js';
import { median, ms, percentile } from './stats.js';

const WARM_TURNS = 40;
const COLD_TURNS = 5;
const GROUPS = 20;
const ROUNDS = 10;

export interface CoreResults {
  rawMedianMs: number;
  warmMedianMs: number;
  coldMedianMs: number;
  routingP50Ms: number;
  routingP99Ms: number;
  routingSamples: number;
  burstP50Ms: number;
  burstP99Ms: number;
}

/** A codex app-server on the host with one thread: the baseline without router or container. */
async function rawSession(baseUrl: string): Promise<{ turn: (i: number) => Promise<number>; close: () => Promise<void> }> {
  const home = makeCodexHome({ baseUrl });
  const child = spawnHostCodex({ codexHome: home, cwd: makeTempDir('bench-cwd-') });
  const client = await AppServerClient.connect({ input: child.stdout, output: child.stdin, log: silentLogger(), version: 'bench', approvals: { commands: 'accept', fileChanges: 'accept' } });
  const { thread } = await client.startThread({ cwd: home });
  const turn = async (i: number) => {
    const start = performance.now();
    const handle = await client.startTurn({ threadId: thread.id, input: [{ type: 'text', text: `raw ${i}`, text_elements: [] }] });
    await handle.completed;
    return performance.now() - start;
  };
  await turn(-1); // the first turn of a thread is slower
  return {
    turn,
    close: async () => {
      client.close();
      await cleanupCodex();
    },
  };
}

export async function runCoreBench(print: (line: string) => void): Promise<CoreResults> {
  const fake = await startFakeResponses();
  const dataDir = mkdtempSync(join(tmpdir(), 'relay-bench-'));
  const sent = new Map<number, number>();
  const accepted = new Map<number, number>();
  let app: RelayApp | undefined;
  try {
    const rawAgent = await rawSession(fake.baseUrl);

    const config = loadConfig({ DATA_DIR: dataDir, OPENAI_UPSTREAM_URL: fake.url, AGENT_IMAGE: agentImage(), DOCKER_NETWORK: 'codex-relay-bench', RELAY_INSTANCE_ID: 'bench', DEFAULT_MODEL: 'gpt-test' });
    app = await RelayApp.create(config, silentLogger(), {
      agentConfigExtra: 'request_max_retries = 0\nstream_max_retries = 0',
      onTurnStartSent: (inboxId) => sent.set(inboxId, performance.now()),
    });
    app.vault.setOpenaiApiKey('sk-bench-not-a-real-key-000000');
    const adapter = new RecordingAdapter('local');
    app.registerAdapter(adapter);
    let n = 0;
    const ask = async (slug: string, threadKey: string): Promise<number> => {
      n += 1;
      const text = `bench message ${n}`;
      const start = performance.now();
      const result = app!.router.accept({ platform: 'local', chatKey: `local:bench:${slug}`, threadKey, channelId: slug, userId: 'U', userName: 'u', text, eventId: `bench-${n}` });
      if (result.status !== 'accepted') throw new Error(`not accepted: ${JSON.stringify(result)}`);
      accepted.set(result.inboxId, start);
      await adapter.waitFor(threadKey, answered(text));
      return performance.now() - start;
    };
    for (let g = 0; g < GROUPS; g += 1) app.store.groups.create({ slug: `bench-${g}`, chatKey: `local:bench:bench-${g}`, platform: 'local', name: `bench ${g}` });

    print('(c) cold turns (container start + handshake + thread + turn) …');
    const cold: number[] = [];
    for (let i = 0; i < COLD_TURNS; i += 1) {
      await app.runtimes.find('bench-0')?.stop('bench: force a cold start');
      cold.push(await ask('bench-0', `cold-${i}`));
    }

    print('(a)+(b) raw turns on the host, interleaved with warm turns through router + container …');
    await ask('bench-0', 'warm');
    const raw: number[] = [];
    const warm: number[] = [];
    // Interleaved so both see the same machine noise.
    for (let i = 0; i < WARM_TURNS; i += 1) {
      raw.push(await rawAgent.turn(i));
      warm.push(await ask('bench-0', 'warm'));
    }
    await rawAgent.close();

    print(`(d) routing overhead: ${GROUPS} groups × ${ROUNDS} rounds …`);
    await Promise.all(Array.from({ length: GROUPS }, (_, g) => ask(`bench-${g}`, `route-${g}`))); // warm every group's container and thread
    const overheads = () => [...accepted].map(([id, at]) => (sent.get(id) ?? Number.NaN) - at).filter((v) => Number.isFinite(v));
    // One message at a time, round-robin over the groups: the router's own cost.
    sent.clear();
    accepted.clear();
    for (let round = 0; round < ROUNDS; round += 1) {
      for (let g = 0; g < GROUPS; g += 1) await ask(`bench-${g}`, `route-${g}`);
    }
    const routing = overheads();
    // All 20 groups at once: each message also waits for the other 19 to be accepted and stored.
    sent.clear();
    accepted.clear();
    for (let round = 0; round < ROUNDS; round += 1) {
      await Promise.all(Array.from({ length: GROUPS }, (_, g) => ask(`bench-${g}`, `route-${g}`)));
    }
    const burst = overheads();

    const results: CoreResults = {
      rawMedianMs: median(raw),
      warmMedianMs: median(warm),
      coldMedianMs: median(cold),
      routingP50Ms: percentile(routing, 50),
      routingP99Ms: percentile(routing, 99),
      routingSamples: routing.length,
      burstP50Ms: percentile(burst, 50),
      burstP99Ms: percentile(burst, 99),
    };
    print('');
    print('core pipeline (same fake model, same run)');
    print(`  (a) raw app-server turn, median of ${WARM_TURNS}:        ${ms(results.rawMedianMs)}`);
    print(`  (b) warm turn via router+container, median of ${WARM_TURNS}: ${ms(results.warmMedianMs)}   (b)/(a) = ${(results.warmMedianMs / results.rawMedianMs).toFixed(2)}  [target ≤ 1.10]`);
    print(`  (c) cold turn, median of ${COLD_TURNS}:                  ${ms(results.coldMedianMs)}   (c)−(a) = ${ms(results.coldMedianMs - results.rawMedianMs)}  [target ≤ 800 ms]`);
    print(`  (d) routing overhead, ${results.routingSamples} msgs / ${GROUPS} groups: p50 ${ms(results.routingP50Ms)}, p99 ${ms(results.routingP99Ms)}  [target p99 ≤ 5 ms]`);
    print(`      same, ${GROUPS} groups at once (burst):          p50 ${ms(results.burstP50Ms)}, p99 ${ms(results.burstP99Ms)}`);
    return results;
  } finally {
    await app?.stop('bench done');
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
