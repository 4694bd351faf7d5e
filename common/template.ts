/**
 * Template placeholders (`{{ name }}`) of customization items, and the values they may name: one
 * home for the installer, which renders them (installer/customize/plan.ts), and the server,
 * which checks at arm time that each one has a value (layout/preflight.ts customizationProblems).
 */

/** `{{ name }}`, spaces allowed inside the braces. */
export const PLACEHOLDER_RE = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

/** The names a template uses, in order of first use. */
export function placeholders(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER_RE)].map((m) => m[1]))];
}

/** Values a template may use: inputs by name, node.name, node.mac, node.<property>, hostname. */
export function templateValues(node: { name: string; macs: string[]; properties: Record<string, string> }, inputs: Record<string, string>): Record<string, string> {
  const v: Record<string, string> = { 'node.name': node.name, 'node.mac': node.macs[0] ?? '', hostname: node.name };
  for (const [k, x] of Object.entries(node.properties)) v[`node.${k}`] = x;
  return { ...v, ...inputs };
}
