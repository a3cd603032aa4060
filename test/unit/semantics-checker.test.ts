import test from 'ava';
import { SemanticsChecker, type SemanticsReport } from '../../lib/testing/semantics-checker.js';

function sendAll(checker: SemanticsChecker, keys: string[], n: number): void {
  for (const key of keys) for (let seq = 1; seq <= n; seq++) checker.sent(key, seq);
}

const clean: Omit<SemanticsReport, 'sent' | 'observed' | 'applied'> = {
  lost: 0,
  duplicated: 0,
  outOfOrder: 0,
  unexpected: 0,
  examples: { lost: [], duplicated: [], outOfOrder: [], unexpected: [] },
};

test('a clean run reports zero problems and every event applied', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice', 'bob'], 5);
  // Keys interleave freely; each key is in order.
  for (let seq = 1; seq <= 5; seq++) {
    checker.observe('bob', seq);
    checker.observe('alice', seq);
  }
  t.deepEqual(checker.report(), { sent: 10, observed: 10, applied: 10, ...clean });
});

test('an empty checker reports all zeros', (t) => {
  t.deepEqual(new SemanticsChecker().report(), { sent: 0, observed: 0, applied: 0, ...clean });
});

test('sending the same event twice counts it once', (t) => {
  const checker = new SemanticsChecker();
  checker.sent('alice', 1);
  checker.sent('alice', 1);
  checker.observe('alice', 1);
  t.like(checker.report(), { sent: 1, observed: 1, applied: 1, lost: 0, duplicated: 0 });
});

test('a lost event is counted and named', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice'], 4);
  checker.observe('alice', 1);
  checker.observe('alice', 2);
  checker.observe('alice', 4);
  const r = checker.report();
  t.deepEqual(r, {
    sent: 4,
    observed: 3,
    applied: 3,
    lost: 1,
    duplicated: 0,
    outOfOrder: 0,
    unexpected: 0,
    examples: { lost: ['alice#3'], duplicated: [], outOfOrder: [], unexpected: [] },
  });
});

test('a duplicate counts as extra observations (n-1 per event), not as extra applied events', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice', 'bob'], 2);
  checker.observe('alice', 1);
  checker.observe('alice', 1);
  checker.observe('alice', 1); // seen 3 times: 2 extra
  checker.observe('alice', 2);
  checker.observe('bob', 1);
  checker.observe('bob', 2);
  checker.observe('bob', 2); // 1 extra
  const r = checker.report();
  t.is(r.sent, 4);
  t.is(r.observed, 7);
  t.is(r.applied, 4);
  t.is(r.lost, 0);
  t.is(r.duplicated, 3);
  t.deepEqual([...r.examples.duplicated].sort(), ['alice#1', 'bob#2']);
  // A replay of the latest seq is not out of order.
  t.is(r.outOfOrder, 0);
  t.is(r.unexpected, 0);
});

test('out of order within a lane is counted, with an example naming the later seq and the lane', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice'], 4);
  checker.observe('alice', 1, 'sink-a');
  checker.observe('alice', 3, 'sink-a');
  checker.observe('alice', 2, 'sink-a'); // 2 after 3
  checker.observe('alice', 4, 'sink-a');
  const r = checker.report();
  t.is(r.outOfOrder, 1);
  t.deepEqual(r.examples.outOfOrder, ['alice#2 after #3 in sink-a']);
  t.like(r, { sent: 4, observed: 4, applied: 4, lost: 0, duplicated: 0, unexpected: 0 });
});

test('out of order is measured against the highest seq seen so far in the lane', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['k'], 5);
  for (const seq of [1, 5, 2, 3, 4]) checker.observe('k', seq);
  const r = checker.report();
  t.is(r.outOfOrder, 3);
  t.deepEqual(r.examples.outOfOrder, ['k#2 after #5', 'k#3 after #5', 'k#4 after #5']);
});

test('order is checked per key: interleaving different keys is never out of order', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['a', 'b'], 3);
  for (const [key, seq] of [['a', 3], ['b', 1], ['a', 1]] as const) checker.observe(key, seq);
  // b#1 after a#3 is fine; a#1 after a#3 is not.
  const r = checker.report();
  t.is(r.outOfOrder, 1);
  t.deepEqual(r.examples.outOfOrder, ['a#1 after #3']);
});

