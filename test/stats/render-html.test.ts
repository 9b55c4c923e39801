import test from 'ava';
import { escapeHtml, formatDuration } from '../../src/stats/format.ts';
import { renderHtml } from '../../src/stats/render-html.ts';
import { HOSTILE_NAME, scriptedEvents, scriptedSnapshot } from '../helpers/stats.ts';

const html = renderHtml(scriptedSnapshot(), scriptedEvents(), { refreshMs: 5_000 });

/** Text of the row whose first cell starts with `name` (tags stripped, entities kept). */
function rowText(page: string, name: string): string {
  const rows = page.split('<tr').map((r) => r.replace(/^[^>]*>/, '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim());
  const row = rows.find((r) => r.startsWith(name));
  if (row === undefined) throw new Error(`no row for ${name}`);
  return row;
}

test('escapeHtml and formatDuration', (t) => {
  t.is(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  t.is(escapeHtml('plain'), 'plain');
  t.is(escapeHtml('a<b'), 'a&lt;b');
  t.is(escapeHtml('c<d'), 'c&lt;d', 'no regex state kept between calls');
  t.deepEqual([0, 12_400, 247_000, 3_725_000, 90_061_000].map(formatDuration), ['0s', '12s', '4m07s', '1h02m', '1d01h']);
});

test('hostile strings are escaped: no script element, no injected attribute, no JavaScript at all', (t) => {
  t.false(/<script/i.test(html));
  t.false(/<img/i.test(html));
  t.false(/<[^>]*\son\w+=/i.test(html), 'no event-handler attribute');
  t.false(/javascript:/i.test(html));
  t.true(html.includes(escapeHtml(HOSTILE_NAME)));
  t.true(html.includes('&lt;script&gt;bad()&lt;/script&gt;'), 'check reason escaped');
  t.true(html.includes('&lt;b&gt;feat&lt;/b&gt;'), 'feature name escaped');
  t.true(html.includes('&lt;i&gt;hostile&lt;/i&gt; reason'), 'event reason escaped');
  t.true(html.includes('Pool evil&quot;pool'), 'pool name escaped');
  t.true(html.includes('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'), 'host escaped');
  t.false(/<link|<iframe|src=["']?http|url\(/i.test(html), 'no external asset');
});

test('meta refresh from stats.refresh; none when 0', (t) => {
  t.true(html.includes('<meta http-equiv="refresh" content="5">'));
  t.false(renderHtml(scriptedSnapshot(), [], { refreshMs: 0 }).includes('http-equiv="refresh"'));
});

test('one table per pool with grouped headers, server rows and a total row', (t) => {
  t.is(html.match(/<table class="pool">/g)?.length, 3);
  for (const g of ['Queue', 'Sessions', 'Bytes', 'Errors', 'Warnings', 'Server']) t.true(html.includes(`>${g}</th>`), g);
  t.is(html.match(/<tr class="total">/g)?.length, 3);
  const primary = rowText(html, 'primary');
  // sessions 4/17/500/123457, bytes, errors, warnings, status, check, weight, tier, act/bck, chk, dwn
  t.regex(primary, /^primary MASTER 10\.0\.0\.1:31010,31011 4 17 500 123457 9876543 1234567 11 13 5 UP ok in 12ms, 3s ago 100\/100 0 Y - 21 2 1h02m 1m05s 42/);
  t.true(primary.includes('LS-DYNA 3/50') && primary.includes('MPPDYNA 1000/1024'));
  t.regex(rowText(html, 'secondary'), / UP 1\/3 timeout after 500ms in 501ms, 1s ago 40\/80 1 - Y /);
  t.regex(rowText(html, 'tertiary'), / DOWN 1\/2 .* 0\/60 2 - Y .* expired/);
  t.regex(rowText(html, 'drained'), / DRAIN /);
  t.regex(rowText(html, 'flex3'), / no check none yet /);
  t.regex(rowText(html, 'Total'), /^Total 1 6 6 17 124243 9876543 1234567 11 13 5 UP 140\/340 2 1 22 3 2h00m 30s 42( |$)/);
});

test('status rows carry their state class (colour), backups are marked', (t) => {
  t.regex(html, /<tr class="up"><td class="name">primary/);
  t.regex(html, /<tr class="going-down bck"><td class="name">secondary/);
  t.regex(html, /<tr class="going-up bck"><td class="name">tertiary/);
  t.regex(html, /<tr class="drain"><td class="name">drained/);
  t.regex(html, /<tr class="down"><td class="name">flex1/);
  t.regex(html, /<tr class="maint"><td class="name">flex2/);
  t.regex(html, /<tr class="no-check"><td class="name">flex3/);
  t.regex(html, /<tr class="nolb"><td class="name">flex4/);
  for (const c of ['tr.up td', 'tr.down td', 'tr.going-down td', 'tr.going-up td', 'tr.maint td']) t.true(html.includes(c), c);
});

test('pool line: mode, tier, failovers, affinity, redundancy; usage bars; frontends; events newest first', (t) => {
  t.true(html.includes('mode <b>failover</b>'));
  t.true(html.includes('active tier <b>0</b>'));
  t.true(html.includes('failovers <b>3</b> (last 4m00s ago)'));
  t.true(html.includes('affinity by <b>source</b>: <b>42</b> bindings, 1001 hits / 57 misses / 9 evictions'));
  t.true(html.includes('redundancy: <b>paired and synced</b>'));
  t.true(html.includes('redundancy: <b>peer not available</b>'));
  t.true(html.includes('UNAVAILABLE'));
  t.true(html.includes('<span class="fill" style="width:6%">'), 'LS-DYNA 3/50 = 6%');
  t.true(html.includes('<span class="fill hi" style="width:98%">'), 'MPPDYNA 1000/1024');
  t.true(html.includes('<span class="fill full" style="width:100%">'), 'secondary LS-DYNA 50/50');
  t.regex(rowText(html, 'lstc '), /^lstc 0\.0\.0\.0:31010 lsdyna license OPEN 6 19 5000 124243 7 9876545 1234569$/);
  t.regex(rowText(html, 'lstc_tokens'), /STOPPED/);
  const ev = html.slice(html.indexOf('Recent events'));
  t.true(ev.indexOf('up') < ev.indexOf('connect ECONNREFUSED'), 'newest first');
  for (const s of ['failover', 'failback', 'reload', 'admin', 'configuration reloaded (SIGHUP)', '2025-01-31 13:59:50Z']) t.true(ev.includes(s), s);
});

test('events table is capped', (t) => {
  const events = Array.from({ length: 50 }, (_, i) => ({ at: i * 1000, type: 'other' as const, reason: `event-${i}` }));
  const page = renderHtml(scriptedSnapshot(), events, { refreshMs: 5_000, events: 20 });
  t.true(page.includes('event-49') && page.includes('event-30'));
  t.false(page.includes('event-29'));
});
