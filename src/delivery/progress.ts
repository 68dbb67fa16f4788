/**
 * What the progress message says while Codex works. Pure: a reducer over turn events and a
 * renderer, so the wording is table-tested and the reporter only decides when to post.
 */
import type { TurnEvent } from '../codex/client.js';

export interface ProgressState {
  startedAt: number;
  commandsRun: number;
  filesChanged: Set<string>;
  current?: string;
  retrying?: string;
}

export function initialProgress(now: number): ProgressState {
  return { startedAt: now, commandsRun: 0, filesChanged: new Set() };
}

/** Shortens a command the way a person would read it: strips the `bash -lc '…'` wrapper. */
export function displayCommand(command: string, max = 80): string {
  const wrapped = /^\/?(?:usr\/)?(?:bin\/)?(?:ba)?sh\s+-l?c\s+'([\s\S]*)'$/.exec(command.trim());
  const inner = (wrapped?.[1] ?? command).replace(/\s+/g, ' ').trim();
  return inner.length > max ? `${inner.slice(0, max - 1)}…` : inner;
}

export function reduceProgress(state: ProgressState, event: TurnEvent): ProgressState {
  switch (event.kind) {
    case 'itemStarted': {
      const item = event.item;
      if (item.type === 'commandExecution') return { ...state, current: `running \`${displayCommand(item.command)}\``, retrying: undefined };
      if (item.type === 'fileChange') return { ...state, current: `editing ${item.changes.map((c) => c.path.split('/').pop()).join(', ')}` };
      if (item.type === 'reasoning') return { ...state, current: 'thinking' };
      if (item.type === 'mcpToolCall') return { ...state, current: `using ${item.server}/${item.tool}` };
      if (item.type === 'webSearch') return { ...state, current: 'searching the web' };
      return state;
    }
    case 'itemCompleted': {
      const item = event.item;
      if (item.type === 'commandExecution') return { ...state, commandsRun: state.commandsRun + 1, current: undefined };
      if (item.type === 'fileChange') {
        const files = new Set(state.filesChanged);
        for (const change of item.changes) files.add(change.path);
        return { ...state, filesChanged: files, current: undefined };
      }
      return state;
    }
    case 'agentDelta':
      return state.current === 'writing the answer' ? state : { ...state, current: 'writing the answer' };
    case 'retrying':
      return { ...state, retrying: event.message };
    default:
      return state;
  }
}

export function renderProgress(state: ProgressState, now: number): string {
  const seconds = Math.max(0, Math.round((now - state.startedAt) / 1000));
  const parts = [`:hourglass_flowing_sand: Working… ${seconds}s`];
  if (state.current) parts.push(state.current);
  const done: string[] = [];
  if (state.commandsRun > 0) done.push(`${state.commandsRun} command${state.commandsRun === 1 ? '' : 's'} run`);
  if (state.filesChanged.size > 0) done.push(`${state.filesChanged.size} file${state.filesChanged.size === 1 ? '' : 's'} changed`);
  if (done.length) parts.push(done.join(', '));
  if (state.retrying) parts.push(`(model API: ${state.retrying})`);
  return parts.join(' · ');
}
