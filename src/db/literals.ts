import { escapeLiteral } from 'pg';

// SQL literals for statements sent in one simple-protocol round trip (EXECUTE of a prepared
// statement). Every value is untrusted: text goes through node-postgres' escapeLiteral (quotes
// doubled, backslashes in an E'' string), bytes as hex, numbers only when they are safe integers.

/** A value no literal can carry; SQLSTATE 22000 so the writer treats it as bad data (that lease alone is skipped). */
export class LiteralError extends Error {
  override name = 'LiteralError';
  readonly code = '22000';
}

export function textLiteral(v: string | null): string {
  if (v === null) return 'NULL';
  // A NUL would end the simple-protocol message early; PostgreSQL text cannot hold one anyway.
  if (v.includes('\0')) throw new LiteralError('text value contains NUL');
  return escapeLiteral(v);
}

export function intLiteral(v: number | null): string {
  if (v === null) return 'NULL';
  if (!Number.isSafeInteger(v)) throw new LiteralError(`not a safe integer: ${String(v)}`);
  return String(v);
}

export function boolLiteral(v: boolean): string {
  return v ? 'true' : 'false';
}

export function byteaLiteral(v: Buffer): string {
  // E'' so the backslash means the same whatever standard_conforming_strings says.
  return `E'\\\\x${v.toString('hex')}'::bytea`;
}

/** ARRAY[...]::type[] of already-rendered literals ('{}' when empty: ARRAY[] needs a type). */
export function arrayLiteral(items: string[], type: string): string {
  return items.length === 0 ? `'{}'::${type}[]` : `ARRAY[${items.join(',')}]::${type}[]`;
}
