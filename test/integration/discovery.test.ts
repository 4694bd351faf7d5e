/**
 * Discovery and enlistment end to end on loopback (issue 18): a real `ferry serve --discover`
 * (bin/ferry), the iPXE script an unknown MAC gets (the inventory boot with a discovery token),
 * the installer's inventory mode run against it (once with the Dell fixture as the inventory
 * source, once collecting this host through the real `ferry-installer run` entry point and a
 * kernel command line file), the token refused for anything else and after use, and `ferry node
 * enlist` through the CLI: a pattern, a name clash and a replaced board refused before any change.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISCOVERY_ROUTES, INSTALL_ROUTES } from '../../common/protocol.js';
import { run, spawnTool, type Spawned } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import type { Inventory } from '../../common/inventory.js';
import { buildInventory } from '../../installer/inventory/parse.js';
import { discoveryBoot } from '../../installer/commands/discover.js';
import { installerMain } from '../../installer/commands/index.js';
import { call, LAYOUT, smallTree, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');
const FIX = join(import.meta.dirname, '..', 'fixtures', 'inventory');
const fixture = (kind: string): Inventory => {
  const r = (f: string) => readFileSync(join(FIX, kind, f), 'utf8');
  return buildInventory({ dmidecode: r('dmidecode.txt'), cpuinfo: r('cpuinfo.txt'), lsblk: r('lsblk.json'), sysnet: JSON.parse(r('sysnet.json')), efi: true });
};

describe('ferry serve --discover and ferry node enlist', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let server: Spawned | undefined;
  let url = '';
  let admin = '';
  let tftpPort = 0;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000 });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);
  /** The kernel arguments of the iPXE script the server answers for `mac`. */
  const bootArgs = async (mac: string) => {
    const r = await call(url, 'GET', `/boot/ipxe?mac=${mac}`);
    expect(r.status).toBe(200);
    const kernel = r.text.split('\n').find((l) => l.startsWith('kernel '))!;
    return { script: r.text, args: (kernel ?? '').replace(/^.*initrd=initrd\.img /, '').replace(/ \|\| goto failed$/, ''), token: /ferry\.token=(\S+)/.exec(r.text)?.[1] ?? '' };
  };

  beforeAll(async () => {
    t = tempDir('ferry-discover-');
    data = join(t.dir, 'data');
    smallTree(join(t.dir, 'tree'));
    writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'base', '--dir', join(t.dir, 'tree')]);
    mkdirSync(join(t.dir, 'tftp'));
    server = spawnTool([FERRY, 'serve', '--data', data, '--listen', '127.0.0.1:0', '--tftp', '127.0.0.1:0', '--tftp-root', join(t.dir, 'tftp'), '--discover', '--discover-finish', 'wait'], { timeoutMs: 600_000 });
    server.child.stdin!.end();
    let out = '';
    server.child.stdout!.on('data', (b) => (out += b));
    url = await waitFor(() => /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], { what: 'ferry serve to print its URL', timeoutMs: 60_000 });
    tftpPort = Number(await waitFor(() => /TFTP at [^\s]+:(\d+)/.exec(out)?.[1], { what: 'ferry serve to print its TFTP port', timeoutMs: 30_000 }));
    expect(out).toContain('discovery on: unknown machines boot the inventory mode, then wait');
    admin = readFileSync(join(data, 'admin.token'), 'utf8').trim();
  }, 180_000);
  afterAll(async () => {
    if (server) {
      server.child.kill('SIGTERM');
      await server.done.catch(() => {});
    }
    t?.cleanup();
  });

  it('an unknown MAC gets the inventory boot; its report is stored once, and the token opens nothing else', async () => {
    const mac = 'e4:43:4b:1c:2a:10';
    const b = await bootArgs(mac);
    expect(b.script).toMatch(/^# Ferry: inventory e4:43:4b:1c:2a:10$/m);
    expect(b.args).toMatch(/ferry\.mode=inventory ferry\.finish=stay$/);
    expect(b.token).toMatch(/^ferry-discover-/);
    // Before the post: the token is refused by every other kind of route.
    expect((await call(url, 'GET', INSTALL_ROUTES.config, { token: b.token })).json.error.code).toBe('FERRY_E_FORBIDDEN');
    expect((await call(url, 'POST', INSTALL_ROUTES.inventory, { token: b.token, body: fixture('dell-r640') })).status).toBe(403);
    expect((await call(url, 'GET', '/api/v1/admin/nodes', { token: b.token })).status).toBe(403);
    expect((await call(url, 'GET', `/blobs/sha256:${'0'.repeat(64)}`, { token: b.token })).status).toBe(403);
    // The admin token is not a discovery token.
    expect((await call(url, 'POST', DISCOVERY_ROUTES.inventory, { token: admin, body: fixture('dell-r640') })).status).toBe(403);
    const stopped: string[] = [];
    const r = await discoveryBoot({ server: url, token: b.token, finish: 'poweroff', collect: async () => fixture('dell-r640'), powerOff: async () => void stopped.push('off') });
    expect(r.mac).toBe(mac);
    expect(stopped).toEqual(['off']);
    // Used: refused from then on.
    const again = await call(url, 'POST', DISCOVERY_ROUTES.inventory, { token: b.token, body: fixture('dell-r640') });
    expect(again.status).toBe(401);
    expect(again.json.error.code).toBe('FERRY_E_TOKEN_INVALID');
    const list = await json(['node', 'ls', '--discovered']);
    expect(list.find((x: any) => x.mac === mac).inventory).toMatchObject({ vendor: 'Dell Inc.', product: 'PowerEdge R640', serial: '8XK2QW2', memoryBytes: 128 * 1024 ** 3 });
    const table = (await ferry(['node', 'ls', '--discovered'])).stdout;
    expect(table).toMatch(/e4:43:4b:1c:2a:10 .*Dell Inc\. .*PowerEdge R640 .*8XK2QW2 .*128 GiB/);
  });

  it('pxelinux over TFTP: the same inventory boot for an unknown MAC', async () => {
    const got = join(t.dir, 'pxelinux-got');
    await run(['tftp', '-m', 'binary', '127.0.0.1', String(tftpPort), '-c', 'get', 'pxelinux.cfg/01-02-00-00-d1-5c-09', got], { timeoutMs: 30_000 });
    const text = readFileSync(got, 'utf8');
    expect(text).toMatch(/^# Ferry: inventory 02:00:00:d1:5c:09$/m);
    expect(text).toMatch(/APPEND .*ferry\.token=ferry-discover-\S+ BOOTIF=01-02-00-00-d1-5c-09 ferry\.mode=inventory ferry\.finish=stay$/m);
  });

  it('the installer\'s inventory mode (ferry-installer run with ferry.mode=inventory) reports this host and waits', async () => {
    const mac = '02:00:00:d1:5c:01';
    const b = await bootArgs(mac);
    const cmdline = join(t.dir, 'cmdline');
    writeFileSync(cmdline, b.args + '\n');
    expect(await installerMain(['run', '--cmdline', cmdline])).toBe(0);
    const got = (await json(['node', 'ls', '--discovered'])).find((x: any) => x.mac === mac);
    expect(got.inventory.cpus).toBeGreaterThan(0);
    expect(got.inventory.memoryBytes).toBeGreaterThan(0);
    // Its token died with the post: the same command line again is refused.
    expect(await installerMain(['run', '--cmdline', cmdline])).toBe(1);
  });

  it('enlists by pattern with image and layout; a name clash and a replaced board refuse everything', async () => {
    // Two more machines: a Supermicro, and a QEMU guest that reports the Dell's serial (its board was replaced).
    for (const [mac, inv] of [
      ['0c:c4:7a:00:00:01', { ...fixture('supermicro-x11ssh'), system: { ...fixture('supermicro-x11ssh').system, serial: 'S4XK9' } }],
      ['52:54:00:12:34:56', { ...fixture('qemu-q35'), system: { ...fixture('qemu-q35').system, serial: '8XK2QW2' } }],
    ] as const) {
      await discoveryBoot({ server: url, token: (await bootArgs(mac)).token, finish: 'stay', collect: async () => inv });
    }
    const layout = join(t.dir, 'layout.xml');
    await ferry(['node', 'add', 'rack1-8XK2QW2-taken', '--mac', '02:00:00:00:00:01']);
    // The clash: {serial}-taken names the Dell like the existing node; nothing is made, not even the Supermicro.
    const clash = await ferry(['node', 'enlist', 'e4:43:4b:1c:2a:10', '0c:c4:7a:00:00:01', '--name', 'rack1-{serial}-taken'], [1]);
    expect(clash.stderr).toMatch(/FERRY_E_NODE_EXISTS/);
    expect(clash.stderr).toContain('nothing was changed');
    expect((await json(['node', 'ls'])).map((n: any) => n.name)).toEqual(['rack1-8XK2QW2-taken']);
    const made = await json(['node', 'enlist', 'e4:43:4b:1c:2a:10', '0c:c4:7a:00:00:01', '--name', 'rack1-{serial}', '--image', 'base', '--layout', layout, '--group', 'rack1']);
    expect(made.map((n: any) => n.name)).toEqual(['rack1-8XK2QW2', 'rack1-S4XK9']);
    const dell = await json(['node', 'show', 'rack1-8XK2QW2']);
    expect(dell).toMatchObject({ macs: ['e4:43:4b:1c:2a:10'], image: 'base', groups: ['rack1'], properties: { 'hw.system.serial': '8XK2QW2', 'hw.cpu.sockets': '2' } });
    expect(dell.layout.digest).toMatch(/^sha256:/);
    // The enlisted machine is a node now: its next boot is its disk (no deployment), not discovery.
    expect((await bootArgs('e4:43:4b:1c:2a:10')).script).toContain('booting from the local disk');
    // The guest with the Dell's serial: offered as that node, never merged.
    expect((await json(['node', 'ls', '--discovered'])).find((x: any) => x.mac === '52:54:00:12:34:56').matches).toEqual(['rack1-8XK2QW2']);
    const board = await ferry(['node', 'enlist', '52:54:00:12:34:56', '--name', 'guest'], [1]);
    expect(board.stderr).toContain('52:54:00:12:34:56 matches node rack1-8XK2QW2 (serial 8XK2QW2): `ferry node set rack1-8XK2QW2 --mac 52:54:00:12:34:56` to adopt it');
    expect((await json(['node', 'show', 'rack1-8XK2QW2'])).macs).toEqual(['e4:43:4b:1c:2a:10']);
    await ferry(['node', 'set', 'rack1-8XK2QW2', '--mac', '52:54:00:12:34:56']);
    expect((await json(['node', 'show', 'rack1-8XK2QW2'])).macs).toEqual(['52:54:00:12:34:56']);
  });
});
