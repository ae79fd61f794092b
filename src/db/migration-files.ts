import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The SQL files of migrations/, by file name. The build replaces this module with one that holds
 * the files' text (scripts/build.mjs), so the binary needs no migrations directory at run time.
 */
export function loadMigrationFiles(): Record<string, string> {
  const dir = join(__dirname, '..', '..', 'migrations');
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.sql'))
    .sort()) {
    files[name] = readFileSync(join(dir, name), 'utf8');
  }
  return files;
}
