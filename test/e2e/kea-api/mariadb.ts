// MariaDB from the forky root, started inside the Kea namespace (so 127.0.0.1:3306 is private to
// the test), with Kea's own MySQL schema loaded by the root's kea-admin.
import { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup, stopChild, waitFor } from '../lib/proc';
import { Binds, runInRoot, spawnInRoot } from './root';

export interface MariaDb {
  proc: ChildProcess;
  database: string;
  sql(q: string): Promise<string>;
}

export async function startMariaDb(root: string, ns: string, dir: string): Promise<MariaDb> {
  const data = join(dir, 'mysql');
  const sock = join(dir, 'mysqld');
  for (const d of [data, sock]) {
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
  }
  const binds: Binds = { [data]: '/var/lib/mysql', [sock]: '/run/mysqld' };
  await runInRoot(root, ns, binds, [
    'mariadb-install-db',
    '--user=mysql',
    '--datadir=/var/lib/mysql',
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
  ]);
  const proc = spawnInRoot(
    root,
    ns,
    binds,
    [
      'mariadbd',
      '--user=mysql',
      '--datadir=/var/lib/mysql',
      '--socket=/run/mysqld/mysqld.sock',
      '--bind-address=127.0.0.1',
      '--port=3306',
      '--skip-name-resolve',
      '--innodb-flush-log-at-trx-commit=0',
    ],
    join(dir, 'mariadbd.log'),
  );
  onCleanup('mariadbd', () => stopChild(proc, 15000));
  const sql = async (q: string) =>
    (await runInRoot(root, ns, binds, ['mariadb', '--socket=/run/mysqld/mysqld.sock', '-uroot', '-N', '-B', '-e', q])).stdout;
  await waitFor(
    'mariadbd accepting connections',
    async () => {
      if (proc.exitCode !== null) throw new Error(`mariadbd exited ${proc.exitCode} (see ${dir}/mariadbd.log)`);
      return (await sql('SELECT 1')).trim() === '1';
    },
    60000,
    250,
  );
  await sql("CREATE DATABASE kea; CREATE USER 'kea'@'127.0.0.1' IDENTIFIED BY 'kea-test'; GRANT ALL ON kea.* TO 'kea'@'127.0.0.1'");
  const init = await runInRoot(root, ns, binds, [
    'kea-admin',
    'db-init',
    'mysql',
    '-h',
    '127.0.0.1',
    '-u',
    'kea',
    '-p',
    'kea-test',
    '-n',
    'kea',
  ]);
  if (!/Schema version reported after initialization: \d+/.test(init.stdout + init.stderr)) {
    throw new Error(`kea-admin db-init mysql: ${(init.stdout + init.stderr).slice(-400)}`);
  }
  return { proc, database: 'kea', sql: (q) => sql(`USE kea; ${q}`) };
}
