// A small tmpfs of our own for the "records on tmpfs" rows: creating a file there costs almost nothing, so what
// is left is the monitor's own cost. Unmounted by the run's cleanups.
import { mkdirSync } from 'node:fs';
import { onCleanup, run } from '../../test/e2e/lib/proc';

export async function mountTmpfs(dir: string, sizeMb = 1024): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0755`, 'lmk-bench', dir]);
  onCleanup(`umount ${dir}`, async () => {
    await run('umount', [dir], { allowFail: true });
  });
  return dir;
}
