/**
 * Node sets in range notation, as ClusterShell's `nodeset -f` writes them: names that differ
 * only in one run of digits fold into `web[01-12,15]`. Pure; used by the collated output of
 * `ferry exec` and `ferry push` (server/ssh/collate.ts).
 *
 * Rules: a name splits into prefix, its last run of digits, and suffix (`rack2-n07.lab` is
 * `rack2-n`, `07`, `.lab`); names with the same prefix and suffix fold into one bracket. A number
 * written with a leading zero keeps its width (`07`): it joins a range only with numbers of the
 * same width, so `n1` and `n01` stay two names (`n[1,01]`), and `n09`, `n10` fold to `n[09-10]`.
 * Names without digits stay as they are. The result is sorted (prefix, suffix, then number).
 */

interface Parts {
  prefix: string;
  num: number;
  /** Width of a zero-padded number (leading zero), else 0. */
  width: number;
  text: string;
  suffix: string;
}

function split(name: string): Parts | undefined {
  const m = /^(.*?)(\d+)(\D*)$/.exec(name);
  if (!m) return undefined;
  const text = m[2];
  // Very long digit runs do not fold: they are not counters, and Number would round them.
  if (text.length > 15) return undefined;
  return { prefix: m[1], num: Number(text), width: text.length > 1 && text.startsWith('0') ? text.length : 0, text, suffix: m[3] };
}

/** Fold names into range notation: `["web01","web02","web03","db"]` -> `db,web[01-03]`. */
export function foldNodeSet(names: Iterable<string>): string {
  const plain = new Set<string>();
  const groups = new Map<string, { prefix: string; suffix: string; parts: Map<string, Parts> }>();
  for (const n of names) {
    const p = split(n);
    if (!p) {
      plain.add(n);
      continue;
    }
    const key = JSON.stringify([p.prefix, p.suffix]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { prefix: p.prefix, suffix: p.suffix, parts: new Map() }));
    g.parts.set(p.text, p);
  }
  const out: { sort: string; text: string }[] = [...plain].map((n) => ({ sort: n, text: n }));
  for (const g of groups.values()) {
    const ps = [...g.parts.values()].sort((a, b) => a.num - b.num || a.text.length - b.text.length);
    if (ps.length === 1) {
      out.push({ sort: g.prefix + g.suffix, text: g.prefix + ps[0].text + g.suffix });
      continue;
    }
    // Build runs greedily; a number that cannot extend any open run starts its own.
    // A run takes the padding of its first number: 09 pads to width 2, so 10 continues it.
    const runs: Parts[][] = [];
    for (const p of ps) {
      const r = runs.find((run) => {
        const last = run[run.length - 1];
        return p.num === last.num + 1 && (run[0].width === 0 ? p.width === 0 : p.text.length === run[0].width);
      });
      if (r) r.push(p);
      else runs.push([p]);
    }
    runs.sort((a, b) => a[0].num - b[0].num || a[0].text.length - b[0].text.length);
    const ranges = runs.map((r) => (r.length === 1 ? r[0].text : `${r[0].text}-${r[r.length - 1].text}`));
    out.push({ sort: g.prefix + g.suffix, text: `${g.prefix}[${ranges.join(',')}]${g.suffix}` });
  }
  out.sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : a.text < b.text ? -1 : 1));
  return out.map((o) => o.text).join(',');
}
