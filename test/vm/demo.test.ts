/**
 * `make demo` is the README's first command: its script runs here as a newcomer would see it
 * (after the build and the sample image that `make test` makes too), so a change that breaks
 * the demonstration fails the tests rather than the first impression.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import { REPO } from './ferry-env.js';

const MIN = 60_000;

describe('make demo', () => {
  it('installs a QEMU machine from the network and shows its login banner and history record', async () => {
    // DEMO_KEEP=1: the data directory (console log, disk, server log) stays for a failed run.
    const r = await run([join(REPO, 'scripts', 'demo')], { cwd: REPO, env: { DEMO_KEEP: '1' }, timeoutMs: 50 * MIN }).catch((e: FerryError) => {
      // The demo's own report of what went wrong (console tail, kept directory) is on stdout too.
      process.stderr.write(`[vm demo] the demo failed; its output ended with:\n${String(e.details?.stdoutTail ?? '')}\n`);
      throw e;
    });
    const out = r.stdout + r.stderr;
    const kept = /demo: kept (\S+)/.exec(out)?.[1];
    try {
      // Each step as the README lists it.
      expect(out).toMatch(/imported debian12@1 sha256:[0-9a-f]{64}/);
      expect(out).toMatch(/^added node demo \(52:54:00:fe:77:01\)$/m);
      // The monitor's live table went through the install's stages.
      expect(out).toMatch(/^ID +NODE +VIA +STAGE +PERCENT +MB\/S +ETA +SEEN +STATE +ERROR$/m);
      expect(out).toMatch(/^\d+ +demo +http +layers +\d+%/m);
      expect(out).toMatch(/^deployment: success after \d+ s$/m);
      expect(out).toMatch(/Ferry: booting from the local disk: demo, installed by deployment 1/);
      expect(out).toMatch(/^ferry-demo login:/m);
      // The record: what went on, with the stages' milestones and not every byte count.
      expect(out).toMatch(/^record 1: demo debian12@1 success$/m);
      expect(out).toMatch(/^inputs: hostname=ferry-demo/m);
      for (const p of ['disks', 'layers', 'customize', 'bootloader', 'finish']) expect(out).toMatch(new RegExp(`^\\S+ \\[${p}\\] end`, 'm'));
      expect(out).not.toMatch(/^\S+ \[layers\] progress/m);
      expect(out).toMatch(/^demo finished in \d+ s$/m);
    } catch (e) {
      process.stderr.write(`[vm demo] kept ${kept}\n--- demo output ---\n${out.slice(-6000)}\n`);
      throw e;
    }
    if (kept) await rm(kept, { recursive: true, force: true });
  }, 55 * MIN);
});
