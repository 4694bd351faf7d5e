/** A real Ferry server on loopback for installer tests, with images, nodes and deployments made directly. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CustomizationItem } from '../../../common/protocol.js';
import { startServer, type RunningServer } from '../../../server/index.js';
import { DataDir } from '../../../server/context.js';
import { importImage, commitImage } from '../../../server/store/images.js';
import { addNode } from '../../../server/db/inventory.js';
import { armDeployment, getDeploymentRow, deploymentEvents } from '../../../server/db/deployments.js';

export const DIR_LAYOUT = `<config>
  <disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB">
    <part num="1" size="*" p_type="primary" p_name="root" flags="-"/>
  </disk>
  <fsinfo line="10" real_dev="/dev/sda1" mp="/" fs="ext4" options="defaults" dump="1" pass="1"/>
</config>
`;

export class FerryServer {
  srv!: RunningServer;
  data!: DataDir;
  readonly dataDir: string;
  constructor(readonly tmp: string) {
    this.dataDir = path.join(tmp, 'data');
  }
  static async start(): Promise<FerryServer> {
    const s = new FerryServer(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-inst-srv-')));
    s.srv = await startServer({ dataDir: s.dataDir, listen: '127.0.0.1:0' });
    s.data = new DataDir(s.dataDir);
    return s;
  }
  get url(): string {
    return this.srv.url;
  }
  /** Stop and start again on the same port and data (a server crash and restart). */
  async restart(o: { publicUrl?: string; bootDir?: string; tftp?: { listen: string; root: string } } = {}): Promise<void> {
    const port = this.srv.port;
    await this.srv.close();
    this.srv = await startServer({ dataDir: this.dataDir, listen: `127.0.0.1:${port}`, publicUrl: o.publicUrl, bootDir: o.bootDir, tftp: o.tftp });
  }
  async image(name: string, dir: string, customizations: CustomizationItem[] = []) {
    return importImage(this.data, name, { dir, customizations, actor: 'test' });
  }
  async commit(ref: string, dir: string) {
    return commitImage(this.data, ref, dir, { actor: 'test' });
  }
  /** A node with an image and layout, armed: returns the deploy token and deployment id. */
  arm(node: string, image: string, o: { inputs?: Record<string, string>; layout?: string; bootloader?: string; macs?: string[] } = {}) {
    addNode(this.data, node, { macs: o.macs ?? ['52:54:00:aa:bb:01'], image, layoutXml: o.layout ?? DIR_LAYOUT, inputs: o.inputs, bootloader: o.bootloader }, 'test');
    return armDeployment(this.data, node, { actor: 'test' });
  }
  deployment(id: number) {
    return { row: getDeploymentRow(this.data, id), events: deploymentEvents(this.data, id) };
  }
  blobFile(digest: string): string {
    return this.data.blobs.path(digest);
  }
  async close(): Promise<void> {
    this.data.close();
    await this.srv.close();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
