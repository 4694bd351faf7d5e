/**
 * Images: versions, layers with sizes, master and clones, and which nodes run which version
 * (their last successful deployment, server/ui/views.ts) beside the nodes set to install it.
 */
import type { DeploymentInfo } from '../../../db/deployments.js';
import type { NodeInfo } from '../../../db/inventory.js';
import type { ImageInfo } from '../../../store/images.js';
import { runningImages, type RunningImage } from '../../views.js';
import { ADMIN, call } from '../api.js';
import { bytes, clear, h } from '../dom.js';
import { main, nodeLink } from '../ui.js';

function links(names: string[]): (HTMLElement | string)[] | string {
  return names.length ? names.map((n, k) => [k ? ', ' : '', nodeLink(n)]).flat() : '-';
}

function running(list: RunningImage[]): HTMLElement | string {
  if (!list.length) return '-';
  return h(
    'span',
    {},
    list.map((r, k) => [
      k ? ', ' : '',
      h('span', { 'data-running': r.node }, nodeLink(r.node), ` (#${r.deployment}${r.endedAt ? ` ${r.endedAt.slice(0, 10)}` : ''}${r.overwrittenBy ? `; #${r.overwrittenBy.id} ${r.overwrittenBy.status} since` : ''})`),
    ]).flat(),
  );
}

export async function imagesPage(): Promise<void> {
  const [{ images }, { nodes }, { deployments }] = await Promise.all([
    call<{ images: ImageInfo[] }>('GET', `${ADMIN}/images`),
    call<{ nodes: NodeInfo[] }>('GET', `${ADMIN}/nodes`),
    call<{ deployments: DeploymentInfo[] }>('GET', `${ADMIN}/deployments`),
  ]);
  const runs = [...runningImages(deployments).values()];
  clear(
    main,
    h('h1', {}, 'Images'),
    images.length
      ? images.map((i) => {
          const ref = `${i.name}@${i.version}`;
          const users = nodes.filter((n) => n.image === ref || n.image === i.name).map((n) => n.name);
          const clones = images.filter((c) => c.master === i.name || c.master === ref).map((c) => `${c.name}@${c.version}`);
          return h(
            'section',
            { class: 'image', 'data-image': ref },
            h('h2', {}, ref, i.master ? h('span', { class: 'muted' }, ` clone of ${i.master}`) : ''),
            h('p', {}, `${bytes(i.size)} stored, ${bytes(i.uncompressedSize)} unpacked; digest `, h('code', {}, i.digest.slice(0, 19))),
            h('ol', { class: 'layers' }, i.layers.map((l) => h('li', {}, h('code', {}, l.digest.slice(0, 19)), ` ${bytes(l.size)}`, l.uncompressedSize ? ` (${bytes(l.uncompressedSize)} unpacked)` : ''))),
            clones.length ? h('p', {}, 'Clones: ', clones.join(', ')) : '',
            h('p', { class: 'nodes' }, 'Nodes: ', links(users)),
            h('p', { class: 'running' }, 'Running this version: ', running(runs.filter((r) => r.image === ref))),
          );
        })
      : h('p', { class: 'muted' }, 'No images (ferry image import).'),
  );
}
