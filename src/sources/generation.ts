import { createHash } from 'node:crypto';
import { fstatSync, readSync } from 'node:fs';

/**
 * What tells one generation of the lease file from another. Device and inode alone do not: lease
 * file cleanup unlinks generations, and the filesystem hands a freed inode number to the next new
 * file. A new generation with a recycled inode has another birth time (where the filesystem keeps
 * one) and other first rows; the file only grows, so its size never drops below a saved size.
 */
export interface GenerationId {
  dev: number;
  ino: number;
  /** Birth time in nanoseconds (decimal); "0" where the filesystem records none. */
  birthtimeNs: string;
  /** Size when identified. */
  size: number;
  /** How many bytes from the start `headSha256` covers. */
  headLen: number;
  headSha256: string;
  /** The hashed bytes hold the header and at least one whole data row. */
  hasRow: boolean;
}

const HEAD_BYTES = 4096;
// A header plus one row of at most MAX_LINE_BYTES.
const HEAD_MAX = 4096 + 64 * 1024 + 1;

function readHead(fd: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export function identify(fd: number): GenerationId {
  const st = fstatSync(fd, { bigint: true });
  const size = Number(st.size);
  const head = readHead(fd, Math.min(size, HEAD_MAX));
  const firstNl = head.indexOf(10);
  const rowEnd = firstNl >= 0 ? head.indexOf(10, firstNl + 1) : -1;
  const hasRow = rowEnd > firstNl + 1;
  const headLen = Math.max(Math.min(head.length, HEAD_BYTES), hasRow ? rowEnd + 1 : 0);
  return {
    dev: Number(st.dev),
    ino: Number(st.ino),
    birthtimeNs: st.birthtimeNs.toString(),
    size,
    headLen,
    headSha256: sha256(head.subarray(0, headLen)),
    hasRow,
  };
}

export function isGenerationId(v: unknown): v is GenerationId {
  if (!v || typeof v !== 'object') return false;
  const g = v as Record<string, unknown>;
  const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
  return (
    count(g.dev) &&
    count(g.ino) &&
    count(g.size) &&
    count(g.headLen) &&
    (g.headLen as number) <= (g.size as number) &&
    typeof g.birthtimeNs === 'string' &&
    /^\d{1,30}$/.test(g.birthtimeNs) &&
    typeof g.headSha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(g.headSha256) &&
    typeof g.hasRow === 'boolean'
  );
}

/**
 * Whether the open file is provably the generation `saved` describes; otherwise why not. Proof
 * needs the same device, inode and first bytes, a size no smaller, and either a whole data row in
 * those bytes or the same birth time: a file holding only the header matches every generation.
 */
export function sameGeneration(saved: GenerationId, fd: number): { same: true } | { same: false; why: string } {
  const st = fstatSync(fd, { bigint: true });
  if (Number(st.dev) !== saved.dev || Number(st.ino) !== saved.ino) return { same: false, why: 'another inode' };
  if (Number(st.size) < saved.size) return { same: false, why: 'smaller than when saved' };
  const birth = st.birthtimeNs.toString();
  const birthKnown = birth !== '0' && saved.birthtimeNs !== '0';
  if (birthKnown && birth !== saved.birthtimeNs) return { same: false, why: 'recycled inode (another birth time)' };
  if (sha256(readHead(fd, saved.headLen)) !== saved.headSha256) return { same: false, why: 'recycled inode (other first rows)' };
  if (!saved.hasRow && !birthKnown) return { same: false, why: 'no data row and no birth time to tell generations apart' };
  return { same: true };
}
