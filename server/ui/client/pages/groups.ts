/** Groups: the nesting as a tree, like PowerCockpit's workspace. */
import type { GroupInfo } from '../../../db/groups.js';
import { ADMIN, call } from '../api.js';
import { clear, h } from '../dom.js';
import { main } from '../ui.js';

export async function groupsPage(): Promise<void> {
  const { groups } = await call<{ groups: GroupInfo[] }>('GET', `${ADMIN}/groups`);
  const byName = new Map(groups.map((g) => [g.name, g]));
  const included = new Set(groups.flatMap((g) => g.includes));
  const branch = (g: GroupInfo, seen: Set<string>): HTMLElement =>
    h(
      'li',
      { role: 'treeitem', 'data-group': g.name },
      h('details', { open: true }, h('summary', {}, g.name, h('span', { class: 'muted' }, ` ${g.allNodes.length} nodes${g.description ? ' - ' + g.description : ''}`)),
        h('ul', { role: 'group' }, g.includes.filter((c) => !seen.has(c) && byName.has(c)).map((c) => branch(byName.get(c)!, new Set([...seen, c]))), g.nodes.map((n) => h('li', { role: 'treeitem' }, h('a', { href: `#/node/${encodeURIComponent(n)}` }, n))))),
    );
  const roots = groups.filter((g) => !included.has(g.name));
  clear(main, h('h1', {}, 'Groups'), groups.length ? h('ul', { role: 'tree', class: 'tree', id: 'group-tree' }, roots.map((g) => branch(g, new Set([g.name])))) : h('p', { class: 'muted' }, 'No groups (ferry group add).'));
}
