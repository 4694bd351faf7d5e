/**
 * docs/errors.md read as data: for each code, what it means and its "Fix:" line. The web console
 * bundles the page (scripts/bundle.mjs, as text) to show the fix next to a failed deployment's code.
 */
export interface CatalogueEntry {
  meaning: string;
  fix?: string;
}

export function parseErrorCatalogue(md: string): Record<string, CatalogueEntry> {
  const out: Record<string, CatalogueEntry> = {};
  let code: string | undefined;
  // The fix is the paragraph that starts with "Fix:", wrapped over any number of lines.
  let inFix = false;
  for (const line of md.split('\n')) {
    const m = /^###\s+(FERRY_[EW]_[A-Z0-9_]+)\s*$/.exec(line);
    if (m) {
      code = m[1];
      out[code] = { meaning: '' };
      inFix = false;
    } else if (/^#/.test(line)) code = undefined;
    else if (!code) continue;
    else if (!line.trim()) inFix = false;
    else if (line.startsWith('Fix:')) {
      out[code].fix = line.slice(4).trim();
      inFix = true;
    } else if (inFix) out[code].fix += ' ' + line.trim();
    else if (out[code].fix === undefined) out[code].meaning = (out[code].meaning + ' ' + line.trim()).trim();
  }
  return out;
}
