/** `ferry serve`: run the image server until interrupted. */
import { parse, dataDir, usageError } from './util.js';
import { startServer } from '../server/index.js';

const USAGE = 'ferry serve [--data DIR] [--listen HOST:PORT] [--public-url URL] [--boot-dir DIR] [--kernel-arg ARG]...';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      listen: { type: 'string' },
      'public-url': { type: 'string' },
      'boot-dir': { type: 'string' },
      'kernel-arg': { type: 'string', multiple: true },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`, USAGE);
  const srv = await startServer({
    dataDir: dataDir(values),
    listen: values.listen ?? '0.0.0.0:8080',
    publicUrl: values['public-url'],
    bootDir: values['boot-dir'],
    kernelArgs: values['kernel-arg'],
  });
  if (values.json) process.stdout.write(JSON.stringify({ url: srv.url, publicUrl: srv.publicUrl, port: srv.port }) + '\n');
  else process.stdout.write(`ferry: serving ${srv.dataDir} at ${srv.url} (nodes use ${srv.publicUrl})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  return 0;
}
