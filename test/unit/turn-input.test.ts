import { describe, expect, it } from 'vitest';
import { safeFileName } from '../../src/groups/attachments.js';
import { buildTurnInput } from '../../src/groups/turn-input.js';
import type { InboxRow } from '../../src/db/rows.js';

const row = (extra: Partial<InboxRow['payload']> = {}): Pick<InboxRow, 'userId' | 'userName' | 'text' | 'payload'> => ({
  userId: 'U1',
  userName: 'alice',
  text: 'fix the build',
  payload: { platform: 'slack', chatKey: 'k', threadKey: 't', channelId: 'c', userId: 'U1', text: 'fix the build', eventId: 'e', attachments: [], ...extra },
});

describe('buildTurnInput', () => {
  it('names the speaker', () => {
    expect(buildTurnInput(row(), { firstTurn: true })).toEqual([{ type: 'text', text: 'alice: fix the build', text_elements: [] }]);
  });

  it('adds thread context on the first turn only', () => {
    const withContext = row({ threadContext: [{ userName: 'bob', text: 'CI is red since Monday' }] });
    const [first] = buildTurnInput(withContext, { firstTurn: true });
    const [later] = buildTurnInput(withContext, { firstTurn: false });
    expect(first?.type === 'text' && first.text).toContain('bob: CI is red since Monday');
    expect(later?.type === 'text' && later.text).not.toContain('bob:');
  });

  it('keeps the newest context when it is too long', () => {
    const threadContext = Array.from({ length: 100 }, (_, i) => ({ userName: 'u', text: `${i} ${'x'.repeat(400)}` }));
    const [input] = buildTurnInput(row({ threadContext }), { firstTurn: true });
    const text = input?.type === 'text' ? input.text : '';
    expect(text.length).toBeLessThan(21_000);
    expect(text).toContain('u: 99 ');
    expect(text).not.toContain('u: 0 ');
  });

  it('sends images as localImage and lists other files and failures', () => {
    const input = buildTurnInput(row(), {
      firstTurn: false,
      files: {
        saved: [
          { name: 'a.png', mimeType: 'image/png', containerPath: '/workspace/.chat-attachments/1/a.png', isImage: true },
          { name: 'b.csv', mimeType: 'text/csv', containerPath: '/workspace/.chat-attachments/1/b.csv', isImage: false },
        ],
        skipped: [{ name: 'huge.zip', reason: 'larger than 20 MB' }],
      },
    });
    expect(input[1]).toEqual({ type: 'localImage', path: '/workspace/.chat-attachments/1/a.png' });
    const text = input[0]?.type === 'text' ? input[0].text : '';
    expect(text).toContain('/workspace/.chat-attachments/1/b.csv (text/csv)');
    expect(text).toContain('huge.zip: larger than 20 MB');
    expect(text).not.toContain('a.png');
  });
});

describe('safeFileName', () => {
  it.each([
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', '_.._etc_passwd'],
    ['.hidden', 'hidden'],
    ['', 'file'],
    ['a\\b', 'a_b'],
  ])('%j → %j', (input, expected) => expect(safeFileName(input)).toBe(expected));
});
