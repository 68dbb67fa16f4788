import { describe, expect, it } from 'vitest';
import { displayCommand, initialProgress, reduceProgress, renderProgress } from '../../src/delivery/progress.js';
import type { TurnEvent } from '../../src/codex/client.js';

describe('displayCommand', () => {
  it.each([
    ["/bin/bash -lc 'npm test'", 'npm test'],
    ["bash -lc 'ls -la\n  | head'", 'ls -la | head'],
    ['rg foo', 'rg foo'],
  ])('%s → %s', (input, expected) => expect(displayCommand(input)).toBe(expected));

  it('shortens long commands', () => {
    expect(displayCommand(`echo ${'x'.repeat(200)}`, 20)).toHaveLength(20);
  });
});

describe('progress', () => {
  it('tracks the running command, then counts it', () => {
    const started = { kind: 'itemStarted', item: { type: 'commandExecution', id: 'c1', command: "/bin/bash -lc 'make'" } } as unknown as TurnEvent;
    const done = { kind: 'itemCompleted', item: { type: 'commandExecution', id: 'c1', command: "/bin/bash -lc 'make'" } } as unknown as TurnEvent;
    let state = initialProgress(0);
    state = reduceProgress(state, started);
    expect(renderProgress(state, 3000)).toContain('running `make`');
    expect(renderProgress(state, 3000)).toContain('3s');
    state = reduceProgress(state, done);
    expect(renderProgress(state, 4000)).toContain('1 command run');
    expect(renderProgress(state, 4000)).not.toContain('running');
  });

  it('counts distinct changed files', () => {
    const change = (path: string) =>
      ({ kind: 'itemCompleted', item: { type: 'fileChange', id: path, changes: [{ path, kind: { type: 'update' }, diff: '' }] } }) as unknown as TurnEvent;
    let state = initialProgress(0);
    state = reduceProgress(state, change('/a.ts'));
    state = reduceProgress(state, change('/a.ts'));
    state = reduceProgress(state, change('/b.ts'));
    expect(renderProgress(state, 0)).toContain('2 files changed');
  });
});
