import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';

const REPO = resolve(__dirname, '../..');

// The sample image of the vm tests and the demo: built by `make sample-image` (cached), imported
// here into a fresh repository the way the demo does it.
describe('scripts/make-sample-image', () => {
  let data: string | undefined;
  afterAll(async () => {
    if (data) await rm(data, { recursive: true, force: true });
  });

  it('imports a bootable Debian tree with hostname and network customizations', async () => {
    data = await mkdtemp(join(tmpdir(), 'ferry-sample-'));
    const r = await run([join(REPO, 'scripts', 'make-sample-image'), '--data', data, '--name', 'deb'], { timeoutMs: 30 * 60_000 });
    const tarball = r.stdout.trim().split('\n').pop()!;
    expect(tarball).toMatch(/debian-bookworm-[0-9a-f]{16}\.tar\.zst$/);
    const show = JSON.parse((await run([join(REPO, 'bin', 'ferry'), 'image', 'show', 'deb', '--json', '--data', data])).stdout);
    expect(JSON.stringify(show)).toContain('"kind":"hostname"');
    expect(JSON.stringify(show)).toContain('"kind":"network"');

    // What both GRUB flavours, the serial console and the installer's network step need.
    const list = (await run(['tar', '--zstd', '-tf', tarball], { quiet: true, maxBuffer: 256 * 1024 * 1024 })).stdout.split('\n');
    const has = (re: RegExp) => list.some((p) => re.test(p));
    for (const re of [/^\.\/boot\/vmlinuz-/, /^\.\/boot\/initrd\.img-/, /^\.\/usr\/lib\/grub\/i386-pc\/boot\.img$/, /^\.\/usr\/lib\/grub\/x86_64-efi\/.*\.mod$/, /^\.\/usr\/sbin\/grub-install$/, /^\.\/usr\/sbin\/update-grub$/, /^\.\/usr\/lib\/systemd\/systemd-networkd$/, /^\.\/etc\/default\/grub$/]) {
      expect(has(re), String(re)).toBe(true);
    }
    // Trimmed: no manuals, no graphics or sound drivers.
    expect(has(/^\.\/usr\/share\/man\/.+/)).toBe(false);
    expect(has(/\/kernel\/drivers\/gpu\//)).toBe(false);
    expect(has(/\/kernel\/sound\//)).toBe(false);
    const grub = (await run(['tar', '--zstd', '-xOf', tarball, './etc/default/grub'], { quiet: true })).stdout;
    expect(grub).toMatch(/^GRUB_CMDLINE_LINUX=".*console=ttyS0/m);
  });
});
