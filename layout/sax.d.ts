// Minimal typing of `sax` (the parser xml2js is built on), for the line-number pass.
declare module 'sax' {
  export interface Tag {
    name: string;
    attributes: Record<string, string>;
    isSelfClosing: boolean;
  }
  export interface SAXParser {
    line: number;
    column: number;
    position: number;
    startTagPosition: number;
    onopentag: (tag: Tag) => void;
    onattribute: (attr: { name: string; value: string }) => void;
    onclosetag: (name: string) => void;
    onerror: (e: Error) => void;
    write(s: string): SAXParser;
    close(): SAXParser;
    resume(): SAXParser;
  }
  export function parser(strict: boolean, opts?: { position?: boolean; trim?: boolean; lowercase?: boolean }): SAXParser;
  const sax: { parser: typeof parser };
  export default sax;
}
