/**
 * `ferry ssh-pipe [--data DIR] [--user U] NODE COMMAND...`: run COMMAND on NODE over Ferry's
 * verified SSH connection, with this process's stdin, stdout and stderr as the channel's. It is
 * the remote shell (`rsync -e`) of `ferry update`; the host key is checked as for `ferry exec`.
 */
import { DataDir } from '../server/context.js';
import { connect, channelError } from '../server/ssh/connect.js';
import { nodeTarget } from '../server/ssh/exec.js';
import { ferryKey } from '../server/ssh/keys.js';
import { ownerOf } from '../server/ssh/trust.js';
import { dataDir, usageError } from '../common/cli.js';

const USAGE = `ferry ssh-pipe [--data DIR] [--user U] NODE COMMAND...
  runs COMMAND on NODE over Ferry's verified SSH connection, piping stdin, stdout and stderr
  (the remote shell ferry update gives rsync); exits with the command's exit code`;

export async function run(argv: string[]): Promise<number> {
  const o: { data?: string; user: string } = { user: 'root' };
  let i = 0;
  for (; i < argv.length; i++) {
    if (argv[i] === '--data' && i + 1 < argv.length) o.data = argv[++i];
    else if (argv[i] === '--user' && i + 1 < argv.length) o.user = argv[++i];
    else if (argv[i] === '--help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else break;
  }
  const [node, ...command] = argv.slice(i);
  if (!node || !command.length) throw usageError('ferry ssh-pipe needs a node and a command', USAGE);
  const d = new DataDir(dataDir(o));
  let conn;
  try {
    const { target, id } = nodeTarget(d, node, o.user);
    conn = await connect(d, target, { privateKey: ferryKey(d.dir).privateKey, owner: ownerOf(target, { id, name: node }) });
  } finally {
    d.close();
  }
  const c = conn;
  return await new Promise<number>((resolve, reject) => {
    c.client.exec(command.join(' '), (err, ch) => {
      if (err) return reject(channelError(c, err));
      let code = 255;
      process.stdin.pipe(ch);
      ch.pipe(process.stdout);
      ch.stderr.pipe(process.stderr);
      ch.on('exit', (x: number | null) => (code = x ?? 255));
      ch.on('close', () => {
        c.close();
        process.stdin.unpipe(ch);
        process.stdin.destroy();
        resolve(code);
      });
    });
  });
}
