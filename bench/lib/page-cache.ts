// One file's cached pages dropped (posix_fadvise DONTNEED through dd), as the systemd unit's ExecStartPre does
// before every start: the executable's resident pages then do not depend on how an earlier read left it cached.
import { spawnSync } from 'node:child_process';

export function dropCachedPages(file: string): void {
  const r = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dd iflag=nocache ${file} exited ${r.status}: ${r.stderr.trim()}`);
}
