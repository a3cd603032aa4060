/**
 * The public API is a list someone chose: every symbol an entry point exports (values and
 * types) has a line in docs/api.md, and docs/api.md names nothing an entry point does not
 * export. The exports are read with the TypeScript compiler API, as a user's editor sees them.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import ts from 'typescript';

/** Entry points, as package.json's `exports` maps them. */
const ENTRIES: Record<string, string> = {
  warden: 'lib/index.ts',
  'warden/nats': 'lib/adapters/nats/index.ts',
  'warden/redis': 'lib/adapters/redis/index.ts',
  'warden/testing': 'lib/testing/index.ts',
  'warden/chaos': 'chaos/index.ts',
};

const VALUE_KINDS = new Set(['class', 'function', 'const']);
const TYPE_KINDS = new Set(['interface', 'type']);

interface Exported {
  name: string;
  /** Has a runtime value (a class, function or constant), not only a type. */
  value: boolean;
}

let cached: Map<string, Exported[]> | undefined;

/** Every export of each entry point (one compiler run for the file). */
function exportsOf(): Map<string, Exported[]> {
  cached ??= readExports();
  return cached;
}

function readExports(): Map<string, Exported[]> {
  const parsed = ts.getParsedCommandLineOfConfigFile('tsconfig.json', {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error('tsconfig.json could not be read');
  const program = ts.createProgram(Object.values(ENTRIES), parsed.options);
  const checker = program.getTypeChecker();
  const out = new Map<string, Exported[]>();
  for (const [entry, file] of Object.entries(ENTRIES)) {
    const source = program.getSourceFile(file);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`${file} is not a module`);
    out.set(
      entry,
      checker.getExportsOfModule(moduleSymbol).map((symbol) => {
        const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
        return { name: symbol.name, value: (target.flags & ts.SymbolFlags.Value) !== 0 };
      }),
    );
  }
  return out;
}

/** The rows of docs/api.md, by entry point: `| \`name\` | kind | what it is |` under `## \`entry\``. */
function documented(): Map<string, Array<{ name: string; kind: string; line: number }>> {
  const out = new Map<string, Array<{ name: string; kind: string; line: number }>>();
  let current: Array<{ name: string; kind: string; line: number }> | undefined;
  readFileSync('docs/api.md', 'utf8').split('\n').forEach((text, i) => {
    const heading = /^## `(warden(?:\/[a-z]+)?)`/.exec(text);
    if (heading) {
      current = [];
      out.set(heading[1]!, current);
      return;
    }
    if (/^## /.test(text)) current = undefined;
    const row = /^\| `([A-Za-z_$][\w$]*)` \| ([a-z]+) \| (.*)\|$/.exec(text);
    if (row && current) current.push({ name: row[1]!, kind: row[2]!, line: i + 1 });
  });
  return out;
}

test('docs/api.md lists every export of every entry point, and nothing else', (t) => {
  const actual = exportsOf();
  const docs = documented();
  t.deepEqual([...docs.keys()].sort(), Object.keys(ENTRIES).sort(), 'docs/api.md has one section per entry point');
  for (const [entry, exported] of actual) {
    const rows = docs.get(entry) ?? [];
    const names = new Set(exported.map((e) => e.name));
    const listed = new Set(rows.map((r) => r.name));
    const missing = [...names].filter((n) => !listed.has(n)).sort();
    const extra = [...listed].filter((n) => !names.has(n)).sort();
    t.deepEqual(missing, [], `${entry} exports these, docs/api.md does not list them`);
    t.deepEqual(extra, [], `docs/api.md lists these under ${entry}, which does not export them`);
    const twice = rows.filter((r, i) => rows.findIndex((o) => o.name === r.name) !== i).map((r) => r.name);
    t.deepEqual(twice, [], `listed twice under ${entry}`);
  }
});

test('docs/api.md gives each export its kind: a value (class, function, const) or a type (interface, type)', (t) => {
  const actual = exportsOf();
  for (const [entry, rows] of documented()) {
    const byName = new Map((actual.get(entry) ?? []).map((e) => [e.name, e]));
    for (const row of rows) {
      t.true(VALUE_KINDS.has(row.kind) || TYPE_KINDS.has(row.kind), `docs/api.md:${row.line}: unknown kind '${row.kind}'`);
      const e = byName.get(row.name);
      if (!e) continue; // reported by the test above
      t.is(VALUE_KINDS.has(row.kind), e.value, `docs/api.md:${row.line}: ${entry} ${row.name} is ${e.value ? 'a value' : 'only a type'}, listed as '${row.kind}'`);
    }
  }
});

test('no entry point re-exports a whole module (export *): the API is a list', (t) => {
  for (const file of Object.values(ENTRIES)) {
    t.notRegex(readFileSync(file, 'utf8'), /^export \* from/m, file);
  }
});
