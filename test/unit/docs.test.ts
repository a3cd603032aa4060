/** The README's code samples are the type-checked example files, or excerpts of them, word for word. */
import test from 'ava';
import { readFileSync } from 'node:fs';

test('README examples are the type-checked files they name', (t) => {
  const readme = readFileSync('README.md', 'utf8');
  const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)\n```/g)];
  t.true(blocks.length > 0, 'README names at least one example file');
  for (const [, file, code] of blocks) {
    t.is(code, readFileSync(file!, 'utf8').trimEnd(), `${file} and its README copy differ`);
  }
});

test('README excerpts are word for word in the type-checked files they name', (t) => {
  const readme = readFileSync('README.md', 'utf8');
  const blocks = [...readme.matchAll(/<!-- excerpt: (\S+) -->\n```ts\n([\s\S]*?)\n```/g)];
  t.true(blocks.length > 0, 'README has at least one excerpt');
  for (const [, file, code] of blocks) t.true(readFileSync(file!, 'utf8').includes(code!), `${file} no longer contains the excerpt`);
});
