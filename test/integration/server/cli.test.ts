import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnTool, type Spawned } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { INSTALL_ROUTES } from '../../../common/protocol.js';
import { call, LAYOUT, smallTree, tempDir } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('the ferry CLI against one data directory and a running server', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let server: Spawned | undefined;
  let url = '';
  const ferry = async (args: string[], okCodes = [0]) => {
    const r = await run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000 });
    return r;
  };
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);

  beforeAll(async () => {
    t = tempDir('ferry-cli-');
    data = join(t.dir, 'data');
    smallTree(join(t.dir, 'tree'));
    writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    writeFileSync(join(t.dir, 'items.json'), JSON.stringify([{ kind: 'hostname' }, { kind: 'template', path: '/etc/motd', template: 'hi {{ hostname }}\n' }]));
  });
  afterAll(async () => {
    if (server) {
      server.child.kill('SIGTERM');
      await server.done.catch(() => {});
    }
    t?.cleanup();
  });

  it('imports, describes nodes and groups, and selects by name, group and property', async () => {
    const img = await json(['image', 'import', 'base', '--dir', join(t.dir, 'tree'), '--customizations', join(t.dir, 'items.json')]);
    expect(img).toMatchObject({ name: 'base', version: 1, customizations: [{ kind: 'hostname' }, { kind: 'template' }, { kind: 'ssh-authorize-ferry' }] });
    const layout = join(t.dir, 'layout.xml');
    await ferry(['node', 'add', 'web1', '--mac', '52:54:00:00:00:01', '--image', 'base', '--layout', layout, '--set', 'hostname=web1', '--set', 'network.mode=static', '--set', 'network.address=192.0.2.11/24', '--prop', 'rack=a1', '--group', 'web']);
    await ferry(['node', 'add', 'web2', '--mac', '52:54:00:00:00:02', '--image', 'base', '--layout', layout, '--prop', 'rack=a2', '--group', 'web']);
    await ferry(['node', 'add', 'db1', '--mac', '52:54:00:00:00:03', '--image', 'base', '--layout', layout, '--prop', 'rack=a1', '--group', 'db']);
    await ferry(['group', 'add', 'prod', '--include', 'web', '--include', 'db']);
    await ferry(['group', 'add', 'rack-a1', '--node', 'web1', '--node', 'db1']);
    const web1 = await json(['node', 'show', 'web1']);
    expect(web1).toMatchObject({ name: 'web1', macs: ['52:54:00:00:00:01'], image: 'base', inputs: { hostname: 'web1', 'network.mode': 'static', 'network.address': '192.0.2.11/24' }, properties: { rack: 'a1' }, groups: ['rack-a1', 'web'], bootAction: 'local' });
    expect((await json(['group', 'show', 'prod'])).allNodes).toEqual(['db1', 'web1', 'web2']);
    expect((await json(['node', 'ls', 'rack=a1'])).map((n: any) => n.name)).toEqual(['db1', 'web1']);
    expect((await json(['node', 'ls', '@web', 'db1'])).map((n: any) => n.name)).toEqual(['db1', 'web1', 'web2']);
    const cycle = await ferry(['group', 'add', 'web', '--include', 'prod', '--json'], [1]);
    expect(JSON.parse(cycle.stdout).error.code).toBe('FERRY_E_GROUP_CYCLE');
    const missing = await ferry(['node', 'show', 'nobody'], [1]);
    expect(missing.stderr).toMatch(/^FERRY_E_NODE_NOT_FOUND: no node "nobody"/);
    const usage = await ferry(['node', 'add', 'x', '--bogus'], [2]);
    expect(usage.stderr).toMatch(/FERRY_E_USAGE/);
    await ferry(['node', 'set', 'web2', '--set', 'hostname=web-two', '--unprop', 'rack', '--ungroup', 'web']);
    expect(await json(['node', 'show', 'web2'])).toMatchObject({ inputs: { hostname: 'web-two' }, properties: {}, groups: [] });
    await ferry(['group', 'add', 'web', '--node', 'web2']);
  });

  it('serves, deploys a nested group, follows progress and redeploys a record exactly', async () => {
    server = spawnTool([FERRY, 'serve', '--data', data, '--listen', '127.0.0.1:0'], { timeoutMs: 600_000 });
    server.child.stdin!.end();
    let out = '';
    server.child.stdout!.on('data', (b) => (out += b));
    url = await waitFor(() => /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], { what: 'ferry serve to print its URL', timeoutMs: 30_000 });

    const armed = (await json(['deploy', '@prod'])).deployments;
    expect(armed.map((a: any) => a.node)).toEqual(['db1', 'web1', 'web2']);
    const web1 = armed.find((a: any) => a.node === 'web1');
    const cfg = await call(url, 'GET', INSTALL_ROUTES.config, { token: web1.token });
    expect(cfg.status).toBe(200);
    expect(cfg.json.inputs).toEqual({ hostname: 'web1', 'network.mode': 'static', 'network.address': '192.0.2.11/24' });
    // The two items of items.json, and ssh-authorize-ferry (on by default) as an authorized-keys item with Ferry's key.
    expect(cfg.json.image.customizations).toHaveLength(3);
    expect(cfg.json.image.customizations[2]).toMatchObject({ kind: 'authorized-keys', user: 'root', missingUser: 'warn' });
    const ts = Date.now();
    await call(url, 'POST', INSTALL_ROUTES.events, {
      token: web1.token,
      body: { events: [0, 1, 2].map((i) => ({ phase: 'layers', state: 'progress', object: 'l', bytes: i * 25_000_000, total: 100_000_000, ts: new Date(ts + i * 1000).toISOString() })) },
    });
    const mon = await json(['monitor']);
    expect(mon.find((r: any) => r.node === 'web1')).toMatchObject({ stage: 'layers', percent: 50, state: 'running' });
    expect(mon.find((r: any) => r.node === 'web1').mbps).toBeCloseTo(25, 5);
    expect(mon.find((r: any) => r.node === 'db1')).toMatchObject({ state: 'armed' });
    const table = (await ferry(['monitor', '--once'])).stdout;
    expect(table.split('\n')[0]).toMatch(/^ID +NODE +VIA +STAGE +PERCENT +MB\/S +ETA +SEEN +STATE +ERROR$/);
    expect(table).toMatch(/\d+ +web1 +http +layers +50% +25\.0 +2s +\d+s +running/);

    await call(url, 'POST', INSTALL_ROUTES.result, { token: web1.token, body: { status: 'success' } });
    expect((await json(['node', 'show', 'web1'])).bootAction).toBe('local');
    const hist = await json(['history', 'web1']);
    expect(hist[0]).toMatchObject({ node: 'web1', image: 'base@1', status: 'success', stage: 'layers' });
    // The record as a person reads it: what was installed with which inputs, its milestones; the
    // byte counts only with --all.
    const record = (await ferry(['history', '--record', String(web1.id)])).stdout;
    expect(record).toMatch(/^record \d+: web1 base@1 success$/m);
    expect(record).toMatch(/^inputs: hostname=web1 network\.mode=static network\.address=192\.0\.2\.11\/24$/m);
    expect(record).toMatch(/^ended: \S+ \(\d+ s\)$/m);
    expect(record).not.toMatch(/\[layers\] progress/);
    expect(record).toMatch(/^\(3 progress and heartbeat events not shown: --all shows them\)$/m);
    expect((await ferry(['history', '--record', String(web1.id), '--all'])).stdout.match(/\[layers\] progress l \d+%/g)).toHaveLength(3);

    // The image moves on; redeploying the record still installs exactly what it did.
    const work = join(t.dir, 'work');
    await ferry(['image', 'export', 'base', work]);
    writeFileSync(join(work, 'etc', 'hostname'), 'changed\n');
    const committed = await json(['image', 'commit', 'base', work]);
    expect(committed.image.version).toBe(2);
    await ferry(['node', 'set', 'web1', '--set', 'hostname=renamed']);
    const again = (await json(['redeploy', String(web1.id)])).deployment;
    const cfg2 = await call(url, 'GET', INSTALL_ROUTES.config, { token: again.token });
    expect(cfg2.json.image.digest).toBe(cfg.json.image.digest);
    expect(cfg2.json.layout).toEqual(cfg.json.layout);
    expect(cfg2.json.inputs).toEqual(cfg.json.inputs);
    const rec = await json(['history', '--record', String(again.id)]);
    expect(rec.deployment).toMatchObject({ redeployOf: web1.id, image: 'base@1', status: 'running' });
    // A fresh deploy takes the new version and inputs.
    const fresh = (await json(['deploy', 'web1'])).deployments[0];
    const cfg3 = await call(url, 'GET', INSTALL_ROUTES.config, { token: fresh.token });
    expect(cfg3.json.image.version).toBe(2);
    expect(cfg3.json.inputs.hostname).toBe('renamed');
    // The older token was revoked by arming again.
    expect((await call(url, 'GET', INSTALL_ROUTES.config, { token: again.token })).status).toBe(401);

    const audit = await call(url, 'GET', '/api/v1/admin/audit', { token: readFileSync(join(data, 'admin.token'), 'utf8').trim() });
    const actions = audit.json.audit.map((a: any) => a.action);
    for (const a of ['image.import', 'node.add', 'group.add', 'deploy.arm', 'deploy.result', 'image.commit', 'deploy.redeploy', 'node.set']) expect(actions).toContain(a);
    expect(audit.json.audit.find((a: any) => a.action === 'node.add').actor).toMatch(/^cli:/);
    const cliAudit = await json(['audit', '--object', 'web1']);
    expect(cliAudit.map((a: any) => a.action)).toEqual(expect.arrayContaining(['node.add', 'deploy.arm', 'deploy.result', 'deploy.redeploy', 'node.set']));
    expect(cliAudit.every((a: any) => a.object === 'web1')).toBe(true);
  });

  it('lists discovered machines and refuses images in use', async () => {
    await call(url, 'GET', '/boot/ipxe?mac=02:aa:bb:cc:dd:ee');
    expect((await json(['node', 'ls', '--discovered'])).map((x: any) => x.mac)).toContain('02:aa:bb:cc:dd:ee');
    const rm = await ferry(['image', 'rm', 'base', '--json'], [1]);
    expect(JSON.parse(rm.stdout).error.code).toBe('FERRY_E_IMAGE_IN_USE');
    const ls = await json(['image', 'ls']);
    expect(ls.map((i: any) => `${i.name}@${i.version}`)).toEqual(['base@1', 'base@2']);
    expect((await ferry(['image', 'verify'])).stdout).toMatch(/^ok /m);
  });

  it('takes commands run at the same time (several admins or scripts) on one database, with the server running', async () => {
    // Each command opens the database, reads, then writes: together they must wait for one
    // another, not fail with "database is locked" (they did, when two nodes were added at once).
    const names = Array.from({ length: 8 }, (_, i) => `para${i}`);
    const layout = join(t.dir, 'layout.xml');
    const added = await Promise.allSettled(names.map((n, i) => ferry(['node', 'add', n, '--mac', `52:54:00:77:00:${String(i).padStart(2, '0')}`, '--image', 'base', '--layout', layout, '--set', `hostname=${n}`])));
    expect(added.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason).slice(0, 300))).toEqual([]);
    const armed = await Promise.allSettled(names.map((n) => ferry(['deploy', n, '--json'])));
    expect(armed.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason).slice(0, 300))).toEqual([]);
    const ids = armed.map((r) => JSON.parse((r as PromiseFulfilledResult<{ stdout: string }>).value.stdout).deployments[0].id as number);
    expect(new Set(ids).size).toBe(names.length);
    const nodes = (await json(['node', 'ls'])).map((x: any) => x.name);
    expect(nodes).toEqual(expect.arrayContaining(names));
  });
});
