// docs/errors.md as text, aliased by scripts/bundle.mjs (esbuild's text loader).
declare module 'ferry-errors-md' {
  const text: string;
  export default text;
}
