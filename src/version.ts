/** The pinned codex version, read from package.json so there is one source of truth. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const PackageSchema = z.object({ devDependencies: z.object({ '@openai/codex': z.string() }) });

let cached: z.infer<typeof PackageSchema> | undefined;
function pkg(): z.infer<typeof PackageSchema> {
  cached ??= PackageSchema.parse(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')));
  return cached;
}

export function codexVersion(): string {
  return pkg().devDependencies['@openai/codex'];
}
