/**
 * XML text → a small element tree that knows the line of every element.
 *
 * xml2js builds the tree (strict XML, attributes as strings) but keeps no positions, so a
 * second pass with `sax` (the parser xml2js itself runs on) records where each start tag
 * begins. Both walk the document in the same order (start tags, depth first), so the n-th
 * element of one is the n-th of the other.
 */
import { parseString } from 'xml2js';
import sax from 'sax';
import type { Problem } from '../common/errors.js';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** `/config/disk[2]/part[1]`: indices count same-named siblings, from 1. */
  path: string;
  line?: number;
}

interface X2JNode {
  '#name': string;
  $?: Record<string, string>;
  $$?: X2JNode[];
}

/** Line numbers of increasing offsets, counting each newline once (linear in the text). */
function lineCounter(text: string): (offset: number) => number {
  let at = 0;
  let line = 1;
  return (offset) => {
    const end = Math.min(offset, text.length);
    if (end < at) {
      at = 0;
      line = 1;
    }
    for (; at < end; at++) if (text.charCodeAt(at) === 10) line++;
    return line;
  };
}

/**
 * How deep elements may nest. An autoinstall layout is at most four deep; xml2js and the tree
 * builder recurse, so a document nested thousands deep would overflow the stack (an internal
 * error) instead of getting an answer.
 */
export const MAX_XML_DEPTH = 64;

/**
 * Start-tag lines and attributes in document order, or the first well-formedness error.
 * Attributes are taken from sax's per-attribute events into objects without a prototype:
 * xml2js (and sax's own tag object) assign them to plain objects, where an attribute named
 * `__proto__` silently vanishes instead of being reported as unknown.
 */
function tagLines(text: string): { lines: number[]; attrs: Record<string, string>[]; error?: Problem } {
  const lines: number[] = [];
  const attrs: Record<string, string>[] = [];
  let pending: Record<string, string> = Object.create(null);
  const p = sax.parser(true, { position: true });
  let error: Problem | undefined;
  let depth = 0;
  const lineAt = lineCounter(text);
  p.onattribute = (a: { name: string; value: string }) => {
    Object.defineProperty(pending, a.name, { value: a.value, enumerable: true, writable: true, configurable: true });
  };
  p.onopentag = () => {
    // startTagPosition is one past the '<'.
    const line = lineAt(p.startTagPosition - 1);
    lines.push(line);
    attrs.push(pending);
    pending = Object.create(null);
    if (++depth > MAX_XML_DEPTH && !error) {
      error = { severity: 'error', code: 'FERRY_E_LAYOUT_XML', message: `elements nested more than ${MAX_XML_DEPTH} deep (a layout needs at most 4)`, line, path: '/' };
      throw new Error('too deep'); // stop reading: nothing after this is looked at
    }
  };
  p.onclosetag = () => {
    depth--;
  };
  p.onerror = (e: Error) => {
    if (!error) {
      const first = e.message.split('\n')[0];
      error = { severity: 'error', code: 'FERRY_E_LAYOUT_XML', message: `malformed XML: ${first}`, line: p.line + 1, path: '/' };
    }
    p.resume();
  };
  try {
    p.write(text).close();
  } catch (e) {
    if (!error) error = { severity: 'error', code: 'FERRY_E_LAYOUT_XML', message: `malformed XML: ${(e as Error).message.split('\n')[0]}`, line: p.line + 1, path: '/' };
  }
  return { lines, attrs, error };
}

/**
 * Parse XML text. Returns the root element, or a problem naming the line of the first
 * well-formedness error (strict XML: SystemImager's own tools used a strict parser too).
 */
export function parseXml(text: string): { root?: XmlElement; problem?: Problem } {
  const { lines, attrs, error } = tagLines(text);
  if (error) return { problem: error };
  let doc: Record<string, X2JNode> | undefined;
  let err: Error | undefined;
  // With async:false (xml2js's default) the callback runs before parseString returns.
  parseString(text, { explicitChildren: true, preserveChildrenOrder: true, explicitRoot: true, async: false }, (e: Error | null, r: unknown) => {
    if (e) err = e;
    else doc = r as Record<string, X2JNode>;
  });
  if (err || !doc) {
    const m = /Line: (\d+)/.exec(err?.message ?? '');
    return {
      problem: {
        severity: 'error', code: 'FERRY_E_LAYOUT_XML', path: '/',
        message: `malformed XML: ${(err?.message ?? 'empty document').split('\n')[0]}`,
        line: m ? Number(m[1]) + 1 : undefined,
      },
    };
  }
  const rootName = Object.keys(doc)[0];
  if (!rootName) return { problem: { severity: 'error', code: 'FERRY_E_LAYOUT_XML', path: '/', message: 'malformed XML: no root element' } };
  let n = 0;
  const build = (node: X2JNode, name: string, path: string): XmlElement => {
    const el: XmlElement = { name, attrs: attrs[n] ?? Object.create(null), children: [], path, line: lines[n++] };
    const counts = new Map<string, number>();
    for (const c of node.$$ ?? []) {
      const cn = c['#name'];
      // Text and comments are not elements; xml2js only lists them with charsAsChildren.
      if (cn === '__text__' || cn === '__comment__') continue;
      const i = (counts.get(cn) ?? 0) + 1;
      counts.set(cn, i);
      el.children.push(build(c, cn, `${path}/${cn}[${i}]`));
    }
    return el;
  };
  const rootNode = doc[rootName] as unknown;
  // An empty root element comes back as the empty string.
  const root = typeof rootNode === 'string' ? { '#name': rootName } : (rootNode as X2JNode);
  return { root: build(root, rootName, `/${rootName}`) };
}
