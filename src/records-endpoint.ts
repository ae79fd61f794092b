import { constants, type Dir } from 'node:fs';
import { open, opendir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { M, Metrics, Route } from './metrics';
import type { Options } from './options';

/** Where the discovery records are served, one JSON object per line (NDJSON). */
export const DISCOVERY_PATH = '/discovery';

// Only files the discovery writer names (hex octets and dashes): never its temp files, never anything else.
const RECORD_FILE = /^[0-9a-f]{2}(?:-[0-9a-f]{2}){0,19}\.json$/;
// A record is a few hundred bytes; anything this large was not written by the monitor.
const MAX_RECORD_BYTES = 64 * 1024;
// Each stream holds one directory handle and one record at a time; this bounds them all together.
const MAX_STREAMS = 4;
// A client that reads nothing for this long is dropped.
const STALL_MS = 60_000;
// Directory entries read per getdents call.
const DIR_BUFFER = 128;

/** The routes the metrics listener adds for the records: none when --no-discovery-endpoint. */
export function recordRoutes(options: Pick<Options, 'discoveryEndpoint' | 'outputDir'>, metrics: Metrics): Record<string, Route> {
  if (!options.discoveryEndpoint) return {};
  const endpoint = new RecordsEndpoint(options.outputDir, metrics);
  return { [DISCOVERY_PATH]: (req, res) => endpoint.handle(req, res) };
}

/**
 * GET /discovery: every record in the output directory as NDJSON, read from the directory while
 * the response is written (bounded memory whatever the number of records; order is the
 * directory's). Read-only: the listener answers GET and HEAD only. A record that cannot be read
 * or parsed is skipped and counted; a failure of the directory itself cuts the response short, so
 * a client sees an error rather than a silently incomplete list.
 */
class RecordsEndpoint {
  private streams = 0;

  constructor(
    private readonly dir: string,
    private readonly metrics: Metrics,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.streams >= MAX_STREAMS) {
      res
        .writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' })
        .end(`at most ${MAX_STREAMS} ${DISCOVERY_PATH} streams at once\n`);
      return;
    }
    this.streams++;
    this.stream(req, res)
      .catch((err: unknown) => {
        const why = (err as NodeJS.ErrnoException).code ?? String(err);
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' }).end(`cannot read the records: ${why}\n`);
        else res.destroy(err as Error);
      })
      .finally(() => this.streams--);
  }

  private async stream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const dir: Dir = await opendir(this.dir, { bufferSize: DIR_BUFFER });
    try {
      res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      let gone = false;
      res.once('close', () => (gone = true));
      res.setTimeout(STALL_MS, () => res.destroy());
      for (let entry = await dir.read(); entry !== null && !gone; entry = await dir.read()) {
        if (!RECORD_FILE.test(entry.name)) continue;
        const line = await readRecordLine(join(this.dir, entry.name));
        if (line === null) {
          this.metrics.inc(...M.recordsServed, { result: 'skipped' });
          continue;
        }
        if (gone) break;
        this.metrics.inc(...M.recordsServed, { result: 'served' });
        if (!res.write(line)) await drained(res);
      }
      res.end();
    } finally {
      await dir.close().catch(() => undefined);
    }
  }
}

/** One record as one compact JSON line, or null when it is gone, a symlink, oversized or not a JSON object. */
async function readRecordLine(path: string): Promise<string | null> {
  let text: string;
  try {
    // No symlinks followed: only the writer's own files are served.
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_RECORD_BYTES) return null;
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return null; // removed or replaced between listing and reading
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
    // Re-serialised: one line whatever the file's layout.
    return JSON.stringify(value) + '\n';
  } catch {
    return null;
  }
}

// Also settles when the client has gone: a stalled or closed client must not hold a slot.
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve();
      return;
    }
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
