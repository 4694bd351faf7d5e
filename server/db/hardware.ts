/**
 * A node's hardware inventory: the `hw.*` properties, replaced as a set at each report (a disk
 * that was pulled disappears), other properties untouched. One audit row per report.
 */
import { inventoryProperties, type Inventory } from '../../common/inventory.js';
import { now, type DataDir } from '../context.js';
import { j } from './index.js';

export function recordInventory(d: DataDir, nodeId: number, inv: Inventory, actor: string): number {
  const props = inventoryProperties(inv);
  d.write(() => {
    const row = d.db.prepare('SELECT name, properties FROM nodes WHERE id = ?').get(nodeId) as { name: string; properties: string } | undefined;
    if (!row) return;
    const kept = Object.fromEntries(Object.entries(j<Record<string, string>>(row.properties, {})).filter(([k]) => !k.startsWith('hw.')));
    d.db.prepare('UPDATE nodes SET properties = ?, updated_at = ? WHERE id = ?').run(JSON.stringify({ ...kept, ...props }), now(), nodeId);
    d.audit(actor, 'node.inventory', row.name, { properties: Object.keys(props).length, vendor: inv.system.vendor, product: inv.system.product, serial: inv.system.serial });
  });
  return Object.keys(props).length;
}
