// Builds the self-contained gpu-check bundle (run on a machine with the repo built and node):
//   <out>/check/gpu-check.js, <out>/check/engine-process.js, <out>/worker-thread/main.js  (esbuild)
//   <out>/node_modules/koffi + @koromix/koffi-linux-x64      (koffi is native; not bundled)
//   <out>/node.gz                                             (this machine's node, gzip -9)
//   <out>/lib/libstdc++.so.6, libgcc_s.so.1                   (used only if node needs them)
// Usage: node build.mjs [--out DIR] [--no-node]   (default DIR: scripts/gpu-check.d/dist)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const pkg = join(repo, 'packages', 'gpu-worker');
const argv = process.argv.slice(2);
const outArg = argv.indexOf('--out');
const out = outArg >= 0 ? argv[outArg + 1] : join(here, 'dist');
const withNode = !argv.includes('--no-node');
const LIMIT = 64 * 2 ** 20;

const log = (line) => console.log(`[gpu-check --build] ${line}`);
const need = (path, hint) => {
  if (!existsSync(path)) {
    console.error(`[gpu-check --build] missing ${relative(repo, path)}: ${hint}`);
    process.exit(1);
  }
};
need(join(pkg, 'dist', 'check', 'gpu-check.js'), 'run `npx tsc -b packages/gpu-worker` first');
const requireFromPkg = createRequire(join(pkg, 'package.json'));
const esbuild = requireFromPkg('esbuild');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'package.json'), '{ "type": "module", "private": true }\n');
await esbuild.build({
  entryPoints: {
    'check/gpu-check': join(pkg, 'dist', 'check', 'gpu-check.js'),
    'check/engine-process': join(pkg, 'dist', 'check', 'engine-process.js'),
    // spawnGpuWorker starts new URL('../worker-thread/main.js', import.meta.url): same relative place.
    'worker-thread/main': join(pkg, 'dist', 'src', 'worker-thread', 'main.js'),
  },
  outdir: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  logLevel: 'warning',
});

// koffi, with only this platform's native binary.
// koffi's exports hide package.json: resolve its CJS entry (index.cjs at the package root).
const koffiDir = dirname(realpathSync(requireFromPkg.resolve('koffi')));
const nativePkg = 'koffi-linux-x64';
const nativeDir = join(dirname(koffiDir), '@koromix', nativePkg);
need(nativeDir, "koffi's linux-x64 binary package is not installed");
cpSync(koffiDir, join(out, 'node_modules', 'koffi'), {
  recursive: true,
  dereference: true,
  filter: (src) => !src.includes(`${koffiDir}/src/koffi/src/`) || src.endsWith('.cjs') || statSync(src).isDirectory(),
});
rmSync(join(out, 'node_modules', 'koffi', 'node_modules'), { recursive: true, force: true });
cpSync(nativeDir, join(out, 'node_modules', '@koromix', nativePkg), {
  recursive: true,
  dereference: true,
  filter: (src) => !src.includes('musl'),
});

if (withNode) {
  log(`compressing ${process.execPath} (${process.version})`);
  execFileSync('sh', ['-c', `gzip -9 -c "${process.execPath}" > "${join(out, 'node.gz')}"`]);
  mkdirSync(join(out, 'lib'));
  for (const lib of ['libstdc++.so.6', 'libgcc_s.so.1']) {
    const found = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/lib64']
      .map((d) => join(d, lib))
      .find(existsSync);
    if (found !== undefined) cpSync(realpathSync(found), join(out, 'lib', lib));
  }
}
let gitRev = 'unknown';
try {
  gitRev = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']).toString().trim();
} catch {}
writeFileSync(
  join(out, 'BUILD-INFO'),
  `built ${new Date().toISOString()} from ${gitRev} with node ${process.version}\n`,
);

const size = (p) =>
  statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + size(join(p, f)), 0) : statSync(p).size;
const total = size(out);
log(
  `bundle at ${relative(process.cwd(), out) || '.'}: ${(total / 2 ** 20).toFixed(1)} MiB${withNode ? '' : ' (without node)'}`,
);
if (total > LIMIT) {
  console.error(`[gpu-check --build] bundle is ${total} bytes, over the ${LIMIT}-byte limit`);
  process.exit(1);
}
