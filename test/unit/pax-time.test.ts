import { describe, expect, it } from 'vitest';
import { paxTime } from '../../layers/tar-header.js';

describe('pax times for utimes', () => {
  it('lands in the middle of the intended microsecond, so truncation keeps it exactly', () => {
    for (const [v, sec, us] of [['1796245145.255314999', 1796245145, 255314], ['981173106.123456789', 981173106, 123456], ['1796245145.255315', 1796245145, 255315], ['12', 12, 0], ['1796245145.9999999', 1796245145, 999999]] as const) {
      const t = paxTime(v);
      expect(Math.floor(t)).toBe(sec);
      expect(Math.floor((t - sec) * 1e6)).toBe(us);
    }
  });
});
