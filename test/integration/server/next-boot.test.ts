/**
 * What `ferry node ls` shows as the boot action is what the server answers at the next boot
 * (issue 17): one node per deployment state, and for each the CLI's next boot and the iPXE
 * answer of GET /boot/ipxe agree (both come from server/boot/decide.ts nextBoot).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { INSTALL_ROUTES } from '../../../common/protocol.js';
import { armDeployment } from '../../../server/db/deployments.js';
import { cancelDeployments } from '../../../server/db/deployment-lifecycle.js';
import { addNode } from '../../../server/db/inventory.js';
import { importImage } from '../../../server/store/image-import.js';
import { call, harness, LAYOUT, smallTree, type Harness } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

/** Node name → [its MAC, the next boot it must get]. */
const STATES: Record<string, 'install' | 'local'> = { armed: 'install', running: 'install', lost: 'install', cancelled: 'local', success: 'local', failed: 'local', expired: 'local', never: 'local' };

describe('node ls shows the next boot the server answers', () => {
  let h: Harness;
  const mac = (i: number) => `52:54:00:17:00:${String(i).padStart(2, '0')}`;
  beforeAll(async () => {
    h = await harness();
    await importImage(h.data, 'nb', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    let i = 0;
    for (const state of Object.keys(STATES)) {
      addNode(h.data, state, { macs: [mac(++i)], image: 'nb', layoutXml: LAYOUT }, 'test');
      if (state === 'never') continue;
      const { id, token } = armDeployment(h.data, state, { actor: 'test' });
      if (['running', 'lost', 'success', 'failed'].includes(state)) expect((await call(h.srv.url, 'GET', INSTALL_ROUTES.config, { token })).status).toBe(200);
      if (state === 'lost') h.data.db.prepare("UPDATE deployments SET status = 'lost' WHERE id = ?").run(id);
      if (state === 'success') expect((await call(h.srv.url, 'POST', INSTALL_ROUTES.result, { token, body: { status: 'success' } })).status).toBe(200);
      if (state === 'failed') expect((await call(h.srv.url, 'POST', INSTALL_ROUTES.result, { token, body: { status: 'failed', error: { code: 'FERRY_E_X', message: 'broken' } } })).status).toBe(200);
      if (state === 'cancelled') cancelDeployments(h.data, ['cancelled'], 'test');
      if (state === 'expired') h.data.db.prepare("UPDATE deployments SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?").run(id);
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('agrees with GET /boot/ipxe for every state', async () => {
    const ls = JSON.parse((await run([FERRY, 'node', 'ls', '--json', '--data', h.dataDir], { timeoutMs: 60_000 })).stdout) as { name: string; macs: string[]; nextBoot: { action: string; reason: string } }[];
    const got: Record<string, [string, string]> = {};
    for (const n of ls) {
      const answer = await call(h.srv.url, 'GET', `/boot/ipxe?mac=${n.macs[0]}`);
      got[n.name] = [n.nextBoot.action, answer.text.includes('# Ferry: local boot') ? 'local' : 'install'];
    }
    expect(got).toEqual(Object.fromEntries(Object.entries(STATES).map(([k, v]) => [k, [v, v]])));
    expect(ls.find((n) => n.name === 'expired')!.nextBoot.reason).toMatch(/deployment \d+ expired/);
    expect(ls.find((n) => n.name === 'failed')!.nextBoot.reason).toMatch(/deployment \d+ failed/);
    const table = (await run([FERRY, 'node', 'ls', '--data', h.dataDir], { timeoutMs: 60_000 })).stdout;
    expect(table).toMatch(/^armed\s+\S+\s+nb\s+install \(deployment \d+ armed\)/m);
    expect(table).toMatch(/^cancelled\s+\S+\s+nb\s+local \(deployment \d+ cancelled\)/m);
    expect(table).toMatch(/^success\s+\S+\s+nb\s+local \(installed by deployment \d+\)/m);
  });
});
