/** `npm run bench`: runs every benchmark in one process and prints ratios against in-run baselines. */
import { runCoreBench } from './core.js';
import { runProxyBench } from './proxy.js';

const print = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const only = process.argv[2];
  if (!only || only === 'core') await runCoreBench(print);
  if (!only || only === 'proxy') await runProxyBench(print);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
