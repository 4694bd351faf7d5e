/**
 * How deeply a JSON text nests, read in one linear pass without parsing it. JSON.parse, and
 * everything that walks a parsed value (validators, JSON.stringify when it is stored), recurse:
 * event details nested 20,000 deep overflowed the stack as an internal error. Bodies are refused
 * above a depth before they are parsed.
 */
export const MAX_JSON_DEPTH = 64;

export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}
