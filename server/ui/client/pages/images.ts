/** Images: versions, layers with sizes, master and clones, which nodes run which version. */
import type { NodeInfo } from '../../../db/inventory.js';
import type { ImageInfo } from '../../../store/images.js';
import { ADMIN, call } from '../api.js';
import { bytes, clear, h } from '../dom.js';
import { main } from '../ui.js';

export async function imagesPage(): Promise<void> {
  const [{ images }, { nodes }] = await Promise.all([call<{ images: ImageInfo[] }>('GET', `${ADMIN}/images`), call<{ nodes: NodeInfo[] }>('GET', `${ADMIN}/nodes`)]);
  clear(
    main,
    h('h1', {}, 'Images'),
    images.length
      ? images.map((i) => {
          const ref = `${i.name}@${i.version}`;
          const users = nodes.filter((n) => n.image === ref || n.image === i.name).map((n) => n.name);
          return h(
            'section',
            { class: 'image', 'data-image': ref },
            h('h2', {}, ref, i.master ? h('span', { class: 'muted' }, ` clone of ${i.master}`) : ''),
            h('p', {}, `${bytes(i.size)} stored, ${bytes(i.uncompressedSize)} unpacked; digest `, h('code', {}, i.digest.slice(0, 19))),
            h('ol', { class: 'layers' }, i.layers.map((l) => h('li', {}, h('code', {}, l.digest.slice(0, 19)), ` ${bytes(l.size)}`, l.uncompressedSize ? ` (${bytes(l.uncompressedSize)} unpacked)` : ''))),
            h('p', {}, 'Nodes: ', users.length ? users.map((n, k) => [k ? ', ' : '', h('a', { href: `#/node/${encodeURIComponent(n)}` }, n)]).flat() : '-'),
          );
        })
      : h('p', { class: 'muted' }, 'No images (ferry image import).'),
  );
}
