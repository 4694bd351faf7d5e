import { describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';

describe('command runner in the unit tier', () => {
  it('refuses to run anything', async () => {
    await expect(run(['true'])).rejects.toMatchObject({ code: 'FERRY_E_RUNNER_FORBIDDEN' });
  });
});
