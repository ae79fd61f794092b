import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small tmpfs (needs root) for full-disk and read-only tests: fill() takes every free block,
 * free() gives them back, readOnly(true|false) remounts it. Unmounted by unmount() or at exit.
 */
export class SmallTmpfs {
  private filler = 0;
  private mounted = true;

  private constructor(readonly dir: string) {}

  static mount(sizeKiB = 1024): SmallTmpfs {
    const dir = mkdtempSync(join(tmpdir(), 'klm-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'klm-test', dir]);
    const fs = new SmallTmpfs(dir);
    process.on('exit', () => fs.unmount());
    return fs;
  }

  /** Writes filler files until the filesystem reports ENOSPC. */
  fill(): void {
    const d = join(this.dir, '.filler');
    mkdirSync(d, { recursive: true });
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (;;) {
      const fd = openSync(join(d, String(++this.filler)), 'w');
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(fd);
      }
      // Small writes may still fit in the last partial block: fill those too.
      try {
        const fd2 = openSync(join(d, `${this.filler}-tail`), 'w');
        try {
          for (;;) writeSync(fd2, Buffer.alloc(512, 1));
        } finally {
          closeSync(fd2);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw err;
      }
    }
  }

  free(): void {
    rmSync(join(this.dir, '.filler'), { recursive: true, force: true });
  }

  readOnly(on: boolean): void {
    execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, this.dir]);
  }

  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    try {
      execFileSync('umount', ['-l', this.dir], { stdio: 'ignore' });
      rmdirSync(this.dir);
    } catch {
      // already gone
    }
  }
}
