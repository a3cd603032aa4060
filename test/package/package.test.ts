/**
 * The published package as a user gets it. `npm pack` (whose `prepack` builds dist/) makes the
 * tarball; it is installed, with the npm cache preferred, into two fresh projects outside the
 * repository:
 *
 *  - full: plain JavaScript (ESM) with every optional peer (NATS clients, ioredis, prom-client)
 *    and warden's own xstate: imports every entry point with plain `node`, `require`s them
 *    from a .cjs file, runs the bin (help, bad arguments, the demo embedded and on the real
 *    servers), scrapes call metrics through the application's prom-client, and type-checks a
 *    file that imports every entry point;
 *  - embedded: TypeScript, with only warden, the lowest xstate the peer range allows and
 *    @types/node: compiles the README's actor example (shipped in docs/examples) with strict
 *    flags and `skipLibCheck: false`, runs the output with plain `node`, checks that the NATS
 *    and Redis entry points and `warden demo --nats` name the packages to install, and
 *    measures node_modules.
 *
 * Ends with one JSON line of figures (stdout and t.log). Needs npm, du, and the servers that
 * `npm test` ensures; anything missing fails with a message.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  version: string;
  peerDependencies: Record<string, string>;
  exports: Record<string, unknown>;
};
const installed = (name: string): string => (JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** The lowest version a caret range allows: `^5.19.2` -> `5.19.2`. */
function lowest(range: string | undefined): string {
  const m = /^\^(\d+\.\d+\.\d+)$/.exec(range ?? '');
  if (!m) throw new Error(`expected a caret range, got ${range}`);
  return m[1]!;
}

/** Entry points as a user imports them, from package.json `exports`. */
const ENTRY_POINTS = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? 'warden' : `warden/${k.slice(2)}`));

/** The consumer's compiler options: the strict set a careful TypeScript service uses. */
const STRICT = {
  target: 'ES2023',
  lib: ['ES2023'],
  module: 'nodenext',
  moduleResolution: 'nodenext',
  types: ['node'],
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noPropertyAccessFromIndexSignature: true,
  skipLibCheck: false,
};

/**
 * Diagnostics that dependencies' own declarations raise under `skipLibCheck: false`, whatever
 * warden does: they are counted and reported, never hidden; any other diagnostic fails.
 */
const UPSTREAM = [
  { pkg: 'xstate', code: 'TS2344', why: "xstate's setup.d.ts under exactOptionalPropertyTypes" },
  { pkg: '@nats-io/nats-core', code: 'TS2420', why: "nats-core's classes under exactOptionalPropertyTypes" },
  { pkg: 'ioredis', code: 'TS7016', why: 'ioredis imports redis-errors, which ships no types' },
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell: none of the `npm_*` variables of the `npm test` running us. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) || /^npm_config_(cache|registry|userconfig)$/i.test(k)) env[k] = v;
  }
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: string[], cwd: string): Promise<Run> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A fresh ESM project with a package.json; returns its directory. */
function project(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, type: 'module' }, null, 2));
  return dir;
}

function install(dir: string, specs: string[]): Promise<Run> {
  return ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...specs], dir);
}

/** TypeScript for the consumers: the repository's own compiler, linked (not a dependency of theirs). */
function linkTypeScript(dir: string): void {
  symlinkSync(join(repo, 'node_modules', 'typescript'), join(dir, 'node_modules', 'typescript'), 'dir');
}

/** Runs tsc; sorts its diagnostics into ours (the consumer's files, warden's declarations) and known upstream ones. */
async function tsc(dir: string, options: Record<string, unknown>, files: string[]): Promise<{ ours: string[]; upstream: Record<string, number>; unknown: string[] }> {
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...options, rootDir: 'src', outDir: 'out' }, files }, null, 2));
  const r = await run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.', '--pretty', 'false'], dir);
  const ours: string[] = [];
  const unknown: string[] = [];
  const upstream: Record<string, number> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(.+?)\(\d+,\d+\): error (TS\d+):/.exec(line);
    if (!m) continue;
    const [, file, code] = m as unknown as [string, string, string];
    const owner = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1];
    if (owner === undefined || owner === 'warden') ours.push(line);
    else if (UPSTREAM.some((u) => u.pkg === owner && u.code === code)) upstream[owner] = (upstream[owner] ?? 0) + 1;
    else unknown.push(line);
  }
  if (r.code !== 0 && ours.length + unknown.length + Object.keys(upstream).length === 0) unknown.push(`tsc exited ${r.code}: ${r.stdout}${r.stderr}`);
  return { ours, upstream, unknown };
}

