/**
 * `ferry install` interrupted by SIGINT/SIGTERM: the stage stops, what was mounted is unmounted,
 * and the server records `aborted` (which ends the deployment and its token).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { INSTALL_ROUTES } from '../../common/protocol.js';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';
import { Scratch } from './layout-helpers.js';
import { call, LAYOUT, smallTree } from './server/helpers.js';

let work: string;
let server: FerryServer;
let scratch: Scratch;

beforeEach(async () => {
  scratch = new Scratch();
  work = scratch.dir;
  server = await FerryServer.start();
});
afterEach(async () => {
  await server.close();
  await scratch.cleanup();
});

describe('an interrupted install', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} after the disks are mounted: unmounted, result aborted, token ended`, async () => {
      await server.image('small', smallTree(path.join(work, 'src')));
      const armed = server.arm('abort1', 'small', { layout: LAYOUT });
      const { file, dev: loop } = await scratch.loop(256 << 20);
      const target = path.join(work, 'target');
      // Deliver the signal to the installer's own handlers only (the test runner has its own).
      const before = process.listeners(sig);
      let mountedWhenSignalled = false;
      const events: ProgressEvent[] = [];
      const outcome = await runInstall({
        server: server.url, token: armed.token, disks: [loop], yes: true, initramfs: false, console: () => {}, mountRoot: target,
        onEvent: (e) => {
          events.push(e);
          if (e.phase === 'disks' && e.state === 'end') {
            mountedWhenSignalled = fs.readFileSync('/proc/mounts', 'utf8').includes(target);
            for (const l of process.listeners(sig)) if (!before.includes(l)) (l as (s: string) => void)(sig);
          }
        },
      });
      expect(mountedWhenSignalled).toBe(true);
      expect(outcome.result.status, JSON.stringify(events.filter((e) => e.state === 'error' || e.state === 'warning'), null, 2)).toBe('aborted');
      expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_INSTALL_ABORTED', details: { signal: sig } });
      expect(outcome.finish).toBe('stay');
      expect(fs.readFileSync('/proc/mounts', 'utf8')).not.toContain(target);
      expect(events.some((e) => e.state === 'warning' && /unmount/.test(e.message ?? ''))).toBe(false);
      // The installer's handlers are gone again.
      expect(process.listeners(sig)).toEqual(before);
      expect(server.deployment(armed.id).row.status).toBe('aborted');
      const again = await call(server.url, 'GET', INSTALL_ROUTES.config, { token: armed.token });
      expect(again.json.error.code).toBe('FERRY_E_TOKEN_ENDED');
    });
  }
});
