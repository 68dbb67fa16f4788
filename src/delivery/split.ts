/**
 * Splits a long answer into platform-sized messages without breaking code blocks: a chunk that ends
 * inside a ``` fence closes it, and the next chunk reopens it with the same info string.
 * Pure; table-tested.
 */

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

/** Splits `text` into chunks of at most `max` characters. `max` must leave room for a fence (≥ 40). */
export function splitMessage(text: string, max: number): string[] {
  if (max < 40) throw new RangeError('max must be at least 40 characters');
  if (text.length <= max) return [text];
  const lines = text.split('\n');
  const chunks: string[] = [];
  let current: string[] = [];
  let currentLength = 0;
  let openFence: string | undefined; // the full opening fence line while inside a code block

  const closingFor = (fenceLine: string) => (FENCE.exec(fenceLine)?.[2] ?? '```');
  const flush = () => {
    if (current.length === 0) return;
    const body = openFence ? [...current, closingFor(openFence)] : current;
    chunks.push(body.join('\n'));
    current = openFence ? [openFence] : [];
    currentLength = openFence ? openFence.length : 0;
  };
  // Room reserved for the closing fence a chunk may need.
  const reserve = () => (openFence ? closingFor(openFence).length + 1 : 0);

  for (const rawLine of lines) {
    // A single line longer than a chunk is cut into pieces on its own.
    const pieces = cutLongLine(rawLine, Math.max(20, max - 10 - (openFence ? openFence.length * 2 + 2 : 0)));
    for (const line of pieces) {
      const added = (current.length > 0 ? 1 : 0) + line.length;
      if (currentLength + added + reserve() > max && current.length > (openFence ? 1 : 0)) flush();
      current.push(line);
      currentLength += (current.length > 1 ? 1 : 0) + line.length;
      const fence = FENCE.exec(line);
      if (fence) openFence = openFence ? undefined : line.trimStart();
    }
  }
  if (current.length > 0) {
    if (openFence) current.push(closingFor(openFence));
    chunks.push(current.join('\n'));
  }
  return chunks.filter((c) => c.trim().length > 0);
}

function cutLongLine(line: string, size: number): string[] {
  if (line.length <= size) return [line];
  const out: string[] = [];
  let rest = line;
  while (rest.length > size) {
    // Prefer a space near the cut so words stay whole.
    const space = rest.lastIndexOf(' ', size);
    const at = space > size * 0.6 ? space : size;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).replace(/^ /, '');
  }
  out.push(rest);
  return out;
}