function noStackTrace(t: ExecutionContext, r: Run): void {
  t.notRegex(r.stdout + r.stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
}

/** Figures of the run, printed as one JSON line at the end; each test fills in what it proved. */
const figures: Record<string, unknown> = {
  tarballBytes: 0,
  files: 0,
  plainNodeImport: false,
  tscConsumer: false,
  cliHelp: false,
  require: false,
};

const context: { root: string; tarball: string; files: string[]; full: string; embedded: string; started: number } = {
  root: '',
  tarball: '',
  files: [],
  full: '',
  embedded: '',
  started: 0,
};

test.before(async () => {
  context.started = performance.now();
  context.root = mkdtempSync(join(tmpdir(), 'warden-package-'));
  // `npm pack` runs `prepack` (the build) first; npm writes its notices to stderr and the JSON to stdout.
  const packed = await ok('npm', ['pack', '--json', '--pack-destination', context.root], repo);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number; files: Array<{ path: string }> }>;
  if (!info) throw new Error(`npm pack printed no result: ${packed.stdout}`);
  context.tarball = join(context.root, info.filename);
  context.files = info.files.map((f) => f.path);
  figures.tarballBytes = info.size;
  figures.files = info.entryCount;
  figures.unpackedBytes = info.unpackedSize;

  context.full = project(context.root, 'full');
  context.embedded = project(context.root, 'embedded');
  const types = `@types/node@${installed('@types/node')}`;
  await Promise.all([
    install(context.full, [
      context.tarball,
      `xstate@${installed('xstate')}`,
      ...['@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/kv', 'ioredis', 'prom-client'].map((p) => `${p}@${installed(p)}`),
      types,
    ]),
    install(context.embedded, [context.tarball, `xstate@${lowest(pkg.peerDependencies.xstate)}`, types]),
  ]);
  linkTypeScript(context.full);
  linkTypeScript(context.embedded);
});

test.after.always(() => {
  figures.seconds = Math.round((performance.now() - context.started) / 100) / 10;
  console.log(JSON.stringify(figures));
  if (context.root && !process.env.WARDEN_KEEP_PACKAGE_TEST) rmSync(context.root, { recursive: true, force: true });
});

