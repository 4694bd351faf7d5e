// esbuild's text loader (scripts/bundle.mjs): a bundled Markdown file is its text.
declare module '*.md' {
  const text: string;
  export default text;
}
