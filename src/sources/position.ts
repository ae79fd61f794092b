import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** How far file mode has read and written: the inode it was reading and the offset after the last handled row. */
export interface Position {
  version: 1;
  dev: number;
  ino: number;
  offset: number;
}

export async function loadPosition(path: string): Promise<Position | null> {
  try {
    const p = JSON.parse(await readFile(path, 'utf8')) as Partial<Position>;
    if (p.version === 1 && [p.dev, p.ino, p.offset].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
      return p as Position;
    }
  } catch {
    // Missing or damaged: replay from the start, which is safe because writes are idempotent.
  }
  return null;
}

export async function savePosition(path: string, pos: Position): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(JSON.stringify(pos) + '\n');
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
