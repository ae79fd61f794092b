import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { FatalError, UsageError } from '../errors';

/** The name of group `gid` from /etc/group, else the number. */
function groupName(gid: number): string {
  try {
    const line = readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(gid));
    if (line) return line.split(':')[0];
  } catch {
    // no /etc/group: the number will do
  }
  return `gid ${gid}`;
}

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Permission denied on `path` (the file or its directory): the line naming the group to join. */
export function permissionDenied(path: string, flag = '--lease-file'): FatalError {
  let group = '_kea';
  try {
    group = groupName(statSync(path).gid);
  } catch {
    // the directory is not searchable: Kea's group is the usual answer
  }
  const user = whoAmI();
  return new FatalError(
    `${flag} ${path}: permission denied for user ${user}: Kea writes its lease file readable by its group only; add ${user} to group ${group} (usermod -aG ${group} ${user}) and restart`,
  );
}

export function isDirectoryError(path: string, flag = '--lease-file'): UsageError {
  return new UsageError(`${flag} ${path} is a directory: give Kea's lease file itself (e.g. ${path.replace(/\/+$/, '')}/kea-leases4.csv)`);
}

/**
 * Refuses a lease file that cannot become readable by waiting: its directory does not exist or it
 * is a directory (usage errors, exit 2), or it is not readable by this user (exit 1). A file that
 * does not exist yet is fine: Kea creates it at its first lease.
 */
export function checkLeaseFile(path: string, flag = '--lease-file'): void {
  const dir = dirname(path);
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(path, flag);
    throw err;
  }
  if (!st) {
    let d;
    try {
      d = statSync(dir, { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(dir, flag);
      throw err;
    }
    if (!d)
      throw new UsageError(
        `${flag} ${path}: directory ${dir} does not exist (a mistyped path? Kea's default is /var/lib/kea/kea-leases4.csv)`,
      );
    if (!d.isDirectory()) throw new UsageError(`${flag} ${path}: ${dir} is not a directory`);
    return;
  }
  if (st.isDirectory()) throw isDirectoryError(path, flag);
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(path, flag);
    throw err;
  }
}
