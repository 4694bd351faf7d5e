/**
 * Expiry logged when it happens (issue 17): an armed deployment whose token expires is published
 * on the event stream and logged as a state change by the server's watch timer, with no other
 * change to the database to set it off.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../common/wait.js';
import { DataDir } from '../../../server/context.js';
import { armDeployment } from '../../../server/db/deployments.js';
import { addNode } from '../../../server/db/inventory.js';
import { startServer, type RunningServer } from '../../../server/index.js';
import { importImage } from '../../../server/store/image-import.js';
import { LAYOUT, smallTree, tempDir } from './helpers.js';

describe('deployment expiry', () => {
  const t = tempDir('ferry-expiry-');
  const lines: string[] = [];
  let srv: RunningServer;
  let data: DataDir;
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, any>);

  beforeAll(async () => {
    const dataDir = join(t.dir, 'data');
    srv = await startServer({
      dataDir, listen: '127.0.0.1:0',
      log: { format: 'json', level: 'info', destination: { write: (l: string) => lines.push(...l.split('\n').filter(Boolean)) } },
    });
    data = new DataDir(dataDir);
    await importImage(data, 'expimg', { dir: smallTree(join(t.dir, 'tree')), actor: 'test' });
    addNode(data, 'exp1', { macs: ['52:54:00:10:17:31'], image: 'expimg', layoutXml: LAYOUT }, 'test');
  });
  afterAll(async () => {
    data?.close();
    await srv?.close();
    t.cleanup();
  });

  it('is logged when the token expires, not at the next unrelated write', async () => {
    const armed = armDeployment(data, 'exp1', { actor: 'test', ttlMs: 2500 });
    const state = (status: string) => records().find((x) => x.msg === 'deployment state' && x.deployment === armed.id && x.status === status);
    await waitFor(() => state('armed'), { timeoutMs: 10_000, what: 'the armed state in the log' });
    expect(state('expired')).toBeUndefined();
    // Nothing else writes the database from here on.
    let seenAt = 0;
    const line = await waitFor(() => {
      const l = state('expired');
      if (l) seenAt = Date.now();
      return l;
    }, { timeoutMs: 10_000, what: 'the expired state in the log' });
    expect(line).toMatchObject({ node: 'exp1', from: 'armed', level: 30 });
    // After the token's time, and within a few watch ticks of it.
    expect(seenAt).toBeGreaterThanOrEqual(Date.parse(armed.expiresAt));
    expect(seenAt - Date.parse(armed.expiresAt)).toBeLessThan(5000);
  });
});
