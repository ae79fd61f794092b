// Timestamping observers that run in their own worker thread, so that the load generator in the main
// thread never delays the observation (and the other way round).
import { Worker } from 'node:worker_threads';

const DIR_WATCHER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const seen = new Map();
const re = /^([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\\.json$/;
const w = fs.watch(workerData.dir, (ev, name) => {
  if (!name) return;
  const m = re.exec(name);
  if (m && !seen.has(m[1])) seen.set(m[1], performance.timeOrigin + performance.now());
});
parentPort.on("message", (msg) => {
  if (msg === "count") parentPort.postMessage(seen.size);
  else if (msg === "dump") parentPort.postMessage([...seen]);
  else if (msg === "stop") { w.close(); parentPort.close(); }
});
parentPort.postMessage("ready");
`;

// Follows an append-only CSV (Kea's memfile, no rotation during a benchmark) and stamps each MAC when its row
// is first readable: that is the commit point for file mode.
const CSV_TAILER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const seen = new Map();
let fd = -1, pos = 0, partial = "";
const buf = Buffer.alloc(1 << 20);
function drain() {
  const t = performance.timeOrigin + performance.now();
  if (fd < 0) { try { fd = fs.openSync(workerData.file, "r"); } catch { return; } }
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n <= 0) break;
    pos += n;
    const lines = (partial + buf.toString("utf8", 0, n)).split("\\n");
    partial = lines.pop();
    for (const l of lines) {
      const mac = (l.split(",")[1] || "").replace(/:/g, "-");
      if (mac.length === 17 && !seen.has(mac)) seen.set(mac, t);
    }
  }
}
const w = fs.watch(workerData.dir, () => drain());
const iv = setInterval(drain, 5);
parentPort.on("message", (msg) => {
  if (msg === "dump") { drain(); parentPort.postMessage([...seen]); }
  else if (msg === "stop") { clearInterval(iv); w.close(); parentPort.close(); }
});
parentPort.postMessage("ready");
`;

export interface Stamper {
  count(): Promise<number>;
  dump(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

function start(code: string, data: Record<string, string>): Promise<Stamper> {
  const w = new Worker(code, { eval: true, workerData: data });
  const ask = <T>(msg: string) =>
    new Promise<T>((resolve) => {
      w.once('message', (m) => resolve(m as T));
      w.postMessage(msg);
    });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', () =>
      resolve({
        count: () => ask<number>('count'),
        dump: async () => new Map(await ask<[string, number][]>('dump')),
        stop: async () => {
          w.postMessage('stop');
          await w.terminate();
        },
      }),
    );
  });
}

/** Stamps the first time each aa-bb-cc-dd-ee-ff.json is renamed (or created) into dir. */
export const watchDiscovery = (dir: string) => start(DIR_WATCHER, { dir });
/** Stamps the first time each MAC's row can be read from an append-only CSV in dir. */
export const tailCsv = (dir: string, file: string) => start(CSV_TAILER, { dir, file });
