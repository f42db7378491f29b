#!/usr/bin/env node
/**
 * The README's two commands, for a fresh machine with only Node 20 and npm:
 *   npm start  → set up, build, run the main job: `kvmp serve` plus a demo engine workload
 *   npm test   → set up, lint, build, run every package's tests, print one totals line
 * Set-up bootstraps the pinned pnpm into .tools/ (no global install), then installs the
 * workspace from the committed lockfile.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PNPM_VERSION = '12.21.0';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const tools = join(root, '.tools');
const localPnpm = join(tools, 'node_modules', '.bin', 'pnpm');

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function must(cmd, args, options) {
  const status = run(cmd, args, options);
  if (status !== 0) {
    console.error(`\n✖ ${cmd} ${args.join(' ')} exited with ${status}`);
    process.exit(status);
  }
}

function pnpm() {
  // KVMP_LOCAL_PNPM=1 ignores a pnpm on PATH (to check the fresh-machine bootstrap).
  const onPath = process.env.KVMP_LOCAL_PNPM ? undefined : spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (onPath?.status === 0 && onPath.stdout.trim() === PNPM_VERSION) return 'pnpm';
  if (!existsSync(localPnpm)) {
    console.log(`• bootstrapping pnpm ${PNPM_VERSION} into .tools/`);
    must('npm', ['install', '--prefix', tools, '--no-save', '--no-audit', '--no-fund', `pnpm@${PNPM_VERSION}`]);
  }
  return localPnpm;
}

function setup() {
  const pm = pnpm();
  console.log('• installing the workspace (frozen lockfile)');
  must(pm, ['install', '--frozen-lockfile', '--reporter=append-only']);
  console.log('• building (tsc -b)');
  must(pm, ['exec', 'tsc', '-b']);
  return pm;
}

/** Workspace packages with a test script, in dependency order. */
function testPackages() {
  const dirs = readdirSync(join(root, 'packages')).map((d) => join('packages', d));
  dirs.push('tests');
  const order = ['packages/tracing', 'packages/registry', 'packages/gpu-worker', 'packages/server', 'tests'];
  return dirs
    .filter((d) => existsSync(join(root, d, 'package.json')))
    .filter((d) => JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8')).scripts?.test)
    .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
}

function testAll(pm) {
  console.log('• lint and format check (biome)');
  must(pm, ['exec', 'biome', 'check', '.']);
  const totals = { passed: 0, failed: 0, skipped: 0 };
  let broken = false;
  for (const dir of testPackages()) {
    const ava = join(root, dir, 'node_modules', '.bin', 'ava');
    const hasTests = existsSync(join(root, dir, 'test'));
    if (!existsSync(ava) || !hasTests) continue;
    console.log(`\n• ${dir}`);
    const r = spawnSync(ava, ['--tap'], { cwd: join(root, dir), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    process.stdout.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    const count = (name) => Number(r.stdout?.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
    const pkg = { passed: count('pass'), failed: count('fail'), skipped: count('skip') };
    // ava exits non-zero for failures but also for crashes, timeouts and uncaught errors
    // that produce no failing test line: count those as a failure of the package.
    if (r.status !== 0 && pkg.failed === 0) {
      pkg.failed = 1;
      console.log(`  ✖ ${dir}: ava exited with ${r.status} without a failing test (crash or timeout)`);
    }
    if (r.status !== 0) broken = true;
    console.log(`  ${dir}: ${pkg.passed} passed, ${pkg.failed} failed, ${pkg.skipped} skipped`);
    totals.passed += pkg.passed;
    totals.failed += pkg.failed;
    totals.skipped += pkg.skipped;
  }
  console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  return broken || totals.failed > 0 ? 1 : 0;
}

const command = process.argv[2];
if (command === 'setup') {
  setup();
} else if (command === 'test') {
  process.exitCode = testAll(setup());
} else if (command === 'start') {
  setup();
  // The main job: kvmp serve with its defaults plus a demo engine workload (Ctrl-C stops it).
  // Extra arguments go to `kvmp serve`, e.g. `npm start -- --demo-sessions 50`.
  const kvmp = join(root, 'packages/server/bin/kvmp.js');
  const extra = process.argv.slice(3);
  const demo = extra.some((a) => a.startsWith('--demo')) ? [] : ['--demo'];
  const child = spawn(process.execPath, [kvmp, 'serve', ...demo, ...extra], { cwd: root, stdio: 'inherit' });
  // Ctrl-C reaches the whole process group; a SIGTERM sent to this process alone is forwarded.
  // Either way kvmp serve drains and exits by itself, and this process follows with its status.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 1 : 0);
  });
} else {
  console.error('usage: node scripts/kvmp-dev.mjs setup|start|test');
  process.exitCode = 2;
}
