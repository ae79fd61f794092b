/**
 * One probe attempt and what it means. The mapping (docs/redfish.md):
 * - 200 with a JSON object that is a service root: `present`, final;
 * - any other HTTP answer (HTML, invalid JSON, not a root, 4xx, a redirect elsewhere) or a body over
 *   the size bound: `absent`, final: a web server answered and it is not Redfish;
 * - 5xx: the server is up and its service is not (yet): retried; `absent` if it never recovers;
 * - connection refused: the port is closed (a BMC whose web server is not up yet): retried;
 *   `absent` when the retry window ends;
 * - no answer (timeout, unreachable host, reset, TLS failure): retried; `unreachable` at the end.
 */
import { GetSettings, httpsGet } from './https-get';
import { parseServiceRoot, RedfishStatus, ServiceRoot } from './service-root';

export type AttemptResult =
  | { final: true; status: RedfishStatus; root: ServiceRoot | null; why: string }
  | { final: false; giveUp: Exclude<RedfishStatus, 'present'>; why: string };

const ROOT = '/redfish/v1';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GET /redfish/v1, following at most one redirect, and only to /redfish/v1/ on the same address and port. */
export async function probeAttempt(address: string, s: GetSettings, signal: AbortSignal): Promise<AttemptResult> {
  let r = await httpsGet(address, ROOT, s, signal);
  if (r.kind === 'answer' && REDIRECTS.has(r.status) && r.location !== null && sameRoot(r.location, address, s.port)) {
    r = await httpsGet(address, `${ROOT}/`, s, signal);
  }
  if (r.kind === 'too-large') return { final: true, status: 'absent', root: null, why: `the answer is larger than ${s.maxBytes} bytes` };
  if (r.kind === 'failed') {
    if (r.code === 'ECONNREFUSED') return { final: false, giveUp: 'absent', why: 'connection refused' };
    return { final: false, giveUp: 'unreachable', why: r.code };
  }
  if (r.status >= 500) return { final: false, giveUp: 'absent', why: `HTTP ${r.status}` };
  if (r.status !== 200) return { final: true, status: 'absent', root: null, why: `HTTP ${r.status}` };
  const v = parseServiceRoot(r.body);
  return v.redfish
    ? { final: true, status: 'present', root: v.root, why: 'service root' }
    : { final: true, status: 'absent', root: null, why: v.why };
}

function sameRoot(location: string, address: string, port: number): boolean {
  try {
    const base = `https://${address}${port === 443 ? '' : `:${port}`}`;
    const u = new URL(location, `${base}${ROOT}`);
    return u.origin === base && u.pathname === `${ROOT}/` && u.search === '';
  } catch {
    return false;
  }
}
