/**
 * --require-redfish: a selected lease is reserved only once its device has answered as a Redfish
 * service. Pure, shared by the daemon's gate (redfish/gate.ts) and `plan`, so they cannot disagree.
 */
import type { RedfishStatus } from '../redfish/service-root';

export type RedfishVerdict = 'reserve' | 'pending-probe' | 'not-redfish';

/**
 * `status`: what the device's last probe found (null: never probed, or forgotten); `settled`: that
 * result still stands, so no new probe starts for this lease.
 */
export function redfishVerdict(status: RedfishStatus | null, settled: boolean): RedfishVerdict {
  if (status === 'present') return 'reserve';
  if (status !== null && settled) return 'not-redfish';
  return 'pending-probe';
}
