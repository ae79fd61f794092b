// A suite that stops making progress says where, then fails, instead of sitting until CI's own timeout.
import { execFileSync } from 'node:child_process';
import { lastCheck } from './checks';

/** No check for this long: print what the harness is waiting on (once per period). */
const REPORT_AFTER_MS = 4 * 60_000;
/** No check for this long: give up (a Kea root built from scratch takes a few minutes, never this long). */
const GIVE_UP_AFTER_MS = 20 * 60_000;

function waitingOn(): string {
  const resources = process.getActiveResourcesInfo().join(', ');
  let children: string;
  try {
    children = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,etimes=,args='], { encoding: 'utf8' }).trim();
  } catch {
    children = ''; // ps exits 1 when there is none
  }
  return `active resources: ${resources}\nchild processes:\n${children || '(none)'}`;
}

/** Starts the watch; onGiveUp runs once when the suite has been stuck for GIVE_UP_AFTER_MS. */
export function watchForStall(onGiveUp: (why: string) => void): void {
  let reportedFor = 0;
  const timer = setInterval(() => {
    const { label, at } = lastCheck();
    const idle = Date.now() - at;
    const where = `no check for ${Math.round(idle / 1000)} s; the last was "${label}"`;
    if (idle >= GIVE_UP_AFTER_MS) {
      clearInterval(timer);
      onGiveUp(`${where}\n${waitingOn()}`);
    } else if (idle >= REPORT_AFTER_MS && Math.floor(idle / REPORT_AFTER_MS) > reportedFor) {
      reportedFor = Math.floor(idle / REPORT_AFTER_MS);
      process.stdout.write(`# stalled? ${where}\n# ${waitingOn().replace(/\n/g, '\n# ')}\n`);
    } else if (idle < REPORT_AFTER_MS) reportedFor = 0;
  }, 15_000);
  timer.unref();
}
