import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isExpired, lmstatVerdict } from '../../src/health/lmstat-verdict.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/lmstat/', import.meta.url));
const fixture = (name: string) => readFileSync(FIXTURES + name, 'utf8');
const NOW = Date.UTC(2026, 5, 1);

test('expiry dates: past, future, the whole last day, permanent and unparsable', (t) => {
  t.true(isExpired('1-jan-2020', NOW));
  t.false(isExpired('31-dec-2027', NOW));
  t.false(isExpired('1-jan-0', NOW), 'year 0 is permanent in FlexNet');
  t.false(isExpired('permanent', NOW));
  t.false(isExpired('someday', NOW));
  const lastDay = new Date(2026, 5, 1, 23, 59).getTime();
  t.false(isExpired('1-jun-2026', lastDay), 'valid through its last day');
  t.true(isExpired('1-jun-2026', new Date(2026, 5, 2, 0, 0, 1).getTime()));
});

test('a FlexLM triad answer: the member is found by host name, full or short', (t) => {
  const text = fixture('lmstat_app2.txt');
  t.like(lmstatVerdict(text, 'host2', [], NOW), { ok: true, master: true });
  t.like(lmstatVerdict(text, 'host1', [], NOW), { ok: true, master: false });
  t.like(lmstatVerdict(fixture('lmstat_app1.txt'), 'host2', [], NOW), { ok: true, master: true }, 'short name of host2.domain.net');
  // An address lmstat does not print: the set is judged (UP), and it cannot claim to be the master.
  t.like(lmstatVerdict(text, '10.0.0.7', [], NOW), { ok: true, master: false });
});

test('the member that cannot be reached is not UP; the others are fine', (t) => {
  const text = fixture('lmstat_server_down.txt');
  const down = lmstatVerdict(text, 'host3', [], NOW);
  t.false(down.ok);
  t.regex(down.reason, /^not UP: Cannot connect to license server system/);
  t.like(lmstatVerdict(text, 'host2', ['feature2'], NOW), { ok: true, master: true });
});

test('usage is one entry per feature with issued and in use', (t) => {
  const v = lmstatVerdict(fixture('lmstat_app1.txt'), 'host2.domain.net', [], NOW);
  t.like(v.features?.find((f) => f.name === 'feature1'), { issued: 1814, inUse: 1206 });
  const names = v.features!.map((f) => f.name);
  t.is(new Set(names).size, names.length);
});

test('licd answers: spec example is master with usage, a triad member carries its pair status', (t) => {
  const spec = lmstatVerdict(fixture('licd_spec.txt'), '127.0.0.1', ['LS-DYNA'], NOW);
  t.like(spec, { ok: true, master: true });
  const triad = lmstatVerdict(fixture('licd_triad.txt'), '127.0.0.1', ['LS-DYNA', 'MPPDYNA'], NOW);
  t.like(triad, { ok: true, master: false, redundancy: 'paired and synced' });
});

test('a vendor daemon that is down fails the check', (t) => {
  const text = 'License server status: 27000@a\na: license server UP (MASTER) v11\nVendor daemon status (on a):\n  vend: DOWN v11\n';
  t.like(lmstatVerdict(text, 'a', [], NOW), { ok: false, reason: 'vendor daemon vend down', master: true });
});

test('text with no server status fails and says so', (t) => {
  t.like(lmstatVerdict('hello\n', 'a', [], NOW), { ok: false, reason: 'no server status in answer' });
  t.like(lmstatVerdict('lmgrd is not running: License server machine is down or not responding.\n', 'a', [], NOW), {
    ok: false,
    reason: 'lmgrd is not running: License server machine is down or not responding.',
  });
});

test('a feature listed twice is expired only when every license line of it is', (t) => {
  const text = [
    'License server status: 1@a',
    'a: license server UP (MASTER) v1',
    'Users of F:  (Total of 5 licenses issued;  Total of 1 license in use)',
    '  "F" v1, vendor: v, expiry: 1-jan-2020',
    'Users of F:  (Total of 3 licenses issued;  Total of 0 licenses in use)',
    '  "F" v1, vendor: v, expiry: 31-dec-2030',
    'Users of G:  (Total of 2 licenses issued;  Total of 0 licenses in use)',
    '  "G" v1, vendor: v, expiry: 1-jan-2020',
    '',
  ].join('\n');
  const v = lmstatVerdict(text, 'a', ['F'], NOW);
  t.true(v.ok, v.reason);
  t.like(v.features?.find((f) => f.name === 'F'), { issued: 8, inUse: 1, expired: false, expiry: '31-dec-2030' });
  t.like(lmstatVerdict(text, 'a', ['F', 'G'], NOW), { ok: false, reason: 'feature G expired' });
});
