// Events posted again after a lost answer (a cut connection: the retry loop, or the next flush
// of the queue) are stored once: the installer numbers its events per run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armDeployment } from '../../../server/db/deployments.js';
import { deploymentEvents } from '../../../server/db/deployment-events.js';
import { addNode } from '../../../server/db/inventory.js';
import { INSTALL_ROUTES } from '../../../common/protocol.js';
import { bearer, fixture, LAYOUT, type Fixture } from './app-fixture.js';

describe('progress events sent again are stored once', () => {
  let f: Fixture;
  let token: string;
  let id: number;
  beforeAll(async () => {
    f = await fixture();
    f.image('base', [await f.layer(Buffer.from('events once'))]);
    addNode(f.ctx.data, 'ev1', { macs: ['52:54:00:aa:00:21'], image: 'base', layoutXml: LAYOUT, inputs: { hostname: 'ev1' } }, 'test');
    const armed = armDeployment(f.ctx.data, 'ev1', { actor: 'test' });
    token = armed.token;
    id = armed.id;
  });
  afterAll(() => f?.close());

  const post = (payload: object) => f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: bearer(token), payload });
  const ev = (n: number) => ({ phase: 'layers', state: 'progress', bytes: n, total: 100 });

  it('a batch repeated, then a longer one that starts with it, stores each numbered event once', async () => {
    const run = '0123456789abcdef';
    expect((await post({ events: [ev(1), ev(2)], run, seqs: [0, 1] })).json()).toEqual({ ok: true, stored: 2 });
    // The answer was lost: the same batch again, then the queue's next flush with one more.
    expect((await post({ events: [ev(1), ev(2)], run, seqs: [0, 1] })).json()).toEqual({ ok: true, stored: 0 });
    expect((await post({ events: [ev(1), ev(2), ev(4)], run, seqs: [0, 1, 3] })).json()).toEqual({ ok: true, stored: 1 });
    expect(deploymentEvents(f.ctx.data, id).map((e) => e.bytes)).toEqual([1, 2, 4]);
    // A new run (the installer started again) numbers from 0 and is stored.
    expect((await post({ events: [ev(5)], run: 'fedcba9876543210', seqs: [0] })).json()).toEqual({ ok: true, stored: 1 });
    // Without numbers (an older installer), every event is stored.
    expect((await post({ events: [ev(6)] })).json()).toEqual({ ok: true, stored: 1 });
    expect((await post({ events: [ev(6)] })).json()).toEqual({ ok: true, stored: 1 });
    expect(deploymentEvents(f.ctx.data, id).map((e) => e.bytes)).toEqual([1, 2, 4, 5, 6, 6]);
  });

  it('refuses a run id that is not hex and numbers that are not counts', async () => {
    const bad = await post({ events: [ev(7)], run: 'x y', seqs: [-1] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.run', '$.seqs[0]']);
  });
});
