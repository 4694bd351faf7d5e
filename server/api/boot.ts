/**
 * Network boot, without a token (firmware cannot send one): GET /boot/ipxe?mac=MAC answers
 * the iPXE script decided for that machine (server/boot/decide.ts); GET/HEAD /boot/vmlinuz and
 * /boot/initrd.img serve the boot environment from the boot directory (files.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../../common/errors.js';
import { BOOT_ROUTES } from '../../common/protocol.js';
import { bootDecision } from '../boot/decide.js';
import { renderIpxeFor } from '../boot/ipxe.js';
import { normaliseMac } from '../db/inventory.js';
import { onlyMethods, onRawSocket, type Resource } from './route.js';
import { serveFile } from './files.js';
import { httpError } from './http.js';
import { logBoot } from '../log.js';

export const boot: Resource = (app, ctx) => {
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>(BOOT_ROUTES.ipxe, { config: { auth: 'none' } }, async (request, reply) => {
    const q = request.query.mac;
    const raw = (Array.isArray(q) ? q[0] : q) ?? '';
    const mac = normaliseMac(raw);
    if (!mac) {
      throw new ValidationError('FERRY_E_BAD_REQUEST', 'the boot request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: 'mac', message: `"${raw.slice(0, 64)}" is not a MAC address (GET /boot/ipxe?mac=aa:bb:cc:dd:ee:ff)` }]);
    }
    const remoteAddress = request.raw.socket.remoteAddress;
    const decision = bootDecision(ctx.data, mac, { publicUrl: ctx.publicUrl, kernelArgs: ctx.kernelArgs, discover: ctx.discover, remoteAddress });
    if (decision.discovered) ctx.hub.publish('discovered', { mac, address: remoteAddress });
    logBoot(request.log, 'ipxe', decision, remoteAddress);
    return reply.type('text/plain; charset=utf-8').send(renderIpxeFor(decision));
  });
  onlyMethods(app, BOOT_ROUTES.ipxe, ['GET']);

  for (const [url, name] of [
    [BOOT_ROUTES.kernel, 'vmlinuz'],
    [BOOT_ROUTES.initrd, 'initrd.img'],
  ] as const) {
    app.route({
      method: ['GET', 'HEAD'],
      url,
      config: { auth: 'none' },
      handler: async (request, reply) => {
        const file = join(ctx.bootDir, name);
        if (!existsSync(file)) throw httpError('FERRY_E_BOOT_FILE_MISSING', `the boot file ${file} does not exist`, 'build the boot environment (make initrd) or start the server with --boot-dir DIR');
        const st = statSync(file);
        await onRawSocket(request, reply, () => serveFile(request.raw, reply.raw, file, { etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`, contentType: 'application/octet-stream' }));
      },
    });
    onlyMethods(app, url, ['GET', 'HEAD']);
  }
};
