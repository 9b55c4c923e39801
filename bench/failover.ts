/**
 * Failover gap: how long new license clients go unserved, and how many checkouts fail, when the primary license
 * server dies (SIGKILL) or hangs (SIGSTOP), for licproxy and for HAProxy configured as sites configure it.
 *
 *   node --import tsx bench/failover.ts                       # every fault x every balancer, ~5 min
 *   node --import tsx bench/failover.ts --faults hang --targets licproxy,licproxy-observe --deadline 20
 *
 * Per measurement, fresh: a primary and a secondary licd (child processes), the balancer (child process) in front,
 * and an open-loop client load (`--rate` new short sessions per second: connect, HELLO, CHECKOUT, CHECKIN, close,
 * client library with `resume: false`, `--timeout` answer timeout). An open loop, because a hung server holds
 * every closed-loop worker that reaches it until that worker's own timeout: new clients would stop arriving and
 * the gap would measure the client's timeout, not the balancer. After a warm-up served by the primary, the fault;
 * the run ends 2 s after the secondary's first grant, or `--deadline` seconds after the fault, then waits for the
 * sessions still in flight (each bounded by its timeout). Writes bench/results/failover.md and prints it.
 * Every child is registered for cleanup (also on Ctrl-C); a stopped licd is continued before it is stopped.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanup } from './lib/cleanup.ts';
import { ensureTool, toolVersion } from './lib/install.ts';
import { REPO } from './lib/node-script.ts';
import { analyseFault } from './lib/failover/fault-analysis.ts';
import { FAULTS, renderFailoverReport, type Fault, type FailoverRow, type FailoverRunInfo } from './lib/failover/failover-report.ts';
import { FAILOVER_TARGETS, startFailoverTarget, type FailoverTargetName, type FailoverTargetSpec } from './lib/failover/failover-targets.ts';
import { FEATURE, startLicensePair } from './lib/failover/license-pair.ts';
import { SessionLoad, grantsBy } from './lib/failover/session-load.ts';

interface Cli {
  faults: Fault[];
  targets: FailoverTargetSpec[];
  deadlineMs: number;
  rate: number;
  timeoutMs: number;
  warmMs: number;
  out: string;
}

const HELP = `usage: node --import tsx bench/failover.ts [options]
  --faults kill,hang          which faults (default both)
  --targets a,b               ${FAILOVER_TARGETS.map((t) => t.name).join(', ')} (default all)
  --deadline <s>              watch at most this long after the fault (default 45)
  --rate <n>                  new sessions per second (default 100)
  --timeout <s>               answer timeout of each session (default 5)
  --warm <s>                  warm-up served by the primary before the fault (default 3)
  --out <file>                report file (default bench/results/failover.md)`;

function fail(message: string): never {
  process.stderr.write(`bench/failover: ${message}\n`);
  process.exit(1);
}

function positive(name: string, text: string | undefined, def: number, max: number): number {
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || n > max) fail(`--${name} must be a number in (0, ${max}], got "${text}"`);
  return n;
}

function readCli(): Cli {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        faults: { type: 'string' },
        targets: { type: 'string' },
        deadline: { type: 'string' },
        rate: { type: 'string' },
        timeout: { type: 'string' },
        warm: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${HELP}`);
  }
  if (values.help) {
    process.stdout.write(HELP + '\n');
    process.exit(0);
  }
  const list = (v: unknown): string[] | null => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : null);
  const faults = (list(values.faults) ?? ['kill', 'hang']).map((f) => (f === 'kill' || f === 'hang' ? f : fail(`unknown fault "${f}" (kill, hang)`)));
  const targets = (list(values.targets) ?? FAILOVER_TARGETS.map((t) => t.name)).map(
    (n) => FAILOVER_TARGETS.find((t) => t.name === n) ?? fail(`unknown target "${n}" (${FAILOVER_TARGETS.map((t) => t.name).join(', ')})`),
  );
  return {
    faults,
    targets,
    deadlineMs: positive('deadline', values.deadline as string | undefined, 45, 600) * 1000,
    rate: positive('rate', values.rate as string | undefined, 100, 2_000),
    timeoutMs: positive('timeout', values.timeout as string | undefined, 5, 60) * 1000,
    warmMs: positive('warm', values.warm as string | undefined, 3, 60) * 1000,
    out: typeof values.out === 'string' ? values.out : join(REPO, 'bench/results/failover.md'),
  };
}

const log = (line: string) => process.stderr.write(`${line}\n`);

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once one whole session through the balancer succeeds. */
async function firstServed(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new SessionLoad({ port, workers: 1, maxSessions: 1, feature: FEATURE, timeoutMs: 2_000 }).start();
    await probe.stop();
    if (probe.records[0]?.error === null) return;
    if (Date.now() > deadline) throw new Error(`no session served within ${timeoutMs}ms: ${probe.records[0]?.error ?? '?'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** How long to keep the load on after the secondary's first grant: the tail shows the failures have stopped. */
const TAIL_MS = 2_000;

async function measure(fault: Fault, spec: FailoverTargetSpec, cli: Cli, dir: string, haproxyBinary: string | null): Promise<FailoverRow> {
  const pair = await startLicensePair(dir);
  let target: Awaited<ReturnType<typeof startFailoverTarget>> | null = null;
  let load: SessionLoad | null = null;
  try {
    target = await startFailoverTarget(spec, { dir, pair, haproxyBinary });
    // licproxy routes nobody before its first check result (SPEC 2.4): start the load once a client is served.
    await firstServed(target.port, 30_000);
    load = new SessionLoad({
      port: target.port,
      rate: cli.rate,
      feature: FEATURE,
      timeoutMs: cli.timeoutMs,
      maxDurationMs: cli.warmMs + cli.deadlineMs + 30_000,
    }).start();
    const l = load;
    const loadStart = Date.now();
    await until(() => Date.now() - loadStart >= cli.warmMs && grantsBy(l.records, 'primary').length >= 50, cli.warmMs + 30_000, 'the primary to serve');
    const warmFailures = l.records.filter((r) => r.error !== null).length;
    if (warmFailures > 0) log(`  note: ${warmFailures} sessions failed during the warm-up`);
    target.watch();
    const faultAt = Date.now();
    if (fault === 'kill') await pair.killPrimary();
    else pair.hangPrimary();
    // A SIGSTOP takes effect at once; a SIGKILL once the process is gone (its listener took connections until then).
    const settledAt = Date.now();
    let firstGrant = 0;
    await until(
      () => {
        if (!firstGrant) firstGrant = l.records.find((r) => r.server === 'secondary' && r.grantedAt >= faultAt)?.grantedAt ?? 0;
        const now = Date.now();
        const broken = target!.failure() ?? pair.failure();
        if (broken) throw new Error(broken);
        return (firstGrant > 0 && now - firstGrant >= TAIL_MS) || now - faultAt >= cli.deadlineMs;
      },
      cli.deadlineMs + 10_000,
      'the end of the window',
    );
    const windowMs = Date.now() - faultAt;
    await load.stop();
    const downAt = await target.downAt(faultAt);
    const report = analyseFault(l.records, faultAt, { faulty: 'primary', secondary: 'secondary' }, settledAt);
    return { fault, target: spec.name, downMs: downAt === null ? null : downAt - faultAt, windowMs, report };
  } finally {
    await load?.stop();
    await target?.stop();
    await pair.stop();
  }
}

async function main(): Promise<void> {
  const cli = readCli();
  cleanup.installHandlers();
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-failover-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const skipped: FailoverRunInfo['skipped'] = [];
  let haproxyBinary: string | null = null;
  let haproxyVersion = 'not used';
  if (cli.targets.some((t) => t.name.startsWith('haproxy'))) {
    const tool = ensureTool('haproxy', ['haproxy'], log);
    if ('path' in tool) {
      haproxyBinary = tool.path;
      haproxyVersion = toolVersion(tool.path, ['-v']);
    } else {
      for (const t of cli.targets.filter((x) => x.name.startsWith('haproxy'))) skipped.push({ name: t.name, reason: tool.skip });
    }
  }
  const targets = cli.targets.filter((t) => !skipped.some((x) => x.name === t.name));
  const [l1, l5, l15] = loadavg();
  const info = (): FailoverRunInfo => ({
    date: new Date(started).toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
    command: `node --import tsx bench/failover.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: [
      `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average at start ${l1!.toFixed(2)} / ${l5!.toFixed(2)} / ${l15!.toFixed(2)}`,
      `Node ${process.version}; ${haproxyVersion}`,
    ],
    settings: [
      `load: ${cli.rate} new sessions/s (open loop), each connect, HELLO, CHECKOUT, CHECKIN, close; answer timeout ${cli.timeoutMs / 1000} s; \`resume: false\``,
      `warm-up ${cli.warmMs / 1000} s on the primary; window: until 2 s after the secondary's first grant, at most ${cli.deadlineMs / 1000} s after the fault`,
      ...cli.faults.map((f) => `${f}: ${FAULTS[f]}`),
    ],
    skipped,
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  });
  const rows: FailoverRow[] = [];
  const write = (partial: boolean): string => {
    const text = renderFailoverReport(info(), rows, partial);
    mkdirSync(dirname(cli.out), { recursive: true });
    writeFileSync(cli.out, text);
    return text;
  };
  try {
    for (const fault of cli.faults) {
      for (const spec of targets) {
        if (cleanup.closing) break;
        log(`${fault} / ${spec.name} ...`);
        let row: FailoverRow;
        try {
          row = await measure(fault, spec, cli, dir, haproxyBinary);
        } catch (err) {
          if (cleanup.closing) break;
          row = { fault, target: spec.name as FailoverTargetName, downMs: null, windowMs: 0, report: null, error: (err as Error).message.split('\n')[0] };
        }
        rows.push(row);
        const r = row.report;
        log(
          r
            ? `  DOWN ${row.downMs ?? '-'} ms, gap ${r.firstSecondaryGrantMs ?? '-'} ms, failed ${r.failedAfter} of ${r.after} new, cut ${r.cut} of ${r.inFlight} in flight`
            : `  not measured: ${row.error}`,
        );
        write(true);
      }
    }
  } finally {
    await cleanup.runAll();
  }
  process.stdout.write(write(false));
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench/failover: ${(err as Error).message}\n`);
  await cleanup.runAll();
  process.exit(2);
});
