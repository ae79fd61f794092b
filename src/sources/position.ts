import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { GenerationId, isGenerationId } from './generation';

/**
 * How far file mode has read and written: the generation it was reading and the offset after the
 * last handled row. Version 1 (device and inode only) is no proof of anything: it means a replay.
 */
export interface Position {
  version: 2;
  offset: number;
  file: GenerationId;
}

export async function loadPosition(path: string): Promise<Position | null> {
  try {
    const p = JSON.parse(await readFile(path, 'utf8')) as Partial<Position>;
    if (p.version === 2 && Number.isSafeInteger(p.offset) && (p.offset as number) >= 0 && isGenerationId(p.file)) {
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

const SAVE_EVERY_MS = 1000;

/** Saves the position at most once a second (and at once when forced); saves never overlap. */
export class PositionKeeper {
  private saving: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private lastSave = 0;
  private saved: { ino: number; offset: number } | null = null;

  constructor(
    private readonly path: string,
    private readonly current: () => Position | null,
    private readonly log: Logger,
  ) {}

  /** After progress: saves now, or within a second. */
  schedule(): void {
    if (Date.now() - this.lastSave >= SAVE_EVERY_MS) {
      void this.save(false);
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.save(false);
      }, SAVE_EVERY_MS);
      this.timer.unref();
    }
  }

  save(force: boolean): Promise<void> {
    this.saving = this.saving.then(() => this.saveNow(force));
    return this.saving;
  }

  /** Final save; no timer is left behind. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.save(true);
  }

  private async saveNow(force: boolean): Promise<void> {
    let pos: Position | null;
    try {
      pos = this.current();
    } catch (err) {
      this.log.warn('Cannot identify the lease file for its position', { error: errorMessage(err) });
      return;
    }
    if (!pos) return;
    if (!force && this.saved && this.saved.ino === pos.file.ino && this.saved.offset === pos.offset) return;
    this.lastSave = Date.now();
    try {
      await savePosition(this.path, pos);
      this.saved = { ino: pos.file.ino, offset: pos.offset };
    } catch (err) {
      this.log.warn('Cannot save the lease file position', { file: this.path, error: errorMessage(err) });
    }
  }
}
