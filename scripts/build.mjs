// Builds dist/kea-lease-monitor: an esbuild bundle made into a Node single executable application.
// pkg cannot work here (it downloads patched Node binaries at build time and is deprecated
// upstream); Node's own SEA needs nothing but the node binary already on the machine.
import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
mkdirSync(dist, { recursive: true });

// The migrations are embedded at build time: the module that reads them from disk in development
// is replaced by one holding their text.
const embedMigrations = {
  name: 'embed-migrations',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]db[\\/]migration-files\.ts$/ }, () => {
      const dir = join(root, 'migrations');
      const files = Object.fromEntries(
        readdirSync(dir).filter((n) => n.endsWith('.sql')).sort().map((n) => [n, readFileSync(join(dir, n), 'utf8')]),
      );
      return { contents: `export function loadMigrationFiles() { return ${JSON.stringify(files)}; }`, loader: 'ts' };
    });
  },
};

const bundle = join(dist, 'kea-lease-monitor.cjs');
await esbuild.build({
  entryPoints: [join(root, 'src', 'main.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: bundle,
  external: ['pg-native'],
  define: { 'process.env.KLM_VERSION': JSON.stringify(pkg.version) },
  plugins: [embedMigrations],
  legalComments: 'none',
  logLevel: 'warning',
});

const blob = join(dist, 'sea-prep.blob');
const seaConfig = join(dist, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }));
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

const out = join(dist, 'kea-lease-monitor');
const tmp = `${out}.tmp`;
rmSync(tmp, { force: true });
copyFileSync(process.execPath, tmp);
chmodSync(tmp, 0o755);
// Strip before injecting: stripping afterwards would cut the injected blob out again.
try {
  execFileSync('strip', ['--strip-all', tmp], { stdio: 'inherit' });
} catch {
  console.warn('build: strip not available; the binary stays larger');
}
const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
execFileSync(process.execPath, [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
execFileSync('mv', ['-f', tmp, out]);
rmSync(blob, { force: true });
console.log(`build: ${out} (${(statSync(out).size / 1048576).toFixed(1)} MiB)`);
