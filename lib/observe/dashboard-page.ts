/**
 * The dashboard page: one self-contained HTML document (no external script, style or font)
 * that subscribes to one or more live views (`/events`, server-sent events of `LiveSnapshot`s) and
 * renders each node's supervision tree with states and restarts, its partitions with lag and
 * checkpoint age, its breakers and its latest lifecycle events, updated as snapshots arrive.
 *
 * Invariant: everything from a snapshot is written with `textContent`, never parsed as HTML, so a
 * crash message that holds markup shows as text.
 */

/**
 * @example
 * res.end(dashboardPage(['events']));
 */
export function dashboardPage(sources: readonly string[], title = 'warden'): string {
  const json = JSON.stringify(sources).replace(/</g, '\\u003c');
  const safeTitle = title.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${safeTitle}</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
  body { margin: 0; padding: 16px 24px; }
  h1 { font-size: 20px; margin: 0 0 12px; }
  section.node { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
  section.node header { display: flex; gap: 12px; align-items: baseline; }
  section.node h2 { font-size: 16px; margin: 0; }
  .badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; background: #e6e9ef; }
  .s-running, .s-closed, .s-up { background: #d7f2df; color: #14532d; }
  .s-restarting, .s-starting, .s-half-open { background: #fdf0c4; color: #713f12; }
  .s-failed, .s-stopped, .s-down, .s-open, .s-fatal { background: #fbd5d5; color: #7f1d1d; }
  .grid { display: grid; grid-template-columns: minmax(280px, 1fr) minmax(320px, 1.3fr); gap: 16px; margin-top: 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 2px 8px 2px 0; border-bottom: 1px solid #eef0f4; font-variant-numeric: tabular-nums; }
  th { font-weight: 600; color: #4b5565; font-size: 12px; }
  ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 16px; }
  ul.tree { padding-left: 0; }
  ul.tree li { margin: 2px 0; }
  .restarts { color: #4b5565; font-size: 12px; }
  ol.events { margin: 0; padding-left: 20px; max-height: 260px; overflow: auto; font-size: 12px; }
  .t-child-crashed, .t-actor-crashed, .t-failed, .t-escalated, .t-fatal, .t-partition-down, .t-lease-lost { color: #b91c1c; }
  .t-child-restarting, .t-actor-restarted, .t-restored, .t-child-started { color: #166534; }
  .muted { color: #6b7280; font-size: 12px; }
  h3 { font-size: 13px; margin: 12px 0 4px; color: #374151; }
</style>
</head>
<body>
<h1>${safeTitle}</h1>
<div id="nodes"></div>
<script>
(function () {
  var sources = ${json};
  var root = document.getElementById('nodes');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function age(ms) { return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s'; }
  function tree(node) {
    var li = el('li');
    li.dataset.path = node.path;
    li.dataset.status = node.status;
    li.appendChild(el('span', 'id', node.id));
    li.appendChild(document.createTextNode(' '));
    li.appendChild(el('span', 'badge s-' + node.status, node.status));
    li.appendChild(document.createTextNode(' '));
    li.appendChild(el('span', 'restarts', 'restarts ' + node.restarts));
    if (node.children && node.children.length) {
      var ul = el('ul');
      node.children.forEach(function (c) { ul.appendChild(tree(c)); });
      li.appendChild(ul);
    }
    return li;
  }
  function table(cols, rows, cls) {
    var t = el('table', cls);
    var tr = el('tr');
    cols.forEach(function (c) { tr.appendChild(el('th', null, c)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el('tr');
      r.cells.forEach(function (c) { row.appendChild(c instanceof Node ? (function () { var td = el('td'); td.appendChild(c); return td; })() : el('td', null, c)); });
      if (r.data) Object.keys(r.data).forEach(function (k) { row.dataset[k] = r.data[k]; });
      t.appendChild(row);
    });
    return t;
  }
  function render(section, s) {
    section.textContent = '';
    section.dataset.node = s.node;
    section.dataset.alive = String(s.alive);
    var head = el('header');
    head.appendChild(el('h2', null, s.pipeline + ' on ' + s.node));
    head.appendChild(el('span', 'badge s-' + (s.alive ? 'up' : 'down'), s.alive ? 'up' : 'down'));
    head.appendChild(el('span', 'muted updated', 'updated ' + new Date(s.at).toLocaleTimeString()));
    section.appendChild(head);
    var grid = el('div', 'grid');
    var left = el('div');
    left.appendChild(el('h3', null, 'Supervision tree'));
    var ul = el('ul', 'tree');
    ul.appendChild(tree(s.tree));
    left.appendChild(ul);
    var right = el('div');
    right.appendChild(el('h3', null, 'Partitions'));
    right.appendChild(table(['stage', 'partition', 'state', 'restarts', 'epoch', 'lag', 'checkpoint age', 'outbox', 'actors'], s.partitions.map(function (p) {
      var state = p.down ? 'down' : p.running ? 'running' : 'starting';
      return { cells: [p.stage, p.partition, el('span', 'badge s-' + state, p.down ? 'down ' + p.down : state), p.restarts, p.epoch, p.lag, age(p.checkpointAgeMs), p.outbox, p.actors], data: { partition: p.stage + '/' + p.partition, restarts: String(p.restarts), lag: String(p.lag) } };
    }), 'partitions'));
    right.appendChild(el('h3', null, 'Circuit breakers'));
    if (s.breakers.length === 0) right.appendChild(el('p', 'muted', 'no guarded calls'));
    else right.appendChild(table(['call', 'state', 'failures in a row', 'failed calls'], s.breakers.map(function (b) {
      return { cells: [b.call, el('span', 'badge s-' + b.state, b.state), b.consecutiveFailures, b.failedCalls], data: { call: b.call, state: b.state } };
    }), 'breakers'));
    right.appendChild(el('h3', null, 'Latest events'));
    var ol = el('ol', 'events');
    s.events.slice().reverse().forEach(function (e) {
      var li = el('li', 't-' + e.type, new Date(e.at).toLocaleTimeString() + '  ' + e.type + '  ' + e.where + (e.detail ? '  ' + e.detail : ''));
      li.dataset.type = e.type;
      ol.appendChild(li);
    });
    right.appendChild(ol);
    grid.appendChild(left);
    grid.appendChild(right);
    section.appendChild(grid);
    document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
  }
  sources.forEach(function (src, i) {
    var section = el('section', 'node');
    section.appendChild(el('p', 'muted', 'connecting to ' + src + '...'));
    root.appendChild(section);
    var es = new EventSource(src);
    es.addEventListener('snapshot', function (m) { render(section, JSON.parse(m.data)); });
    es.onerror = function () { section.dataset.connection = 'lost'; };
    es.onopen = function () { section.dataset.connection = 'open'; };
  });
})();
</script>
</body>
</html>
`;
}
