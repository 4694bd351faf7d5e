/** A real Ferry server on loopback for installer tests, with images, nodes and deployments made directly. */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import type { CustomizationItem } from '../../../common/protocol.js';
import { startServer, type RunningServer } from '../../../server/index.js';
import type { DataDir } from '../../../server/context.js';
import { harness, LAYOUT, type Harness } from '../server/helpers.js';
import { importImage } from '../../../server/store/image-import.js';
import { commitImage } from '../../../server/store/image-export.js';
import { addNode } from '../../../server/db/inventory.js';
import { armDeployment, getDeploymentRow } from '../../../server/db/deployments.js';
import { deploymentEvents } from '../../../server/db/deployment-events.js';

/** A layout of one GPT disk with one ext4 root partition. */
export const DIR_LAYOUT = LAYOUT;

export class FerryServer {
  private constructor(private readonly h: Harness) {}
  static async start(): Promise<FerryServer> {
    return new FerryServer(await harness());
  }
  get srv(): RunningServer {
    return this.h.srv;
  }
  get data(): DataDir {
    return this.h.data;
  }
  get dataDir(): string {
    return this.h.dataDir;
  }
  get tmp(): string {
    return this.h.tmp;
  }
  get url(): string {
    return this.h.srv.url;
  }
  /** Stop and start again on the same port and data (a server crash and restart). */
  async restart(o: { publicUrl?: string; bootDir?: string; tftp?: { listen: string; root: string } } = {}): Promise<void> {
    const port = this.srv.port;
    await this.srv.close();
    this.h.srv = await startServer({ dataDir: this.dataDir, listen: `127.0.0.1:${port}`, publicUrl: o.publicUrl, bootDir: o.bootDir, tftp: o.tftp });
  }
  async image(name: string, dir: string, customizations: CustomizationItem[] = []) {
    return importImage(this.data, name, { dir, customizations, actor: 'test' });
  }
  async commit(ref: string, dir: string) {
    return commitImage(this.data, ref, dir, { actor: 'test' });
  }
  /** A node with an image and layout, armed: returns the deploy token and deployment id. */
  arm(node: string, image: string, o: { inputs?: Record<string, string>; properties?: Record<string, string>; layout?: string; bootloader?: string; macs?: string[] } = {}) {
    addNode(this.data, node, { macs: o.macs ?? ['52:54:00:aa:bb:01'], image, layoutXml: o.layout ?? DIR_LAYOUT, inputs: o.inputs, properties: o.properties, bootloader: o.bootloader }, 'test');
    return armDeployment(this.data, node, { actor: 'test' });
  }
  deployment(id: number) {
    return { row: getDeploymentRow(this.data, id), events: deploymentEvents(this.data, id) };
  }
  blobFile(digest: string): string {
    return this.data.blobs.path(digest);
  }
  /** Flip bits of one byte in the middle of a stored blob, as a bad disk or a bad copy would. */
  corruptBlob(digest: string): void {
    const file = this.blobFile(digest);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0x55;
    chmodSync(file, 0o644);
    writeFileSync(file, bytes);
  }
  async close(): Promise<void> {
    await this.h.close();
  }
}
