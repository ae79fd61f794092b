import type { FenceToken } from '../domain/fence';
import type { Lease } from '../lease';
import { makeMark, newRowContext } from '../ownership';

/**
 * The call of kea_lm_write_reservations (migration 0005): its text, fixed, and its parameters, the
 * only encoder of a batch. Every value is a bound parameter; text goes as its UTF-8 bytes (bytea),
 * so neither client_encoding nor standard_conforming_strings can change what the server reads.
 */

/** upsert: on the arbiter; insert: check-then-write (no arbiter); classify: decide only. */
export type CallMode = 'upsert' | 'insert' | 'classify';

export interface CallSettings {
  mode: CallMode;
  /** Most of the monitor's reservations per subnet; null: no cap. */
  maxPerSubnet: number | null;
  fence?: FenceToken;
  /** false: synchronous_commit = off for this transaction (database mode only). */
  durable: boolean;
}

export const CALL_TEXT = `SELECT idx, action, own_id, holder_id, host_id, inserted, lease4_hostname FROM kea_lm_write_reservations(
  $1::text, $2::boolean, $3::int, $4::int, $5::int, $6::bigint,
  $7::bytea[], $8::bigint[], $9::bigint[], $10::bytea[], $11::int[], $12::boolean[], $13::int, $14::bytea, $15::bytea)`;

/**
 * The call as a named prepared statement: parsed and planned once per connection, not per batch.
 * bench/prep-probe.ts, one lease per call: server CPU 260 against 298 µs per call, CPU that Kea's
 * own commits share. The name carries the migration that defines the call.
 */
export const CALL_NAME = 'kea_lm_write_reservations_0005';

/** The SQLSTATE the function raises when the HA fence is closed. */
export const FENCE_CLOSED = 'KLM01';

function utf8(v: string | null): Buffer | null {
  return v === null ? null : Buffer.from(v, 'utf8');
}

/**
 * A bytea[] parameter as array-literal text: each element "\\x<hex>" or NULL, pure ASCII. What
 * node-postgres would send for an array of Buffers, without its per-element overhead.
 */
function byteaArray(values: ReadonlyArray<Buffer | null>): string {
  return `{${values.map((b) => (b === null ? 'NULL' : `"\\\\x${b.toString('hex')}"`)).join(',')}}`;
}

export function callValues(batch: ReadonlyArray<{ lease: Lease; idx: number }>, s: CallSettings): unknown[] {
  const now = new Date();
  const writes = s.mode !== 'classify';
  return [
    s.mode,
    s.durable,
    s.fence?.lockClass ?? null,
    s.fence?.lockKey ?? null,
    s.fence?.pid ?? null,
    s.fence?.backendStart ?? null,
    byteaArray(batch.map(({ lease }) => lease.hwaddr)),
    batch.map(({ lease }) => lease.subnetId),
    batch.map(({ lease }) => lease.address),
    byteaArray(batch.map(({ lease }) => utf8(lease.hostname))),
    batch.map(({ idx }) => idx),
    batch.map(({ lease }) => lease.source === 'database'),
    s.maxPerSubnet,
    writes ? utf8(newRowContext(makeMark('memfile', now))) : null,
    writes ? utf8(newRowContext(makeMark('database', now))) : null,
  ];
}
