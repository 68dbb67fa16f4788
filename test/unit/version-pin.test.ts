/**
 * One codex version everywhere: the Dockerfile's CODEX_VERSION default, the @openai/codex devDependency
 * (whose generated protocol types the relay compiles against) and the copy actually installed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultAgentImageTag } from '../../setup/build-image.js';

const root = new URL('../../', import.meta.url);
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(path, root), 'utf8')) as Record<string, unknown>;

describe('codex version pin', () => {
  const pkg = readJson('package.json') as { devDependencies?: Record<string, string> };
  const pinned = pkg.devDependencies?.['@openai/codex'];

  it('package.json pins @openai/codex to an exact version', () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('the Dockerfile defaults CODEX_VERSION to the pinned version, once', () => {
    const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
    const defaults = [...dockerfile.matchAll(/^ARG CODEX_VERSION=(\S+)\s*$/gm)].map((m) => m[1]);
    expect(defaults).toEqual([pinned]);
  });

  it('node_modules holds the pinned version (and its linux-x64 binary, when installed)', () => {
    expect(readJson('node_modules/@openai/codex/package.json').version).toBe(pinned);
    let platformPkg: Record<string, unknown> | undefined;
    try {
      platformPkg = readJson('node_modules/@openai/codex-linux-x64/package.json');
    } catch {
      platformPkg = undefined; // another platform: nothing to compare
    }
    if (platformPkg) expect(platformPkg.version).toBe(`${pinned}-linux-x64`);
  });

  it('the default agent image tag carries the pinned version', () => {
    expect(defaultAgentImageTag()).toBe(`codex-relay-agent:${pinned}`);
  });
});
