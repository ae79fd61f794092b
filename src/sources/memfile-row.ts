import { checkLeasableAddress, InvalidLeaseError, LeaseFields, parseHwaddr, parseIPv4 } from '../lease';

/** Columns every Kea DHCPv4 memfile has had since format 2.0; later ones (pool_id, ...) are allowed. */
const REQUIRED = ['address', 'hwaddr', 'valid_lifetime', 'expire', 'subnet_id', 'hostname', 'state'] as const;

export interface Header {
  columns: string[];
  index: Record<(typeof REQUIRED)[number], number>;
}

export function isHeaderLine(line: string): boolean {
  return line.startsWith('address,');
}

export function parseHeader(line: string): Header {
  const columns = line.trim().split(',');
  const index = {} as Header['index'];
  for (const name of REQUIRED) {
    const i = columns.indexOf(name);
    if (i < 0) throw new InvalidLeaseError(`lease file header has no "${name}" column`);
    index[name] = i;
  }
  return { columns, index };
}

/** Kea writes "," inside a field as "&#x2c" (and can escape any byte as &#xNN). */
export function unescapeField(text: string): string {
  return text.includes('&#x') ? text.replace(/&#x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : text;
}

function integer(text: string, column: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d{1,16}$/.test(text)) throw new InvalidLeaseError(`${column} ${JSON.stringify(text.slice(0, 32))} is not a whole number`);
  const n = Number(text);
  if (n > max) throw new InvalidLeaseError(`${column} ${n} is out of range`);
  return n;
}

/** One data row of the lease file, as the raw fields of a lease. Throws InvalidLeaseError. */
export function parseRow(line: string, header: Header): LeaseFields {
  const cells = line.split(',');
  if (cells.length !== header.columns.length) {
    throw new InvalidLeaseError(`row has ${cells.length} fields, the header has ${header.columns.length}`);
  }
  const at = (name: keyof Header['index']): string => cells[header.index[name]];
  const hostname = unescapeField(at('hostname'));
  return {
    address: checkLeasableAddress(parseIPv4(at('address'))),
    hwaddr: parseHwaddr(at('hwaddr')),
    validLifetime: integer(at('valid_lifetime'), 'valid_lifetime', 0xffffffff),
    expire: integer(at('expire'), 'expire'),
    subnetId: integer(at('subnet_id'), 'subnet_id', 0xffffffff),
    hostname: hostname === '' ? null : hostname,
    state: integer(at('state'), 'state', 0xffffffff),
  };
}
