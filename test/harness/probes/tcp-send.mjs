// Runs inside the server's namespace: sends the same BYTES pseudo-random bytes to every HOST:PORT at
// once and prints one JSON line {sha256, targets: [{target, ms}]} when every connection is closed.
// Usage: node tcp-send.mjs BYTES HOST:PORT...
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const bytes = Number(process.argv[2]);
const targets = process.argv.slice(3);
const data = randomBytes(bytes);
const sha256 = createHash('sha256').update(data).digest('hex');
const started = performance.now();
const results = await Promise.all(
  targets.map(
    (t) =>
      new Promise((resolve, reject) => {
        const [host, port] = t.split(':');
        const c = connect(Number(port), host, () => c.end(data));
        c.on('error', reject);
        c.on('close', () => resolve({ target: t, ms: performance.now() - started }));
      }),
  ),
);
process.stdout.write(JSON.stringify({ sha256, targets: results }) + '\n');
