/**
 * The POST body of an alert per `format`: Slack (incoming webhook, `text` in mrkdwn), Teams (a Workflows webhook
 * taking an Adaptive Card, which replaced the retired Office 365 connectors' MessageCard), or plain JSON with every
 * field for scripts (PagerDuty / Opsgenie bridges, a ticket system).
 */
import { hostname } from 'node:os';
import type { AlertFormat } from '../config/proxy-config.ts';
import { clean, headline, suppressedNote, type AlertMessage } from './alert-message.ts';

const HOST = clean(hostname(), 100);

/** Events that say something is wrong (red) rather than that it recovered or moved (amber). */
const BAD = new Set(['down', 'pool_unavailable', 'reload_failed', 'feature_above']);

export function formatMessage(format: AlertFormat, m: AlertMessage): string {
  switch (format) {
    case 'slack':
      return JSON.stringify(slackBody(m));
    case 'teams':
      return JSON.stringify(teamsBody(m));
    case 'json':
      return JSON.stringify(jsonBody(m));
  }
}

export function plainText(m: AlertMessage): string {
  const note = suppressedNote(m);
  return `${headline(m)}: ${clean(m.reason)}${note ? ` ${note}` : ''}`;
}

/** Slack mrkdwn treats &, < and > as control characters (links, mentions): escaped as Slack asks. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function slackBody(m: AlertMessage): { text: string } {
  const icon = m.event === 'up' || m.event === 'failback' ? ':large_green_circle:' : BAD.has(m.event) ? ':red_circle:' : ':large_orange_circle:';
  const note = suppressedNote(m);
  const lines = [
    `${icon} *licproxy ${slackEscape(HOST)}*: ${slackEscape(headline(m))}`,
    `${slackEscape(clean(m.reason))} (${new Date(m.time).toISOString()})`,
    ...(note ? [`_${slackEscape(note)}_`] : []),
  ];
  return { text: lines.join('\n') };
}

export function teamsBody(m: AlertMessage): Record<string, unknown> {
  const facts: Array<{ title: string; value: string }> = [{ title: 'Event', value: m.event }];
  if (m.pool !== undefined) facts.push({ title: 'Pool', value: clean(m.pool, 100) });
  if (m.server !== undefined) facts.push({ title: 'Server', value: clean(m.server, 100) });
  if (m.from !== undefined) facts.push({ title: 'From', value: clean(m.from, 100) });
  if (m.to !== undefined) facts.push({ title: 'To', value: clean(m.to, 100) });
  if (m.feature !== undefined) facts.push({ title: 'Feature', value: `${clean(m.feature, 100)}: ${m.used ?? '?'} / ${m.issued ?? '?'}` });
  facts.push({ title: 'Reason', value: clean(m.reason) }, { title: 'Time', value: new Date(m.time).toISOString() }, { title: 'Host', value: HOST });
  if (m.suppressed > 0) facts.push({ title: 'Suppressed', value: suppressedNote(m) });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', size: 'Medium', weight: 'Bolder', wrap: true, color: BAD.has(m.event) ? 'Attention' : m.event === 'up' || m.event === 'failback' ? 'Good' : 'Warning', text: `licproxy: ${headline(m)}` },
            { type: 'FactSet', facts },
          ],
        },
      },
    ],
  };
}

export function jsonBody(m: AlertMessage): Record<string, unknown> {
  return {
    source: 'licproxy',
    host: HOST,
    event: m.event,
    time: new Date(m.time).toISOString(),
    ...(m.pool !== undefined ? { pool: m.pool } : {}),
    ...(m.server !== undefined ? { server: m.server } : {}),
    ...(m.from !== undefined ? { from: m.from } : {}),
    ...(m.to !== undefined ? { to: m.to } : {}),
    reason: clean(m.reason, 1000),
    ...(m.feature !== undefined ? { feature: m.feature, used: m.used, issued: m.issued } : {}),
    suppressed: m.suppressed,
    ...(m.suppressedSince !== undefined ? { suppressed_since: new Date(m.suppressedSince).toISOString() } : {}),
    text: plainText(m),
  };
}
