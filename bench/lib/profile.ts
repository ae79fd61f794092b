// Reads the .cpuprofile files `node --cpu-prof` wrote (one per thread) and says where the CPU went, by category.
// A sample's time goes to the category of the innermost frame that is bundle code (esbuild keeps a
// `// path/to/module` comment before each module, so a frame's line number names its source file); time in
// Node's own JavaScript and in native code (JSON.parse, fs syscalls, socket writes) goes to the bundle code that
// called it. Samples with no bundle frame on the stack are GC, idle, or other.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CATEGORIES = ['parsing', 'validation', 'SQL', 'logging', 'discovery write', 'metrics', 'other', 'GC', 'idle'] as const;
export type Category = (typeof CATEGORIES)[number];

// First match wins; paths as the bundle's module comments spell them.
const RULES: [RegExp, Category][] = [
  [/^src\/sources\/(notify-payload|memfile-row|line-reader)\.ts$/, 'parsing'],
  [/^src\/lease\.ts$/, 'validation'],
  [
    /^(node_modules\/(pg|pg-protocol|pg-pool|pg-types|pg-connection-string|pgpass|postgres-[a-z]+|buffer-writer|packet-reader|split2)\/|src\/db\/|src\/writers\/)/,
    'SQL',
  ],
  [
    /^(node_modules\/(winston|winston-transport|logform|triple-beam|readable-stream|safe-stable-stringify|@colors|colors|fecha|ms|one-time|fn\.name|stack-trace|text-hex|kuler|color[a-z-]*|simple-swizzle|is-arrayish|@dabh|enabled|async|string_decoder|util-deprecate|inherits|safe-buffer)\/|src\/logger\.ts$|src\/log-sink\.ts$)/,
    'logging',
  ],
  [/^(src\/discovery\.ts$|src\/pipeline\/records\.ts$|src\/discovery\/)/, 'discovery write'],
  [/^(node_modules\/(prom-client|tdigest|bintrees)\/|src\/metrics\.ts$)/, 'metrics'],
];

export function categoryOf(modulePath: string): Category {
  for (const [re, c] of RULES) if (re.test(modulePath)) return c;
  return 'other';
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** For a bundle file: sorted (line, module path) of its `// path` module comments. */
const moduleMaps = new Map<string, { line: number; path: string }[] | null>();
function moduleMap(url: string): { line: number; path: string }[] | null {
  if (moduleMaps.has(url)) return moduleMaps.get(url)!;
  let m: { line: number; path: string }[] | null = null;
  try {
    const file = url.startsWith('file:') ? fileURLToPath(url) : url;
    if (file.endsWith('.cjs') || file.endsWith('.js')) {
      if (existsSync(file)) {
        m = [];
        const lines = readFileSync(file, 'utf8').split('\n');
        for (let i = 0; i < lines.length; i++) {
          const x = /^\/\/ ((?:src|node_modules)\/\S+\.(?:ts|js|cjs|mjs|json))$/.exec(lines[i]);
          if (x) m.push({ line: i, path: x[1] });
        }
        if (!m.length) m = null;
      }
    }
  } catch {
    m = null;
  }
  moduleMaps.set(url, m);
  return m;
}

/** The bundle module a frame belongs to, or undefined for Node's own code, natives, GC. */
function moduleOf(f: Node['callFrame']): string | undefined {
  if (!f.url) return undefined;
  const m = moduleMap(f.url);
  if (!m) return undefined;
  let lo = 0,
    hi = m.length - 1,
    found: string | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (m[mid].line <= f.lineNumber) {
      found = m[mid].path;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found ?? 'bundle (runtime helpers)';
}

export interface CpuBreakdown {
  /** Microseconds per category. */
  us: Record<Category, number>;
  /** Microseconds per bundle module (self time as attributed above), for the top list. */
  byModule: Map<string, number>;
  /** Microseconds per bundle function ("module: function"), for the top list. */
  byFunction: Map<string, number>;
  files: number;
}

/** Sums every .cpuprofile in dir; only samples taken in [fromUs, toUs] (CLOCK_MONOTONIC µs) when given. */
export function readProfiles(dir: string, window?: { fromUs: number; toUs: number }): CpuBreakdown {
  const us = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile;
    const parent = new Map<number, number>();
    const byId = new Map<number, Node>();
    for (const n of p.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    // Per node: the category and module it is charged to (memoised walk up to the nearest bundle frame).
    const charged = new Map<number, { cat: Category; mod: string; fn: string }>();
    const chargeOf = (id: number): { cat: Category; mod: string; fn: string } => {
      const hit = charged.get(id);
      if (hit) return hit;
      const n = byId.get(id)!;
      const name = n.callFrame.functionName;
      let r: { cat: Category; mod: string; fn: string };
      if (name === '(root)') r = { cat: 'other', mod: name, fn: name };
      else if (name === '(garbage collector)') r = { cat: 'GC', mod: name, fn: name };
      else if (name === '(idle)') r = { cat: 'idle', mod: name, fn: name };
      else {
        const mod = moduleOf(n.callFrame);
        if (mod) r = { cat: categoryOf(mod), mod, fn: `${mod}: ${name || '(anonymous)'}` };
        else {
          const up = parent.get(id);
          r = up === undefined ? { cat: 'other', mod: '(root)', fn: '(root)' } : chargeOf(up);
          // Below the root with no bundle frame above: name the outermost function (e.g. "(program)").
          if (r.mod === '(root)') {
            const top = name.startsWith('(') ? name : `node: ${name || n.callFrame.url || 'native'}`;
            r = { cat: 'other', mod: top, fn: top };
          }
        }
      }
      charged.set(id, r);
      return r;
    };
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      const d = p.timeDeltas[i] ?? 0;
      t += d;
      if (window && (t < window.fromUs || t > window.toUs)) continue;
      const c = chargeOf(p.samples[i]);
      us[c.cat] += d;
      byModule.set(c.mod, (byModule.get(c.mod) ?? 0) + d);
      byFunction.set(c.fn, (byFunction.get(c.fn) ?? 0) + d);
    }
  }
  return { us, byModule, byFunction, files: files.length };
}
