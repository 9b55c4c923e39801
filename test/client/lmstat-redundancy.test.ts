/** licd's redundancy detail lines in STATUS (PROTOCOL.md "Status"), as licd writes them and the parser reads them. */
import test from 'ava';
import { parseLmstat } from '../../src/client/lmstat-parser.ts';
import { redundancyLines } from '../../src/licd/status-text.ts';

test('role and peer lines round-trip through the parser; the pair state is not taken from a role word', (t) => {
  const lines = redundancyLines({
    mode: 'triad',
    order: 1,
    state: 'peer not available',
    role: 'serving',
    term: 3,
    seq: 10,
    master: 'a',
    peers: [
      { name: 'b', address: '10.0.0.2:27200', connected: true, role: 'following', synced: true },
      { name: null, address: '10.0.0.3:27200', connected: false, role: null },
    ],
  });
  t.deepEqual(lines, [
    'Redundancy: triad, peer not available',
    'Redundancy role: serving, master a',
    'Redundancy peer: b connected following synced',
    'Redundancy peer: 10.0.0.3:27200 missing',
  ]);
  const s = parseLmstat(['License server status: 27100@a', 'a: license server UP (MASTER) v1.0', ...lines, 'END', ''].join('\n'));
  t.is(s.redundancy?.state, 'peer not available');
  t.deepEqual(s.redundancyDetail, {
    role: 'serving',
    master: 'a',
    peers: [
      { name: 'b', connected: true, role: 'following', synced: true },
      { name: '10.0.0.3:27200', connected: false },
    ],
  });
  const rec = parseLmstat('b: license server DOWN v1.0\nRedundancy: triad, not synced\nRedundancy role: recovering, master none\n');
  t.is(rec.redundancy?.state, 'not synced', 'the role line does not overwrite the state');
  t.deepEqual(rec.redundancyDetail, { role: 'recovering', master: null, peers: [] });
});

test('a hostile answer lists at most 8 peers', (t) => {
  const many = Array.from({ length: 1000 }, (_, i) => `Redundancy peer: p${i} missing`).join('\n');
  t.is(parseLmstat(`a: license server UP v1.0\nRedundancy: triad, paired and synced\n${many}\n`).redundancyDetail?.peers.length, 8);
});
