/**
 * What the installer uses of layouts and disks. See layout/types.ts for the
 * data model (Layout, DiskTarget, BlockDevice, DiskPlan) and the function contract.
 */
export * from '../../layout/types.js';
export { parseLayout, readLayout } from '../../layout/parse.js';
export { partitionDevice, lvDevice } from '../../layout/names.js';
export { planDisks, mapDisks } from '../../layout/plan.js';
export { discoverDisks, parseLsblk } from './discover.js';
export { applyDiskPlan, teardownDiskPlan, checkDisks, preflight } from './apply.js';
export { systemHost, type DiskHost } from './host.js';
export { captureLayout } from './capture.js';
