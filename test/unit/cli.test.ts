/**
 * The `warden` command from the sources (what `npm run demo` runs): help for the program and
 * every command, errors with a usage line and a non-zero exit code instead of a stack trace, the
 * version from package.json, and the demo in process. test/package checks the same bin from the
 * packed tarball.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script of the repository under tsx. */
function script(path: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const warden = (...args: string[]): Promise<Run> => script('lib/cli/main.ts', ...args);

/** `fn` over `items`, two processes at a time: one per item at once would starve the rest of the suite on a small machine. */
async function inPairs<T>(items: readonly T[], fn: (item: T) => Promise<Run>): Promise<Run[]> {
  const out: Run[] = [];
  for (let i = 0; i < items.length; i += 2) out.push(...(await Promise.all(items.slice(i, i + 2).map(fn))));
  return out;
}

const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

test('warden --help lists every command with a line each, and every command answers --help', async (t) => {
  const help = await warden('--help');
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: warden /m);
  // commander's own `help [command]` aside, every command has its line.
  const commands = [...help.stdout.slice(help.stdout.indexOf('Commands:')).matchAll(/^ {2}([a-z][\w-]*)(?: \[options\])? +\S/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  t.deepEqual(commands, ['demo', 'chaos', 'inspect', 'status', 'tree', 'dashboard', 'dlq', 'checkpoint', 'teardown', 'worker', 'version']);
  const each = await inPairs(commands, (c) => warden(c, '--help'));
  for (const [i, r] of each.entries()) {
    t.is(r.code, 0, commands[i]);
    t.regex(r.stdout, new RegExp(`^Usage: warden ${commands[i]}`, 'm'));
  }
  t.regex(each[commands.indexOf('demo')]!.stdout, /--events <n>[\s\S]*--json[\s\S]*--nats <url>[\s\S]*--redis <url>/);
  t.regex(each[commands.indexOf('worker')]!.stdout, /--http <port>[\s\S]*--ready-lag <n>[\s\S]*--alert-lag <n>/);
  // Subcommands answer --help too.
  const subs = [['dlq', 'list'], ['dlq', 'show'], ['dlq', 'replay'], ['checkpoint', 'show']];
  for (const [i, r] of (await inPairs(subs, (s) => warden(...s, '--help'))).entries()) {
    t.is(r.code, 0, subs[i]!.join(' '));
    t.regex(r.stdout, new RegExp(`^Usage: warden ${subs[i]!.join(' ')}`, 'm'));
  }
});

test('npm run bench -- --help prints the usage and the suites; a bad argument prints the error and the usage, never a stack trace', async (t) => {
  const bench = (...args: string[]): Promise<Run> => script('test/bench/run.ts', ...args);
  const [help, bogus, unknown, none] = (await inPairs([['--help'], ['--bogus'], ['nope'], []], (args) => bench(...args))) as [Run, Run, Run, Run];
  t.is(help.code, 0);
  t.regex(help.stdout, /^usage: npm run bench -- <suite> \[--json\]/);
  t.regex(help.stdout, /guarantees +exactly-once/);
  for (const [r, message] of [[bogus, /Unknown option '--bogus'/], [unknown, /no suite named "nope"/], [none, /^usage:/m]] as const) {
    t.is(r.code, 1, 'a bad argument exits 1, as every command does');
    t.regex(r.stderr, message);
    t.regex(r.stderr, /usage: npm run bench/);
    t.notRegex(r.stdout + r.stderr, STACK_FRAME);
  }
});

test('npm run chaos:all -- --help prints its usage; a bad argument prints the error and the usage, exits 1, never a stack trace', async (t) => {
  const all = (...args: string[]): Promise<Run> => script('scripts/chaos-all.ts', ...args);
  const [help, bogus, only, seeds] = (await inPairs([['--help'], ['--bogus'], ['--only', 'nope'], ['--seeds', '1,x']], (args) => all(...args))) as [Run, Run, Run, Run];
  t.is(help.code, 0);
  t.regex(help.stdout, /^usage: npm run chaos:all/);
  for (const [r, message] of [[bogus, /Unknown option '--bogus'/], [only, /--only: no shipped scenario named "nope"/], [seeds, /--seeds: "x" is not an integer/]] as const) {
    t.is(r.code, 1);
    t.regex(r.stderr, message);
    t.regex(r.stderr, /usage: npm run chaos:all/);
    t.notRegex(r.stdout + r.stderr, STACK_FRAME);
  }
});

test('a bad argument or an unknown command prints the error and a usage line, exits 1, and shows no stack trace', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['demo', '--events', 'lots'], /option '--events <n>' argument 'lots' is invalid\. It must be an integer >= 100\./],
    [['demo', '--events', '99'], /It must be an integer >= 100/],
    [['demo', '--bogus'], /unknown option '--bogus'/],
    [['demo', '--nats'], /option '--nats <url>' argument missing/],
    [['no-such-command'], /unknown command 'no-such-command'/],
    [['dlq', 'show', 'p.js', 'x'], /value 'x' is invalid for argument 'seq'\. It must be a dead-letter sequence/],
    [['worker', 'p.js', '--http', '70000'], /It must be a port number/],
    [['worker', 'p.js', '--http', ''], /It must be a port number/],
    [['worker', 'p.js', '--replicas', '6'], /option '--replicas <n>' argument '6' is invalid\. It must be an integer from 1 to 5\./],
    [['tree', 'notaurl'], /value 'notaurl' is invalid for argument 'url'\. It must be an http:\/\/ URL/],
    [['tree', 'ftp://127.0.0.1:1'], /It must be an http:\/\/ or https:\/\/ URL/],
    [['dlq', 'list', 'p.js', '--reason', 'bogus'], /argument 'bogus' is invalid\. It must be one of undecodable, too-large/],
    // Nothing named and no --all: refused before the module is loaded or NATS asked (an unreachable one would exit 2).
    [['dlq', 'replay', 'p.js', '--nats', 'nats://127.0.0.1:1'], /name the dead letters .* or pass --all/],
  ];
  const runs = await inPairs(cases, ([args]) => warden(...args));
  for (const [i, r] of runs.entries()) {
    const [args, message] = cases[i]!;
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message);
    t.regex(r.stderr, /^Usage: warden/m);
    t.notRegex(r.stdout + r.stderr, STACK_FRAME);
  }
});

test('warden version and --version print the version in package.json', async (t) => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const [a, b] = await Promise.all([warden('version'), warden('--version')]);
  t.is(a.stdout.trim(), version);
  t.is(b.stdout.trim(), version);
});

test('warden demo runs the clickstream scenario in process and ends with a JSON line: nothing lost or duplicated', async (t) => {
  const r = await warden('demo', '--events', '200', '--json');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^warden demo: clickstream parse -> sessions -> pages, 200 clicks, on in-memory log, in-memory checkpoints$/m);
  const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
  t.like(json, { sent: 200, applied: 200, lost: 0, duplicated: 0, outOfOrder: 0 });
});
