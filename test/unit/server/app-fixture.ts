/**
 * A server app for inject() tests: a data directory in a temporary directory, one stored blob
 * (raw bytes: the unit tier runs no zstd) and images and nodes made through the database layer.
 * No socket is opened: fastify's inject() hands requests to the app in memory.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { MulticastSessions } from '../../../server/multicast/sessions.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { DataDir, now } from '../../../server/context.js';
import { EventHub } from '../../../server/api/events.js';
import { buildApp, type ServerContext } from '../../../server/api/app.js';
import type { Resource } from '../../../server/api/route.js';
import { insertImage } from '../../../server/store/images.js';
import type { LayerRef } from '../../../common/protocol.js';

export const LAYOUT = `<config>
  <disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB">
    <part num="1" size="*" p_type="primary" p_name="root" flags="-"/>
  </disk>
  <fsinfo line="10" real_dev="/dev/sda1" mp="/" fs="ext4" options="defaults" dump="1" pass="1"/>
</config>
`;

export interface Fixture {
  app: FastifyInstance;
  ctx: ServerContext;
  admin: string;
  dir: string;
  /** Store bytes as a layer and return its reference. */
  layer(bytes: Buffer): Promise<LayerRef>;
  image(name: string, layers: LayerRef[]): void;
  close(): Promise<void>;
}

export async function fixture(extra: Resource[] = []): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-app-'));
  const data = new DataDir(join(dir, 'data'));
  const bootDir = join(dir, 'boot');
  mkdirSync(bootDir);
  writeFileSync(join(bootDir, 'vmlinuz'), Buffer.alloc(12_345, 7));
  const hub = new EventHub(3_600_000);
  const ctx: ServerContext = { data, adminToken: 'ferry-admin-' + 'x'.repeat(43), publicUrl: 'http://ferry.test:8080', bootDir, hub, kernelArgs: [], multicast: new MulticastSessions(data) };
  const app = await buildApp(ctx, extra);
  await app.ready();
  return {
    app,
    ctx,
    admin: ctx.adminToken,
    dir,
    async layer(bytes) {
      const b = await data.blobs.ingest(Readable.from([bytes]));
      const mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
      data.write(() => data.db.prepare('INSERT OR IGNORE INTO layers (digest, size, media_type, uncompressed_size, diff_id, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(b.digest, b.size, mediaType, b.size, b.digest, now()));
      return { digest: b.digest, size: b.size, mediaType, uncompressedSize: b.size };
    },
    image(name, layers) {
      insertImage(data, { name, version: 1, layers, customizations: [] }, 'test', 'image.import');
    },
    async close() {
      hub.close();
      await app.close();
      data.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
