/**
 * Update records (server/db/updates.ts) through the admin API: kind update with its events, the
 * node's running version from its newest successful record (a failed update changes nothing),
 * an install in flight refuses an update, an update record is not redeployed, and the bodies
 * match their schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../../common/schema/validate.js';
import * as R from '../../../common/schema/responses.js';
import { endUpdateRecord, startUpdateRecord, updateEvent } from '../../../server/db/updates.js';
import { getImage, manifestOf } from '../../../server/store/images.js';
import { redeploy } from '../../../server/db/deployments.js';
import { markLost } from '../../../server/db/deployment-lifecycle.js';
import { bearer, fixture, LAYOUT, type Fixture } from './app-fixture.js';

describe('update records in the API', () => {
  let f: Fixture;
  const get = async (path: string) => {
    const r = await f.app.inject({ method: 'GET', url: '/api/v1/admin/' + path, headers: bearer(f.admin) });
    expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
    return r.json();
  };
  const conforms = (schema: Parameters<typeof compile>[0], body: unknown) => {
    const v = compile(schema);
    expect(v(body), (v.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ')).toBe(true);
  };

  beforeAll(async () => {
    f = await fixture();
    f.image('app', [await f.layer(Buffer.from('v1'))]);
    f.image('app2', [await f.layer(Buffer.from('v2'))]);
    for (const [i, name] of ['u1', 'u2'].entries()) {
      const r = await f.app.inject({ method: 'POST', url: '/api/v1/admin/nodes', headers: bearer(f.admin), payload: { name, macs: [`52:54:00:00:0e:0${i}`], image: 'app', layout: LAYOUT } });
      expect(r.statusCode).toBe(201);
    }
  });
  afterAll(() => f?.close());

  it('a successful update: kind update, its events, and the version the node runs', async () => {
    const d = f.ctx.data;
    const m = manifestOf(getImage(d, 'app2'));
    const rec = startUpdateRecord(d, 'u1', m, { actor: 'test', root: '/' });
    updateEvent(d, rec, { state: 'start', object: 'u1', message: 'update to app2@1' });
    // A running update is no silent installer: the lost timer leaves it alone.
    expect(markLost(d, -1000).map((x) => x.id)).not.toContain(rec.id);
    updateEvent(d, rec, { state: 'info', object: 'rsync', details: { stats: { transferred: 2 } } });
    endUpdateRecord(d, rec, { ok: true });
    const body = await get(`deployments/${rec.id}`);
    conforms(R.DeploymentRecordSchema, body);
    expect(body.deployment).toMatchObject({ kind: 'update', node: 'u1', image: 'app2@1', status: 'success' });
    expect(body.events.map((e: { state: string }) => e.state)).toEqual(['start', 'info']);
    const node = (await get('nodes/u1')).node;
    conforms(R.NodeInfoSchema, node);
    expect(node.running).toMatchObject({ image: 'app2@1', kind: 'update', deployment: rec.id });
    expect(() => redeploy(d, rec.id, { actor: 'test' })).toThrow(/FERRY_E_REDEPLOY_UPDATE|is an update/);
  });

  it('a failed update leaves the running version; an install in flight refuses an update', async () => {
    const d = f.ctx.data;
    const before = (await get('nodes/u1')).node.running;
    const rec = startUpdateRecord(d, 'u1', manifestOf(getImage(d, 'app')), { actor: 'test', root: '/' });
    endUpdateRecord(d, rec, { ok: false, error: { code: 'FERRY_E_COMMAND_FAILED', message: 'rsync exited with 12' } });
    expect((await get(`deployments/${rec.id}`)).deployment).toMatchObject({ kind: 'update', status: 'failed', error: { code: 'FERRY_E_COMMAND_FAILED' } });
    expect((await get('nodes/u1')).node.running).toEqual(before);
    expect((await get('nodes/u2')).node.running).toBeUndefined();
    const armed = await f.app.inject({ method: 'POST', url: '/api/v1/admin/deploy', headers: bearer(f.admin), payload: { select: ['u2'] } });
    expect(armed.statusCode).toBe(201);
    expect(() => startUpdateRecord(d, 'u2', manifestOf(getImage(d, 'app')), { actor: 'test', root: '/' })).toThrow(/install deployment \d+ armed/);
  });
});