test('the tarball holds dist with maps, the sources they point at, the docs and LICENSE; no tests, benches, CI or scripts', (t) => {
  const files = new Set(context.files);
  for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/index.d.ts.map', 'dist/lib/index.js.map', 'dist/lib/cli/main.js', 'docs/deployment.md', 'docs/packaging.md']) {
    t.true(files.has(f), `${f} is in the tarball`);
  }
  for (const f of files) {
    t.false(/^(test|bench|\.ci|scripts|bin)\//.test(f) || /^(tsconfig.*|eslint\.config\.js|package-lock\.json)$/.test(f), `${f} is not for users`);
    // Every TypeScript source outside dist/ (and the docs' examples) is there for a map that names it.
    if (f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('docs/examples/')) {
      t.true(files.has(`dist/${f.replace(/\.ts$/, '.js.map')}`), `${f} is the source of a shipped map`);
    }
  }
  for (const f of files) {
    if (!f.endsWith('.map')) continue;
    const map = JSON.parse(readFileSync(join(context.full, 'node_modules', 'warden', f), 'utf8')) as { sources: string[] };
    for (const s of map.sources) t.true(files.has(join(f, '..', s)), `${f} points at ${s}, which is shipped`);
  }
  t.regex(readFileSync(join(context.full, 'node_modules', 'warden', 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
  t.true(readFileSync(join(context.full, 'node_modules', 'warden', 'dist', 'lib', 'cli', 'main.js'), 'utf8').startsWith('#!/usr/bin/env node\n'));
});

test('plain node imports every entry point, with nothing but the package and its peers installed', async (t) => {
  t.false(existsSync(join(context.full, 'node_modules', 'tsx')), 'tsx is not installed with warden');
  const script = `for (const e of ${JSON.stringify(ENTRY_POINTS)}) { const m = await import(e); if (Object.keys(m).length === 0) throw new Error(e + ' is empty'); } console.log('ok');`;
  const r = await ok(process.execPath, ['--input-type=module', '-e', script], context.full);
  t.is(r.stdout.trim(), 'ok');
  figures.plainNodeImport = true;
});

test('require() loads every entry point (require(esm): no top-level await anywhere in their graphs)', async (t) => {
  writeFileSync(join(context.full, 'require.cjs'), `for (const e of ${JSON.stringify(ENTRY_POINTS)}) { const m = require(e); if (typeof m !== 'object' || Object.keys(m).length === 0) throw new Error(e + ' is empty'); }\nconst { startNode, defineActor } = require('warden');\nconsole.log(typeof startNode, typeof defineActor);\n`);
  const r = await run(process.execPath, ['require.cjs'], context.full);
  t.is(r.code, 0, `require failed on Node ${process.version}: ${r.stderr}`);
  t.is(r.stdout.trim(), 'function function');
  t.notRegex(r.stderr, /ERR_REQUIRE|Error/);
  figures.require = `require(esm) on Node ${process.version}`;
});

test('the application registry scrapes guarded-call metrics built by its own prom-client', async (t) => {
  const script = [
    "import { Registry } from 'prom-client';",
    "import { defineCall, registerCallMetrics } from 'warden';",
    "const call = defineCall('probe', async () => 1);",
    'const registry = new Registry();',
    'registerCallMetrics(registry, [call]);',
    'await call.call(undefined);',
    'await call.close();',
    "console.log((await registry.metrics()).split('\\n').find((l) => l.startsWith('warden_call_calls_total{')));",
  ].join('\n');
  const r = await ok(process.execPath, ['--input-type=module', '-e', script], context.full);
  t.is(r.stdout.trim(), 'warden_call_calls_total{call="probe"} 1');
});

test('the bin: --help lists every command, each answers --help, bad arguments print the usage and exit non-zero', async (t) => {
  const help = await ok('npx', ['--no-install', 'warden', '--help'], context.full);
  const commands = [...help.stdout.slice(help.stdout.indexOf('Commands:')).matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  t.true(commands.includes('demo') && commands.includes('version'), help.stdout);
  for (const c of commands) {
    const r = await ok('npx', ['--no-install', 'warden', c, '--help'], context.full);
    t.regex(r.stdout, new RegExp(`^Usage: warden ${c}`, 'm'));
  }
  t.is((await ok('npx', ['--no-install', 'warden', '--version'], context.full)).stdout.trim(), pkg.version);
  for (const args of [['demo', '--events', 'lots'], ['demo', '--bogus'], ['no-such-command']]) {
    const r = await run('npx', ['--no-install', 'warden', ...args], context.full);
    t.not(r.code, 0, `warden ${args.join(' ')} fails`);
    t.regex(r.stderr, /^error: /m);
    t.regex(r.stderr, /^Usage: warden/m);
    noStackTrace(t, r);
  }
  figures.cliHelp = true;
});

test('warden demo runs from the package, embedded and on the real servers, and loses and duplicates nothing', async (t) => {
  const [embedded, servers] = await Promise.all([
    run('npx', ['--no-install', 'warden', 'demo', '--events', '200', '--json'], context.embedded),
    run('npx', ['--no-install', 'warden', 'demo', '--events', '200', '--json', '--nats', 'nats://127.0.0.1:4222', '--redis', 'redis://127.0.0.1:6379'], context.full),
  ]);
  for (const [where, r] of [['embedded', embedded], ['servers', servers]] as const) {
    t.is(r.code, 0, `${where}: ${r.stdout}${r.stderr}`);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { sent: number; applied: number; lost: number; duplicated: number };
    t.like(json, { sent: 200, applied: 200, lost: 0, duplicated: 0 }, where);
    figures[where === 'embedded' ? 'demo' : 'demoOnServers'] = { lost: json.lost, duplicated: json.duplicated };
  }
  t.regex(servers.stdout, /on NATS JetStream at nats:\/\/127\.0\.0\.1:4222, Redis at redis:\/\/127\.0\.0\.1:6379/);
});

test('a chaos scenario written for the user\'s own pipeline runs from the package with plain node: a node killed, nothing lost or doubled, the report written', async (t) => {
  const dir = join(context.full, 'chaos');
  mkdirSync(dir);
  writeFileSync(join(dir, 'pipeline.mjs'), [
    "import { assign, setup } from 'xstate';",
    "import { defineActor, definePipeline } from 'warden';",
    'const tally = defineActor({',
    "  name: 'tally',",
    '  machine: setup({}).createMachine({ context: { seqs: [] }, on: { order: { actions: assign({ seqs: ({ context, event }) => [...context.seqs, event.seq] }) } } }),',
    '});',
    "export const pipeline = definePipeline({ name: process.env.WARDEN_CHAOS_PIPELINE, stages: [{ actor: tally, partitions: 4, checkpoint: { everyEvents: 50, intervalMs: 200 } }] });",
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'kill-one.mjs'), [
    "import { defineScenario } from 'warden/chaos';",
    'export default defineScenario({',
    "  name: 'kill-one', nodes: 2, durationMs: 5_000, leaseTtlMs: 1_000, workload: { ratePerSec: 40, keys: 8 },",
    "  pipeline: { module: './pipeline.mjs', observe: { stage: 'tally', seqs: (context) => context.seqs } },",
    "  faults: ({ durationMs, rng }) => [{ atMs: durationMs / 2, fault: { kind: 'kill-node', node: rng.int(2) } }],",
    '});',
    '',
  ].join('\n'));
  const r = await run('npx', ['--no-install', 'warden', 'chaos', 'chaos/kill-one.mjs', '--seed', '3', '--report', 'chaos/out'], context.full);
  t.is(r.code, 0, `${r.stdout}${r.stderr}`);
  t.regex(r.stdout, /PASSED\s+kill-one/);
  const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as { sent: number; lost: number; duplicated: number; passed: boolean; faults: unknown[] };
  t.like(report, { lost: 0, duplicated: 0, passed: true });
  t.true(report.sent > 100);
  t.is(report.faults.length, 1);
  t.true(existsSync(join(dir, 'out', 'report.html')));
  figures.chaosFromPackage = { sent: report.sent, lost: report.lost, duplicated: report.duplicated };
});

test('embedded-only install: no NATS or Redis client; their entry points and `warden demo --nats/--redis` name what to install', async (t) => {
  for (const p of ['@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/kv', 'ioredis', 'prom-client', 'tsx']) {
    t.false(existsSync(join(context.embedded, 'node_modules', p)), `${p} is not installed`);
  }
  const probe = [
    "for (const e of ['warden/nats', 'warden/redis', 'warden/chaos']) { try { await import(e); console.log(e, 'loaded'); } catch (err) { console.log(e, err.code, err.message.split(' imported from')[0]); } }",
    "const { registerCallMetrics } = await import('warden');",
    "try { registerCallMetrics({ getSingleMetric() {}, registerMetric() {}, removeSingleMetric() {} }); } catch (err) { console.log('metrics', err.name, err.message); }",
  ].join('\n');
  const r = await ok(process.execPath, ['--input-type=module', '-e', probe], context.embedded);
  t.regex(r.stdout, /^warden\/nats ERR_MODULE_NOT_FOUND Cannot find package '@nats-io\/[\w-]+'$/m);
  t.regex(r.stdout, /^warden\/redis ERR_MODULE_NOT_FOUND Cannot find package 'ioredis'$/m);
  t.regex(r.stdout, /^warden\/chaos ERR_MODULE_NOT_FOUND Cannot find package '(@nats-io\/[\w-]+|ioredis)'$/m);
  t.regex(r.stdout, /^metrics ConfigError registerCallMetrics needs prom-client.*: npm install prom-client$/m);
  for (const [flag, url, install] of [['--nats', 'nats://127.0.0.1:4222', 'npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv'], ['--redis', 'redis://127.0.0.1:6379', 'npm install ioredis']] as const) {
    const demo = await run('npx', ['--no-install', 'warden', 'demo', flag, url], context.embedded);
    t.is(demo.code, 1);
    t.true(demo.stderr.includes(install), demo.stderr);
    noStackTrace(t, demo);
  }
  // warden, xstate and their dependencies: node_modules without the consumer's own @types/node (du counts a directory once per call)
  const du = async (path: string): Promise<number> => Number((await ok('du', ['-sb', path], context.embedded)).stdout.split(/\s/)[0]);
  const bytes = (await du('node_modules')) - (await du('node_modules/@types'));
  t.true(bytes > 0);
  figures.embeddedNodeModulesBytes = bytes;
});

test("a strict TypeScript consumer (skipLibCheck false) on the lowest xstate of the peer range compiles the README's example and runs it with plain node", async (t) => {
  const dir = context.embedded;
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'define-actor.ts'), readFileSync(join(dir, 'node_modules', 'warden', 'docs', 'examples', 'define-actor.ts')));
  writeFileSync(join(dir, 'src', 'surface.ts'), "import * as warden from 'warden';\nimport * as testing from 'warden/testing';\nexport const size: number = Object.keys(warden).length + Object.keys(testing).length;\n");
  t.not(installed('xstate'), lowest(pkg.peerDependencies.xstate), 'the consumer runs another xstate than warden is developed with');
  const files = ['src/define-actor.ts', 'src/surface.ts'];
  // The flags as asked: nothing may come from the consumer's code or warden's declarations.
  const strict = await tsc(dir, { ...STRICT, noEmit: true }, files);
  t.deepEqual(strict.ours, [], 'the consumer and warden type-check');
  t.deepEqual(strict.unknown, [], 'no other diagnostic');
  // The same without exactOptionalPropertyTypes: every declaration in the graph checks, xstate's too; this build emits.
  const clean = await tsc(dir, { ...STRICT, exactOptionalPropertyTypes: false }, files);
  t.deepEqual([...clean.ours, ...clean.unknown], []);
  t.deepEqual(clean.upstream, {});
  const r = await ok(process.execPath, ['out/define-actor.js'], dir);
  t.is(r.stdout.trim(), "{ account: 'acct-1', total: 25 }");
  const xstate = (JSON.parse(readFileSync(join(dir, 'node_modules', 'xstate', 'package.json'), 'utf8')) as { version: string }).version;
  t.log(`xstate ${xstate}; upstream diagnostics under exactOptionalPropertyTypes: ${JSON.stringify(strict.upstream)}`);
  figures.tscConsumer = true;
  figures.tscConsumerXstate = xstate;
  figures.tscUpstreamDiagnostics = strict.upstream;
});

test('every entry point type-checks for a strict consumer with the NATS and Redis clients installed', async (t) => {
  const dir = context.full;
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'types.ts'), [
    "import { Registry } from 'prom-client';",
    "import { registerCallMetrics, startNode, type NodeOptions } from 'warden';",
    "import { JetStreamTransport, type JetStreamTransportOptions } from 'warden/nats';",
    "import { RedisCheckpointStore, type RedisCheckpointStoreOptions } from 'warden/redis';",
    "import { SemanticsChecker } from 'warden/testing';",
    "import { defineScenario, type ChaosReport } from 'warden/chaos';",
    "export const scenario = defineScenario({ name: 'typed', faults: ({ rng }) => [{ atMs: 1_000, fault: { kind: 'kill-node', node: rng.int(3) } }] });",
    'export const passed = (r: ChaosReport): boolean => r.passed && r.lost === 0;',
    'export async function wire(options: NodeOptions, nats: JetStreamTransportOptions, redis: RedisCheckpointStoreOptions): Promise<void> {',
    '  registerCallMetrics(new Registry());',
    '  const transport = await JetStreamTransport.connect(nats);',
    '  const checkpointStore = await RedisCheckpointStore.connect(redis);',
    '  const node = await startNode({ ...options, transport, checkpointStore });',
    '  new SemanticsChecker().report();',
    '  await node.stop();',
    '}',
    '',
  ].join('\n'));
  const r = await tsc(dir, { ...STRICT, noEmit: true }, ['src/types.ts']);
  t.deepEqual(r.ours, [], "warden's declarations type-check");
  t.deepEqual(r.unknown, [], 'no diagnostic besides the known upstream ones');
  t.log(`upstream diagnostics: ${JSON.stringify(r.upstream)}`);
  figures.tscFullUpstreamDiagnostics = r.upstream;
});
