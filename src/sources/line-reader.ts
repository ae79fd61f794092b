import { read } from 'node:fs';
import { promisify } from 'node:util';

const readAt = promisify(read);

const CHUNK = 1 << 20;
const decoder = new TextDecoder('utf-8', { fatal: false });

export interface Line {
  /** Decoded text (invalid UTF-8 repaired to U+FFFD), without the newline. */
  text: string;
  /** Byte offset just past this line's newline. */
  end: number;
  /** The line was longer than any Kea row can be; `text` holds only its start. */
  oversized?: boolean;
}

// Kea rows are a few hundred bytes; a longer "line" is garbage and must not grow memory.
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * Reads whole lines from an open file, from a byte offset on. A last line without its newline is
 * kept back until Kea finishes writing it (Kea writes each row as one write, without fsync).
 */
export class LineReader {
  private partial: Buffer = Buffer.alloc(0);
  private readOffset: number;
  // Inside an oversized line: discard until its newline.
  private skipping = false;
  // One read buffer per file: lines are decoded (copied) before the next read reuses it.
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(
    readonly fd: number,
    startOffset: number,
  ) {
    this.readOffset = startOffset;
  }

  /** Offset just past the last complete line returned. */
  get consumed(): number {
    return this.readOffset - this.partial.length;
  }

  get pendingBytes(): number {
    return this.partial.length;
  }

  /** Up to about `maxBytes` of complete lines; an empty array at end of file. */
  async read(maxBytes = 4 * CHUNK): Promise<Line[]> {
    const lines: Line[] = [];
    let budget = maxBytes;
    const want = Math.min(CHUNK, maxBytes);
    // Past the budget only while no complete line has turned up: an empty answer means end of file.
    while (budget > 0 || lines.length === 0) {
      const buf = this.buf;
      const { bytesRead } = await readAt(this.fd, buf, 0, want, this.readOffset);
      if (bytesRead === 0) break;
      budget -= bytesRead;
      const base = this.readOffset - this.partial.length;
      this.readOffset += bytesRead;
      const data = this.partial.length ? Buffer.concat([this.partial, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      let start = 0;
      for (let nl = data.indexOf(10, start); nl >= 0; nl = data.indexOf(10, start)) {
        if (this.skipping) {
          this.skipping = false;
        } else if (nl - start > MAX_LINE_BYTES) {
          lines.push({ text: decoder.decode(data.subarray(start, start + 200)), end: base + nl + 1, oversized: true });
        } else {
          let text = decoder.decode(data.subarray(start, nl));
          if (text.endsWith('\r')) text = text.slice(0, -1);
          lines.push({ text, end: base + nl + 1 });
        }
        start = nl + 1;
      }
      if (data.length - start > MAX_LINE_BYTES) {
        if (!this.skipping) {
          // Its end is not known yet: report where it starts, so a saved position never points into it.
          lines.push({ text: decoder.decode(data.subarray(start, start + 200)), end: base + start, oversized: true });
        }
        this.skipping = true;
        start = data.length;
      }
      this.partial = Buffer.from(data.subarray(start));
      if (lines.length > 0 && bytesRead < want) break;
    }
    return lines;
  }
}
