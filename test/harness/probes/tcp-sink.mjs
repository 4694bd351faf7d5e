// Runs inside a node's namespace: accepts one TCP connection on PORT, counts its bytes and prints
// one JSON line {bytes, ms, sha256} when the sender closes. ms runs from the first byte to the end,
// so it measures the link, not how long the sender took to connect.
// Usage: node tcp-sink.mjs PORT
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';

const port = Number(process.argv[2]);
const srv = createServer((c) => {
  const hash = createHash('sha256');
  let bytes = 0;
  let first = 0;
  c.on('data', (d) => {
    if (!first) first = performance.now();
    bytes += d.length;
    hash.update(d);
  });
  c.on('end', () => {
    const ms = first ? performance.now() - first : 0;
    process.stdout.write(JSON.stringify({ bytes, ms, sha256: hash.digest('hex') }) + '\n', () => process.exit(0));
  });
});
srv.listen(port, '0.0.0.0', () => process.stdout.write(`listening ${port}\n`));
