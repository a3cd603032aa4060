/** The CLI's pipeline module loader: a named `pipeline`, a default export, a function returning one. */
import test from 'ava';
import { ConfigError } from '../../lib/core/errors.js';
import { loadPipeline } from '../../lib/cli/pipeline-module.js';

test('loadPipeline takes a named export pipeline, here a function returning one', async (t) => {
  process.env.WARDEN_FIXTURE_PIPELINE = 'from-env';
  const pipeline = await loadPipeline('test/fixtures/pipeline-named.ts');
  t.is(pipeline.name, 'from-env');
  t.deepEqual(pipeline.stages.map((s) => s.name), ['counter', 'tally']);
});

test('loadPipeline takes a default export: a pipeline, or an async function returning one', async (t) => {
  t.is((await loadPipeline('test/fixtures/pipeline-default.ts')).name, 'fixture-default');
  t.is((await loadPipeline('./test/fixtures/pipeline-async.ts')).name, 'fixture-async');
});

test('loadPipeline refuses a module without a pipeline, and one that does not load, with a ConfigError naming the module', async (t) => {
  const none = await t.throwsAsync(loadPipeline('test/fixtures/pipeline-none.ts'), { instanceOf: ConfigError });
  t.regex(none.message, /pipeline-none\.ts exports no pipeline: .*it exports: (default, notAPipeline|notAPipeline, default)/);
  const missing = await t.throwsAsync(loadPipeline('test/fixtures/missing.ts'), { instanceOf: ConfigError });
  t.regex(missing.message, /missing\.ts could not be loaded/);
});
