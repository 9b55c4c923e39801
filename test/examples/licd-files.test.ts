/**
 * Every deployment example the README points to has its licd files in conf/examples/licd/, one per server of the
 * example (same server names), each a valid licd file, started as written and answering STATUS. The sets another
 * test already starts on their fixed ports are only loaded here (two tests binding one port would collide).
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { connect } from '../../src/client/license-client.ts';
import { loadLicdConfig, type LicdConfig } from '../../src/config/licd-config.ts';
import { LICD, REPO } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

/** Example -> the test that starts its licd files as written. */
const STARTED_ELSEWHERE: Record<string, string> = {
  'flexlm-triad.yaml': 'deployments.test.ts',
  'backup-pair.yaml': 'deployments.test.ts',
  'lsdyna-solvers.yaml': 'lsdyna-solvers.test.ts',
  'lmx-geographic.yaml': 'license-routing.test.ts',
  'seats-active-active.yaml': 'license-routing.test.ts',
};

const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const EXAMPLES = join(REPO, 'conf/examples');

/** The examples the README names in its "one example per deployment" sentence. */
function namedExamples(): string[] {
  const at = README.indexOf('one example per deployment in `conf/examples/`');
  if (at < 0) return [];
  const sentence = README.slice(at, README.indexOf('\n\n', at));
  return [...sentence.matchAll(/`([\w-]+\.yaml)`/g)].map((m) => m[1]!);
}

/** The README's table: example -> its licd files. */
function licdTable(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const m of README.matchAll(/^\| `([\w-]+\.yaml)` \| (`[\w-]+\.yaml`(?:, `[\w-]+\.yaml`)*) \|$/gm)) {
    rows.set(m[1]!, [...m[2]!.matchAll(/`([\w-]+\.yaml)`/g)].map((x) => x[1]!));
  }
  return rows;
}

function exampleServers(example: string): string[] {
  const doc = YAML.parse(readFileSync(join(EXAMPLES, example), 'utf8')) as { pools: Record<string, { servers: { name: string }[] }> };
  return Object.values(doc.pools).flatMap((p) => p.servers.map((s) => s.name));
}

test('the README names every example of conf/examples/, and each has a row of licd files', (t) => {
  const named = namedExamples();
  const onDisk = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  t.deepEqual([...named].sort(), [...onDisk].sort());
  const table = licdTable();
  for (const example of onDisk) t.true(table.has(example), `${example}: no row in the README's licd table`);
});

for (const [example, files] of licdTable()) {
  const starts = STARTED_ELSEWHERE[example] === undefined;
  test(`${example}: one valid licd file per server, ${starts ? 'each starts and answers STATUS' : `started by ${STARTED_ELSEWHERE[example]}`}`, async (t) => {
    t.timeout(60_000);
    const configs: LicdConfig[] = [];
    for (const f of files) {
      const path = join(EXAMPLES, 'licd', f);
      t.true(existsSync(path), `${path} is missing`);
      if (existsSync(path)) configs.push(loadLicdConfig(path));
    }
    t.deepEqual(configs.map((c) => c.server.name).sort(), exampleServers(example).sort(), 'a licd file for every server, named as the server');
    if (configs.length === 0 || !starts) return;

    const children: ChildProcess[] = [];
    t.teardown(() => children.forEach((c) => c.kill('SIGKILL')));
    const ready = await Promise.all(
      files.map((f) => {
        const child = spawn(process.execPath, [LICD, '-c', join('conf/examples/licd', f), '--log-level', 'warn'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
        children.push(child);
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
        let up: { ports: { license: number } } | undefined;
        child.on('message', (m: { type?: string; ports?: { license: number } }) => {
          if (m.type === 'licd-ready' && m.ports) up = { ports: m.ports };
        });
        return waitFor(() => {
          if (child.exitCode !== null) throw new Error(`${f} exited: ${stderr.trim()}`);
          return up;
        }, { timeout: 30_000, what: `${f} to start` });
      }),
    );
    for (let i = 0; i < files.length; i++) {
      const c = await connect('127.0.0.1', ready[i]!.ports.license);
      try {
        t.regex(await c.status(), new RegExp(`${configs[i]!.server.name}: license server UP`));
      } finally {
        c.destroy();
      }
    }
  });
}
