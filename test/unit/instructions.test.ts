import { describe, expect, it } from 'vitest';
import { AGENTS_MD_CAP_BYTES, capUtf8, composeAgentsMd } from '../../src/groups/instructions.js';
import { groupPaths, renderAgentConfig } from '../../src/groups/group-home.js';

describe('composeAgentsMd', () => {
  it('has the base, the platform rules, shared and group text in that order', () => {
    const md = composeAgentsMd({ platform: 'slack', groupName: 'eng', groupInstructions: 'GROUP-TEXT', sharedInstructions: 'SHARED-TEXT' });
    expect(md).toContain('Slack');
    expect(md.indexOf('SHARED-TEXT')).toBeLessThan(md.indexOf('GROUP-TEXT'));
  });

  it('caps at 32 KiB with a visible marker', () => {
    const md = composeAgentsMd({ platform: 'discord', groupName: 'g', groupInstructions: 'é'.repeat(40_000) });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(AGENTS_MD_CAP_BYTES);
    expect(md).toContain('instructions cut here');
    expect(md).not.toContain('\uFFFD');
  });

  it('capUtf8 leaves short text alone', () => {
    expect(capUtf8('abc', 100)).toBe('abc');
  });
});

describe('group home', () => {
  it.each(['../etc', 'a/b', '', 'UPPER', '-lead', 'x'.repeat(64)])('refuses slug %j', (slug) => {
    expect(() => groupPaths('/data', slug)).toThrow();
  });

  it('keeps group folders inside the data dir', () => {
    expect(groupPaths('/data', 'eng-1').workspace).toBe('/data/groups/eng-1/workspace');
  });

  it('points the agent at the proxy with a stub env key and no secret', () => {
    const toml = renderAgentConfig({ model: 'gpt-5.5', reasoningEffort: 'high', approvalPolicy: 'never', proxyUrl: 'http://172.18.0.1:4000/' });
    expect(toml).toContain('base_url = "http://172.18.0.1:4000/v1"');
    expect(toml).toContain('env_key = "CODEX_RELAY_TOKEN"');
    expect(toml).not.toMatch(/sk-/);
  });
});
