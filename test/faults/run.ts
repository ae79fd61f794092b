// The fault suite (`make faults`): each scenario runs the built monitor against a throwaway PostgreSQL with the
// real Kea schema and a stream of leases, injects one fault, then counts leases lost and reservations doubled and
// the time to recover. Writes RELIABILITY.md; the last line is "N passed, N failed"; exits 1 on any failure.
// FAULTS_ONLY=regex runs only the scenarios whose name matches (RELIABILITY.md untouched unless FAULTS_REPORT=1). Needs root (namespaces, tmpfs, runuser).
import { runCleanups } from '../e2e/lib/proc';
import { crashAfterBurst } from './scenarios/async-commit';
import { failover, privilegeRevoked } from './scenarios/config';
import { listenerKilled, pgImmediate, pgStopped, sigkillDb, writerKilled } from './scenarios/database';
import { burst, diskFull, sigkillFile } from './scenarios/file';
import { forgedFlood } from './scenarios/forged';
import { haKill, haLockLost } from './scenarios/ha';
import { halfOpen } from './scenarios/network';
import { rows, writeReport } from './lib/report';
import { runScenario, ScenarioSpec } from './lib/scenario';

const ALL: ScenarioSpec[] = [
  pgStopped,
  pgImmediate,
  crashAfterBurst,
  listenerKilled,
  writerKilled,
  halfOpen,
  sigkillDb,
  sigkillFile,
  diskFull,
  failover,
  privilegeRevoked,
  haKill,
  haLockLost,
  forgedFlood,
  burst,
];

async function main(): Promise<number> {
  const only = process.env.FAULTS_ONLY ? new RegExp(process.env.FAULTS_ONLY, 'i') : null;
  const chosen = ALL.filter((s) => !only || only.test(s.name));
  const started = new Date();
  for (const s of chosen) {
    process.stdout.write(`---- ${s.name}\n`);
    await runScenario(s);
  }
  const seconds = (Date.now() - started.getTime()) / 1000;
  // A partial run (FAULTS_ONLY) leaves RELIABILITY.md alone unless FAULTS_REPORT=1.
  const partial = chosen.length !== ALL.length;
  if (!partial || process.env.FAULTS_REPORT === '1') writeReport(started, seconds, partial);
  const passed = rows.filter((r) => r.pass).length;
  process.stdout.write(
    `${partial && process.env.FAULTS_REPORT !== '1' ? 'partial run: RELIABILITY.md left as it was' : 'RELIABILITY.md written'} (${Math.round(seconds)} s)\n`,
  );
  process.stdout.write(`${passed} passed, ${rows.length - passed} failed\n`);
  return rows.length - passed === 0 ? 0 : 1;
}

main()
  .then(async (code) => {
    await runCleanups();
    process.exit(code);
  })
  .catch(async (e: Error) => {
    process.stderr.write(`faults: ${e.stack ?? e.message}\n`);
    await runCleanups();
    process.exit(1);
  });
