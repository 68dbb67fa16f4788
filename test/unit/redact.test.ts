import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/vault/redact.js';

describe('createRedactor', () => {
  const redact = createRedactor(() => ['vault-value-123456']);
  it.each([
    ['vault values', 'key is vault-value-123456!', 'key is [redacted]!'],
    ['OpenAI-shaped keys', 'use sk-proj-abcdefghijklmnopqrstuv now', 'use [redacted] now'],
    ['stub tokens', 'token crs_abcdefghijklmnopqrstuvwx', 'token [redacted]'],
    ['bearer headers', 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz', 'Authorization: [redacted]'],
    ['ordinary text', 'nothing secret here', 'nothing secret here'],
  ])('removes %s', (_name, input, expected) => expect(redact(input)).toBe(expected));
});
