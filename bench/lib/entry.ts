import { runCleanups } from '../../test/e2e/lib/proc';
import { putSection } from './kept-sections';

/** Prints a benchmark's section and, unless --no-write, puts it into BENCHMARKS.md under `make <target>`. */
export function publishSection(target: string, md: string): void {
  process.stdout.write(`\n${md}\n`);
  if (!process.argv.includes('--no-write')) putSection(`make ${target}`, md);
}

/** Runs a benchmark's main, then its cleanups, and exits with its code (1 and the stack when it throws). */
export function runBench(target: string, main: () => Promise<number>): void {
  void main()
    .catch((e: Error) => {
      process.stdout.write(`${target} failed: ${e.stack}\n`);
      return 1;
    })
    .then(async (code) => {
      await runCleanups();
      process.exit(code);
    });
}
