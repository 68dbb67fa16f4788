import { describe, expect, it } from 'vitest';
import { containerSandbox } from '../../src/groups/sandbox.js';

describe('containerSandbox', () => {
  it.each([
    ['read-only', 'open', true, 'enabled'],
    ['workspace-write', 'open', false, 'enabled'],
    ['danger-full-access', 'open', false, 'enabled'],
    ['workspace-write', 'locked', false, 'restricted'],
    ['read-only', 'locked', true, 'restricted'],
  ] as const)('%s with %s egress', (sandboxMode, egress, readOnly, network) => {
    const result = containerSandbox({ sandboxMode, egress });
    expect(result.workspaceReadOnly).toBe(readOnly);
    expect(result.turnPolicy).toEqual({ type: 'externalSandbox', networkAccess: network });
  });
});
