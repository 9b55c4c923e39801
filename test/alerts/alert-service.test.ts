/**
 * The alert service against a real local HTTP receiver: the bodies of each format, min_interval folding, retries
 * after a 500, and a receiver that never answers. Events go through a real EventLog, as the balancer's do.
 */
import test from 'ava';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { AlertService } from '../../src/alerts/alert-service.ts';
import { EventLog } from '../../src/proxy/event-log.ts';
import type { ProxyApp } from '../../src/proxy/app.ts';
import type { ProxyConfig } from '../../src/config/proxy-config.ts';
import { startReceiver, type Answer } from './receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const POOLS = `pools:
  lmx:
    servers:
      - { name: a, address: 127.0.0.1:1 }
frontends:
  - { name: lmx, listen: 127.0.0.1:31999, pool: lmx }
`;

function configWith(alerts: string): ProxyConfig {
  return parseProxyConfig('t.yaml', `${POOLS}alerts:\n${alerts}`);
}

/** The service on a stand-in app holding only what it reads: the configuration and the event log. */
async function serve(t: import('ava').ExecutionContext, config: ProxyConfig): Promise<{ events: EventLog; service: AlertService }> {
  const events = new EventLog();
  const app = { config, runtime: { events, config, pool: () => undefined } } as unknown as ProxyApp;
  const service = new AlertService({ log: silentLogger, backoffBaseMs: 20 });
  await service.start(app);
  t.teardown(() => service.stop());
  return { events, service };
}

function down(events: EventLog, server = 'a', reason = 'connect refused'): void {
  events.add({ kind: 'server', pool: 'lmx', server, from: 'UP', to: 'DOWN', reason });
}

test('json: every field, and only the listed events are sent', async (t) => {
  const rx = await startReceiver(t);
  const { events } = await serve(t, configWith(`  - { url: "${rx.url}", format: json, events: [down, failover, reload_failed], headers: { X-Token: s3cret } }\n`));
  events.add({ kind: 'server', pool: 'lmx', server: 'a', from: 'no check', to: 'UP', reason: 'check ok' });
  down(events);
  events.add({ kind: 'failover', pool: 'lmx', from: 'a', to: 'b', reason: 'a is DOWN' });
  events.add({ kind: 'reload', reason: 'reloaded: no change' });
  events.add({ kind: 'reload', reason: 'reload failed, running configuration kept: t.yaml:3:5 bad' });
  await waitFor(() => rx.received.length >= 3, { what: 'three alerts' });
  const [d, f, r] = rx.received;
  t.like(d!.json, { source: 'licproxy', event: 'down', pool: 'lmx', server: 'a', from: 'UP', to: 'DOWN', reason: 'connect refused', suppressed: 0 });
  t.regex(String(d!.json.time), /^\d{4}-\d\d-\d\dT/);
  t.regex(String(d!.json.text), /server lmx\/a is DOWN \(was UP\): connect refused/);
  t.is(d!.headers['x-token'], 's3cret');
  t.regex(String(d!.headers['content-type']), /^application\/json/);
  t.like(f!.json, { event: 'failover', from: 'a', to: 'b' });
  t.like(r!.json, { event: 'reload_failed' });
  t.is(rx.received.length, 3);
});

test('slack: a text with the headline, escaped for mrkdwn; teams: an Adaptive Card', async (t) => {
  const slack = await startReceiver(t);
  const teams = await startReceiver(t);
  const { events } = await serve(t, configWith(`  - { url: "${slack.url}", format: slack, events: [down] }\n  - { url: "${teams.url}", format: teams, events: [down] }\n`));
  down(events, 'a', 'expect <OK> & got \u001b[31mred');
  await waitFor(() => slack.received.length === 1 && teams.received.length === 1, { what: 'both alerts' });
  const text = String(slack.received[0]!.json.text);
  t.deepEqual(Object.keys(slack.received[0]!.json), ['text']);
  t.regex(text, /server lmx\/a is DOWN/);
  t.true(text.includes('expect &lt;OK&gt; &amp; got'), text);
  t.false(text.includes('\u001b'), 'control bytes are not passed on');
  const card = teams.received[0]!.json as { type: string; attachments: Array<{ contentType: string; content: { type: string; body: Array<{ type: string; text?: string; facts?: Array<{ title: string; value: string }> }> } }> };
  t.is(card.type, 'message');
  t.is(card.attachments[0]!.contentType, 'application/vnd.microsoft.card.adaptive');
  const content = card.attachments[0]!.content;
  t.is(content.type, 'AdaptiveCard');
  t.regex(content.body[0]!.text ?? '', /server lmx\/a is DOWN/);
  const facts = Object.fromEntries(content.body[1]!.facts!.map((f) => [f.title, f.value]));
  t.like(facts, { Event: 'down', Pool: 'lmx', Server: 'a' });
});

test('min_interval: a flapping server sends one message, then one saying how many were folded into it', async (t) => {
  const rx = await startReceiver(t);
  const { events } = await serve(t, configWith(`  - { url: "${rx.url}", events: [down], min_interval: 300ms }\n`));
  for (let i = 0; i < 5; i++) down(events, 'a', `flap ${i}`);
  down(events, 'b', 'other server');
  await waitFor(() => rx.received.length >= 3, { what: 'the folded message' });
  const forA = rx.received.filter((r) => r.json.server === 'a');
  t.is(forA.length, 2);
  t.like(forA[0]!.json, { reason: 'flap 0', suppressed: 0 });
  // The latest of the held events, standing for the three between.
  t.like(forA[1]!.json, { reason: 'flap 4', suppressed: 3 });
  t.truthy(forA[1]!.json.suppressed_since);
  t.regex(String(forA[1]!.json.text), /3 more events like this/);
  t.like(rx.received.find((r) => r.json.server === 'b')!.json, { reason: 'other server', suppressed: 0 });
  // Nothing else is held: a later event after the interval goes out at once, alone.
  const lastAt = rx.received[rx.received.length - 1]!.at;
  await waitFor(() => Date.now() - lastAt > 350, { what: 'the interval to pass' });
  down(events, 'a', 'later');
  await waitFor(() => rx.received.length >= 4, { what: 'the later message' });
  t.like(rx.received[3]!.json, { reason: 'later', suppressed: 0 });
});

test('a webhook answering 500 is retried with backoff and the message delivered; metrics count it once', async (t) => {
  const answers: Answer[] = [500, 500, 200];
  const rx = await startReceiver(t, (n) => answers[n] ?? 200);
  const { events, service } = await serve(t, configWith(`  - { url: "${rx.url}", name: ops, events: [down], retries: 3 }\n`));
  down(events);
  await waitFor(() => rx.received.length === 1, { what: 'the retried alert' });
  // The receiver records before it answers; the sender counts once the answer is in.
  await waitFor(() => service.stats()[0]!.ok === 1, { what: 'the delivery counted' });
  t.is(rx.attempts, 3);
  t.like(service.stats().find((s) => s.name === 'ops'), { ok: 1, failed: 0, dropped: 0 });
});

test('a webhook that always fails is given up after the retries and counted as failed', async (t) => {
  const rx = await startReceiver(t, () => 503);
  const { events, service } = await serve(t, configWith(`  - { url: "${rx.url}", name: ops, events: [down], retries: 2 }\n`));
  down(events);
  await waitFor(() => service.stats()[0]!.failed === 1, { what: 'the alert given up' });
  t.is(rx.attempts, 3);
  t.is(service.stats()[0]!.ok, 0);
});

test('a webhook that never answers: each attempt ends at the timeout, later messages queue, the oldest are dropped when full', async (t) => {
  const rx = await startReceiver(t, () => 'hang');
  const { events, service } = await serve(t, configWith(`  - { url: "${rx.url}", name: slow, events: [down], min_interval: 0s, timeout: 200ms, retries: 1 }\n`));
  // Adding events is synchronous and only queues: it returns whatever the webhook does.
  for (let i = 0; i < 150; i++) down(events, `s${i}`);
  t.is(events.size, 150);
  await waitFor(() => rx.attempts >= 2, { what: 'a second attempt after the first timed out', timeout: 10_000 });
  const s = service.stats()[0]!;
  t.true(s.dropped >= 50, `dropped ${s.dropped}`);
  t.true(s.queued <= 100);
  await waitFor(() => service.stats()[0]!.failed >= 1, { what: 'the first message given up', timeout: 10_000 });
});

test('pool_unavailable and failback are matched; a pool waiting out its failover delay is not unavailable', async (t) => {
  const rx = await startReceiver(t);
  const { events } = await serve(t, configWith(`  - { url: "${rx.url}", events: [pool_unavailable, failback] }\n`));
  events.add({ kind: 'pool', pool: 'lmx', from: 'tier 0', to: 'waiting (failover delay)', reason: 'tier unusable' });
  events.add({ kind: 'pool', pool: 'lmx', from: 'tier 0', to: 'unavailable', reason: 'no usable server' });
  events.add({ kind: 'failback', pool: 'lmx', from: 'tier 1', to: 'tier 0', reason: 'a is UP' });
  await waitFor(() => rx.received.length >= 2, { what: 'two alerts' });
  t.deepEqual(rx.received.map((r) => r.json.event), ['pool_unavailable', 'failback']);
  t.regex(String(rx.received[0]!.json.text), /pool lmx is UNAVAILABLE/);
});

test('up is sent for a server back from DOWN, not for every server coming UP at start', async (t) => {
  const rx = await startReceiver(t);
  const { events } = await serve(t, configWith(`  - { url: "${rx.url}", events: [up, down] }\n`));
  events.add({ kind: 'server', pool: 'lmx', server: 'a', from: 'no check', to: 'UP', reason: 'check ok' });
  down(events, 'b');
  events.add({ kind: 'server', pool: 'lmx', server: 'b', from: 'DOWN', to: 'NOLB', reason: 'failback delay' });
  events.add({ kind: 'server', pool: 'lmx', server: 'b', from: 'NOLB', to: 'UP', reason: 'failback delay over' });
  await waitFor(() => rx.received.length >= 2, { what: 'down and up' });
  t.deepEqual(rx.received.map((r) => `${r.json.event} ${r.json.server}`), ['down b', 'up b']);
});

test('a reload keeps an unchanged alert and stops a removed one', async (t) => {
  const rx = await startReceiver(t);
  const rx2 = await startReceiver(t);
  const { events, service } = await serve(t, configWith(`  - { url: "${rx.url}", name: keep, events: [down] }\n  - { url: "${rx2.url}", name: gone, events: [down] }\n`));
  const p = await service.prepareReload(configWith(`  - { url: "${rx.url}", name: keep, events: [down] }\n`));
  t.truthy(p);
  p!.commit();
  down(events);
  await waitFor(() => rx.received.length === 1, { what: 'the kept alert' });
  t.is(rx2.attempts, 0);
  t.deepEqual(service.stats().map((s) => s.name).sort(), ['gone', 'keep']);
});
