import { loadMigrationFiles } from './migration-files';

/** One numbered migration: migrations/NNNN_name.up.sql and its rollback NNNN_name.down.sql. */
export interface Migration {
  id: string;
  name: string;
  up: string;
  down: string;
}

export const ARBITER_MIGRATION = '0001';
export const NOTIFY_MIGRATION = '0002';
export const VERSION_MIGRATION = '0003';
// The functions the write uses (ownership mark, HA fence), then the write itself.
export const WRITER_FUNCTIONS_MIGRATION = '0004';
export const WRITER_MIGRATION = '0005';

export function listMigrations(files: Record<string, string> = loadMigrationFiles()): Migration[] {
  const byName = new Map<string, Partial<Migration>>();
  for (const [file, sql] of Object.entries(files)) {
    const m = /^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$/.exec(file);
    if (!m) throw new Error(`migrations/${file}: name must be NNNN_name.up.sql or NNNN_name.down.sql`);
    const entry = byName.get(m[1]) ?? { id: m[1], name: `${m[1]}_${m[2]}` };
    entry[m[3] as 'up' | 'down'] = sql;
    byName.set(m[1], entry);
  }
  return [...byName.values()]
    .map((m) => {
      if (!m.up || !m.down) throw new Error(`migration ${m.name} needs both an .up.sql and a .down.sql`);
      return m as Migration;
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}
