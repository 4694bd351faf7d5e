import { describe, expect, it } from 'vitest';
import { run, spawnTool, setTools } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';

describe('command runner', () => {
  it('runs argv without a shell, with LC_ALL=C', async () => {
    const r = await run(['sh', '-c', 'echo "$LC_ALL" "$1"', 'sh', 'a b;c']);
    expect(r.stdout).toBe('C a b;c\n');
    expect(r.code).toBe(0);
  });

  it('passes stdin', async () => {
    const r = await run(['cat'], { input: 'hello' });
    expect(r.stdout).toBe('hello');
  });

  it('fails with argv, exit code and output tails', async () => {
    const p = run(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    await expect(p).rejects.toMatchObject({
      code: 'FERRY_E_COMMAND_FAILED',
      details: { exitCode: 3, stdoutTail: 'out\n', stderrTail: 'err\n' },
    });
    await p.catch((e) => expect(e.details.argv).toEqual(['sh', '-c', 'echo out; echo err >&2; exit 3']));
  });

  it('accepts extra ok codes', async () => {
    const r = await run(['sh', '-c', 'exit 1'], { okCodes: [0, 1] });
    expect(r.code).toBe(1);
  });

  it('names the package of a missing tool', async () => {
    setTools({ parted: '/nonexistent/parted' });
    await expect(run(['parted', '--version'])).rejects.toMatchObject({ code: 'FERRY_E_TOOL_MISSING' });
    setTools({ parted: 'parted' });
  });

  it('kills a command at its deadline', async () => {
    await expect(run(['sleep', '5'], { timeoutMs: 200 })).rejects.toMatchObject({ code: 'FERRY_E_COMMAND_TIMEOUT' });
  });

  it('streams through spawnTool', async () => {
    const s = spawnTool(['tr', 'a-z', 'A-Z']);
    let out = '';
    s.child.stdout!.on('data', (b) => (out += b));
    s.child.stdin!.end('abc');
    await s.done;
    expect(out).toBe('ABC');
  });

  it('waitFor returns the value or names what it waited for', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? n : 0), { what: 'n to reach 3', timeoutMs: 2000 })).toBe(3);
    await expect(waitFor(() => false, { what: 'the impossible', timeoutMs: 100 })).rejects.toThrow(/the impossible/);
  });
});
