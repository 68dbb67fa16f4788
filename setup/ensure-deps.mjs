// Runs before `npm start` / `npm test`: installs dependencies when node_modules is missing or older
// than package-lock.json, so a fresh clone needs no separate install step. Plain JS: it must run
// before TypeScript tooling exists.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const marker = 'node_modules/.package-lock.json';
const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync('package-lock.json').mtimeMs;
if (stale) {
  process.stderr.write('Installing dependencies (npm ci; builds better-sqlite3, about a minute)…\n');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
