import test from 'ava';
import { CSV_COLUMNS, HAPROXY_COLUMNS, renderCsv } from '../../src/stats/render-csv.ts';
import { HOSTILE_NAME, scriptedSnapshot } from '../helpers/stats.ts';

/** A small RFC 4180 parser: quoted fields may hold commas, doubled quotes and line breaks; CRLF or LF rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let atFieldStart = true;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        if (i < text.length && !',\r\n'.includes(text[i]!)) throw new Error(`junk after closing quote at ${i}`);
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (!atFieldStart) throw new Error(`quote inside an unquoted field at ${i}`);
      quoted = true;
      atFieldStart = false;
      i++;
      continue;
    }
    if (c === ',') {
      row.push(field);
      field = '';
      atFieldStart = true;
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      atFieldStart = true;
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      continue;
    }
    field += c;
    atFieldStart = false;
    i++;
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function table(csv: string): { header: string[]; rows: Record<string, string>[] } {
  const [head, ...body] = parseCsv(csv);
  if (!head || !head[0]!.startsWith('# ')) throw new Error('no "# " header');
  const header = [head[0]!.slice(2), ...head.slice(1)];
  for (const r of body) if (r.length !== header.length) throw new Error(`row of ${r.length} fields, header has ${header.length}: ${r.join(',')}`);
  return { header, rows: body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]!]))) };
}

test('the parser itself handles RFC 4180 quoting', (t) => {
  t.deepEqual(parseCsv('a,"b,c","d""e","f\ng"\r\n1,,3,4\n'), [['a', 'b,c', 'd"e', 'f\ng'], ['1', '', '3', '4']]);
  t.throws(() => parseCsv('a,b"c\n'));
});

test('header: HAProxy names in HAProxy order first, licproxy columns after', (t) => {
  const { header } = table(renderCsv(scriptedSnapshot()));
  const haproxyStart = 'pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime';
  t.true(renderCsv(scriptedSnapshot()).startsWith(`# ${haproxyStart},qlimit,pid,iid,sid,throttle,lbtot`));
  t.deepEqual(header.slice(0, HAPROXY_COLUMNS.length), [...HAPROXY_COLUMNS]);
  t.is(HAPROXY_COLUMNS.length, 100);
  t.is(header[36], 'check_status');
  t.is(header[56], 'last_chk');
  t.is(header[73], 'addr');
  t.is(header[81], 'dcon');
  t.is(header[99], 'uweight');
  t.deepEqual(header, [...CSV_COLUMNS]);
  t.true(header.indexOf('tier') > 99 && header.indexOf('bindings') > 99);
});

test('rows: FRONTEND per frontend, a row per server and a BACKEND row per pool, values exact', (t) => {
  const { rows } = table(renderCsv(scriptedSnapshot()));
  const names = rows.map((r) => `${r.pxname}/${r.svname}`);
  t.deepEqual(names, [
    'lstc/FRONTEND', 'lstc_tokens/FRONTEND',
    'lsdyna/primary', 'lsdyna/secondary', 'lsdyna/tertiary', 'lsdyna/drained', 'lsdyna/BACKEND',
    'flex/flex1', 'flex/flex2', 'flex/flex3', 'flex/flex4', 'flex/BACKEND',
    `evil"pool/${HOSTILE_NAME}`, 'evil"pool/BACKEND',
  ]);
  const fe = rows[0]!;
  t.like(fe, { scur: '6', smax: '19', slim: '5000', stot: '124243', bin: '9876545', bout: '1234569', status: 'OPEN', dcon: '7', type: '0', listen: '0.0.0.0:31010' });
  t.is(rows[1]!.status, 'STOP');
  t.is(rows[1]!.slim, '');

  const primary = rows[2]!;
  t.like(primary, {
    qcur: '', qmax: '', scur: '4', smax: '17', slim: '500', stot: '123457', bin: '9876543', bout: '1234567',
    econ: '11', wretr: '13', wredis: '5', status: 'UP', weight: '100', act: '1', bck: '0', chkfail: '21', chkdown: '2',
    lastchg: '3725', downtime: '65', type: '2', sid: '1', check_duration: '12', last_chk: 'ok', addr: '10.0.0.1:31010',
    tier: '0', bindings: '42', master: '1', features: 'LS-DYNA=3/50;MPPDYNA=1000/1024', admin_state: 'ready',
  });
  t.like(rows[3]!, { status: 'UP 1/3', weight: '40', weight_cfg: '80', uweight: '80', act: '0', bck: '1', tier: '1', last_chk: 'timeout after 500ms' });
  t.like(rows[4]!, { status: 'DOWN 1/2', tier: '2', downtime: '3600', lastchg: '600' });
  t.like(rows[5]!, { status: 'DRAIN', admin_state: 'drain' });
  t.like(rows[6]!, {
    svname: 'BACKEND', status: 'UP', qcur: '1', qmax: '6', stot: String(123457 + 777 + 9), type: '1', algo: 'first',
    act: '2', bck: '1', bindings: '42', aff_hits: '1001', aff_misses: '57', aff_evictions: '9', failovers: '3',
    last_failover: '240', active_tier: '0', pool_mode: 'failover', redundancy: 'paired and synced', downtime: '30', lastchg: '7200',
  });
  t.deepEqual(rows.slice(7, 11).map((r) => r.status), ['DOWN', 'MAINT', 'no check', 'NOLB']);
  t.like(rows[11]!, { status: 'DOWN', pool_mode: 'master', redundancy: 'peer not available', active_tier: '' });
  t.is(rows[12]!.last_chk, '<script>bad()</script>');
});

test('names with commas, quotes and line breaks are quoted per RFC 4180 and read back unchanged', (t) => {
  const snap = scriptedSnapshot();
  snap.pools[0]!.servers[0]!.name = 'a,b "c"\nd';
  snap.frontends[0]!.name = 'fe,1';
  const csv = renderCsv(snap);
  t.true(csv.includes('"a,b ""c""\nd"'));
  const { rows } = table(csv);
  t.is(rows[0]!.pxname, 'fe,1');
  t.is(rows[2]!.svname, 'a,b "c"\nd');
});

test('check_status uses HAProxy codes', async (t) => {
  const { haproxyCheckStatus } = await import('../../src/stats/render-csv.ts');
  const base = { features: [], status: 'UP' } as unknown as Parameters<typeof haproxyCheckStatus>[0];
  const at = (ok: boolean, reason: string, extra: object = {}) =>
    haproxyCheckStatus({ ...base, ...extra, lastCheck: { ok, reason, durationMs: 1, at: 0 } } as typeof base);
  t.is(at(true, 'ok'), 'L4OK');
  t.is(at(true, 'ok', { master: true }), 'L7OK');
  t.is(at(false, 'connect refused'), 'L4CON');
  t.is(at(false, 'timeout after 500ms'), 'L4TOUT');
  t.is(at(false, 'timeout after 500ms', { master: false }), 'L7TOUT');
  t.is(at(false, 'feature LS-DYNA expired', { master: true }), 'L7STS');
  t.is(at(false, 'exit 2: boom'), 'PROCERR');
  t.is(haproxyCheckStatus({ ...base, lastCheck: null, status: 'no check' } as typeof base), null);
});