test('order is NOT checked across lanes: the same key descending across two lanes is fine', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice'], 4);
  checker.observe('alice', 3, 'lane-1');
  checker.observe('alice', 4, 'lane-1');
  checker.observe('alice', 1, 'lane-2');
  checker.observe('alice', 2, 'lane-2');
  const r = checker.report();
  t.is(r.outOfOrder, 0);
  t.deepEqual(r.examples.outOfOrder, []);
  t.like(r, { applied: 4, lost: 0, duplicated: 0 });
});

test('the default lane is its own lane and the example names no lane', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice'], 2);
  checker.observe('alice', 2, 'named');
  checker.observe('alice', 1); // default lane: first observation there
  checker.observe('alice', 2);
  checker.observe('alice', 1); // out of order in the default lane, also a duplicate
  const r = checker.report();
  t.is(r.outOfOrder, 1);
  t.deepEqual(r.examples.outOfOrder, ['alice#1 after #2']);
  t.is(r.duplicated, 2);
});

test('observations of events never sent are unexpected, and do not count as applied', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice'], 1);
  checker.observe('alice', 1);
  checker.observe('alice', 2);
  checker.observe('mallory', 1);
  const r = checker.report();
  t.deepEqual(r, {
    sent: 1,
    observed: 3,
    applied: 1,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    unexpected: 2,
    examples: { lost: [], duplicated: [], outOfOrder: [], unexpected: ['alice#2', 'mallory#1'] },
  });
});

test('examples list at most 10 of each problem while the counts stay exact', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['k'], 30);
  // 1..30 sent; observe 30 first, then 1..15 (out of order), twice; 16..30 never except 30: lost 14
  checker.observe('k', 30);
  for (let seq = 1; seq <= 15; seq++) checker.observe('k', seq);
  for (let seq = 1; seq <= 15; seq++) checker.observe('k', seq);
  for (let seq = 100; seq < 112; seq++) checker.observe('k', seq);
  const r = checker.report();
  t.is(r.sent, 30);
  t.is(r.observed, 1 + 15 + 15 + 12);
  t.is(r.applied, 16);
  t.is(r.lost, 14);
  t.is(r.duplicated, 15);
  t.is(r.outOfOrder, 30);
  t.is(r.unexpected, 12);
  t.is(r.examples.lost.length, 10);
  t.is(r.examples.duplicated.length, 10);
  t.is(r.examples.outOfOrder.length, 10);
  t.is(r.examples.unexpected.length, 10);
  t.deepEqual(r.examples.lost, ['k#16', 'k#17', 'k#18', 'k#19', 'k#20', 'k#21', 'k#22', 'k#23', 'k#24', 'k#25']);
  t.is(r.examples.outOfOrder[0], 'k#1 after #30');
  t.deepEqual(r.examples.unexpected, ['k#100', 'k#101', 'k#102', 'k#103', 'k#104', 'k#105', 'k#106', 'k#107', 'k#108', 'k#109']);
});

test('report is a snapshot: later observations change later reports only', (t) => {
  const checker = new SemanticsChecker();
  sendAll(checker, ['alice'], 2);
  checker.observe('alice', 1);
  const before = checker.report();
  checker.observe('alice', 2);
  t.is(before.lost, 1);
  t.deepEqual(before.examples.lost, ['alice#2']);
  t.is(checker.report().lost, 0);
});

test('report is a snapshot: an earlier report\'s outOfOrder examples do not change with later observations', (t) => {
  // BUG: report() returns the checker's internal `ooExamples` array itself
  // (`examples.outOfOrder: this.ooExamples`), unlike the other example lists, which are fresh
  // arrays. An earlier report grows as observations continue, and a caller that edits the
  // report edits the checker.
  const checker = new SemanticsChecker();
  sendAll(checker, ['k'], 3);
  checker.observe('k', 3);
  checker.observe('k', 1);
  const before = checker.report();
  t.deepEqual(before.examples.outOfOrder, ['k#1 after #3']);
  checker.observe('k', 2);
  t.deepEqual(before.examples.outOfOrder, ['k#1 after #3']);
  before.examples.outOfOrder.length = 0;
  t.deepEqual(checker.report().examples.outOfOrder, ['k#1 after #3', 'k#2 after #3']);
});
