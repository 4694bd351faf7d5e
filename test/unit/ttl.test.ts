import { describe, expect, it } from 'vitest';
import { parseTtl } from '../../server/db/deployments.js';

describe('deploy --ttl', () => {
  it('bounds the duration as a validation error, not an internal one', () => {
    expect(parseTtl('6h')).toBe(6 * 3600_000);
    expect(parseTtl('365d')).toBe(365 * 86400_000);
    for (const bad of ['999999999d', '366d', '9'.repeat(400), '0', '-1h', '1w']) {
      expect(() => parseTtl(bad), bad).toThrow(expect.objectContaining({ code: 'FERRY_E_BAD_VALUE' }));
    }
  });
});
