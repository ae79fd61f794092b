import { checkLeasableAddress, checkSubnetId, InvalidLeaseError, LeaseFields, parseHwaddr } from '../lease';

/** The JSON our lease4 trigger sends (migrations/0002_lease4_notify.up.sql). */
interface PayloadV1 {
  v: 1;
  op: 'insert' | 'update';
  address: number;
  hwaddr: string | null;
  subnet_id: number;
  state: number | null;
  valid_lifetime: number | null;
  expire: number | null;
  hostname: string | null;
}

function int(v: unknown, field: string, nullable: boolean): number | null {
  if (v === null && nullable) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidLeaseError(`payload field ${field} is not a non-negative integer`);
  }
  return v;
}

/** Any NOTIFY on the channel is untrusted (anyone with CONNECT can send one): validate every field. */
export function parseNotifyPayload(text: string): LeaseFields {
  if (text.length > 8000) throw new InvalidLeaseError('payload longer than NOTIFY allows');
  let p: Partial<PayloadV1>;
  try {
    p = JSON.parse(text) as Partial<PayloadV1>;
  } catch {
    throw new InvalidLeaseError('payload is not JSON');
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new InvalidLeaseError('payload is not a JSON object');
  if (p.v !== 1) throw new InvalidLeaseError(`payload version ${JSON.stringify(p.v)} is not 1`);
  if (p.op !== 'insert' && p.op !== 'update') throw new InvalidLeaseError('payload op is not insert or update');
  if (p.hostname !== null && p.hostname !== undefined && typeof p.hostname !== 'string') {
    throw new InvalidLeaseError('payload hostname is not a string');
  }
  if (p.hwaddr !== null && p.hwaddr !== undefined && typeof p.hwaddr !== 'string') {
    throw new InvalidLeaseError('payload hwaddr is not a string');
  }
  return {
    address: checkLeasableAddress(int(p.address, 'address', false) as number),
    hwaddr: parseHwaddr(p.hwaddr ?? ''),
    subnetId: checkSubnetId(int(p.subnet_id, 'subnet_id', false) as number),
    state: int(p.state ?? 0, 'state', false) as number,
    validLifetime: int(p.valid_lifetime, 'valid_lifetime', true) ?? 1,
    expire: int(p.expire, 'expire', true) ?? Number.MAX_SAFE_INTEGER,
    hostname: p.hostname ?? null,
  };
}
