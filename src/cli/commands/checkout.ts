import type { Command } from 'commander';
import { hostname, userInfo } from 'node:os';
import { parseHostPort } from '../../common/address.ts';
import { parseDuration, formatDuration } from '../../common/duration.ts';
import { LpxError } from '../../common/errors.ts';
import { asLpxError, LicenseError } from '../../client/client-errors.ts';
import { LicenseClient, type Grant, type ResumeResult } from '../../client/license-client.ts';
import { TokenClient, type TokenGrant } from '../../client/token-client.ts';
import { isWord } from '../../client/protocol-text.ts';
import { intOption } from '../run-cli.ts';

interface CheckoutFlags {
  server: string;
  count: number;
  tokens?: number;
  tokenPort?: number;
  hold: string;
  heartbeat: string;
  user?: string;
  queue?: boolean;
  recheckout?: boolean;
  timeout: string;
  json?: boolean;
}

export function registerCheckout(program: Command): void {
  program
    .command('checkout')
    .description('a license client: checks out a feature, draws tokens, heartbeats while holding, checks in')
    .argument('<feature>', 'feature to check out (e.g. LS-DYNA)')
    .requiredOption('-s, --server <host:port>', 'license port of a licd server, or of a balancer in front of it')
    .option('--count <n>', 'seats to check out', intOption('--count', 1), 1)
    .option('--tokens <n>', 'tokens to draw on the token port after the checkout', intOption('--tokens', 1))
    .option('--token-port <port>', 'token port on the same host (default: license port + 1)', intOption('--token-port', 1, 65535))
    .option('--hold <duration>', 'how long to hold the license before checking in (e.g. 30s)', '0s')
    .option('--heartbeat <duration>', 'heartbeat interval while holding', '1m')
    .option('--user <name>', 'user name sent in HELLO (default: the current user)')
    .option('--queue', 'wait in the server queue when no seat is free')
    .option('--recheckout', 'while holding: when a failover lands on a server that does not know the license, check out anew (default: exit 2 at once)')
    .option('--timeout <duration>', 'connect and answer timeout', '5s')
    .option('--json', 'print one JSON object at the end instead of progress lines')
    .action((feature: string, flags: CheckoutFlags) => runCheckout(feature, flags));
}

async function runCheckout(feature: string, flags: CheckoutFlags): Promise<void> {
  const target = parseHostPort(flags.server);
  if (typeof target === 'string') throw new LpxError('LPX_ERR_USAGE', `-s: ${target}`);
  if (!isWord(feature)) throw new LpxError('LPX_ERR_USAGE', `feature must be one word, got "${feature}"`);
  const hold = durationFlag('--hold', flags.hold, 0);
  const heartbeat = durationFlag('--heartbeat', flags.heartbeat, 1);
  const timeout = durationFlag('--timeout', flags.timeout, 1);
  const user = flags.user ?? currentUser();
  if (!isWord(user)) throw new LpxError('LPX_ERR_USAGE', `--user must be one word, got "${user}"`);
  const tokenPort = flags.tokenPort ?? (flags.tokens !== undefined ? target.port + 1 : undefined);
  if (tokenPort !== undefined && tokenPort > 65535) throw new LpxError('LPX_ERR_USAGE', `--token-port: license port + 1 is not a port, give --token-port`);
  // Tokens are drawn on a connection to the server that issued the handle: a failover ends it, so there is nothing
  // a new checkout could carry on with.
  if (flags.recheckout && flags.tokens !== undefined) throw new LpxError('LPX_ERR_USAGE', '--recheckout cannot be used with --tokens (a failover ends the token connection)');

  const say = (line: string) => {
    if (!flags.json) process.stdout.write(line + '\n');
  };
  const where = `${target.host}:${target.port}`;
  let client: LicenseClient | undefined;
  let tokenConn: TokenClient | undefined;
  let step = `connect to ${where}`;
  try {
    client = await LicenseClient.connect(target.host, target.port, { timeout });
    step = 'HELLO';
    const hello = await client.hello(user, localHost(), { pid: process.pid });
    const serverName = hello.server || where;

    step = `CHECKOUT ${feature}`;
    const grant: Grant = await client.checkout(feature, {
      count: flags.count,
      ...(flags.queue ? { queue: true, onQueued: (pos: number) => say(`queued for ${feature} at position ${pos}`) } : {}),
    });
    say(`granted ${grant.feature || feature} x${grant.count} handle=${grant.handle} on ${serverName}`);

    let tokenGrant: TokenGrant | undefined;
    if (flags.tokens !== undefined && tokenPort !== undefined) {
      step = `TOKENS on ${target.host}:${tokenPort}`;
      tokenConn = await TokenClient.open(target.host, tokenPort, { timeout });
      tokenGrant = await tokenConn.tokens(grant.handle, flags.tokens);
      say(`tokens ${tokenGrant.tokens} granted (${tokenGrant.feature})`);
    }

    const started = Date.now();
    // The license held now: a --recheckout after a lost failover replaces it.
    let held: Grant = grant;
    if (hold > 0) {
      step = 'hold';
      say(`holding for ${formatDuration(hold)} (heartbeat every ${formatDuration(heartbeat)})`);
      const recheckout = flags.recheckout ? () => client!.checkout(feature, { count: flags.count }) : null;
      const tokens = tokenConn && tokenGrant ? { conn: tokenConn, count: tokenGrant.tokens, where: `${target.host}:${tokenPort}` } : undefined;
      held = await holdLicense(client, tokens, grant, hold, heartbeat, say, recheckout);
    }
    const heldMs = Date.now() - started;

    if (tokenConn && tokenGrant) {
      step = 'RELEASE';
      await tokenConn.release(tokenGrant.tokens);
      await tokenConn.close();
      say(`tokens ${tokenGrant.tokens} released`);
    }
    step = 'CHECKIN';
    await client.checkin(held.handle);
    say('checked in');
    step = 'QUIT';
    await client.quit();
    if (flags.json) {
      const out = {
        server: serverName,
        address: where,
        feature: grant.feature || feature,
        handle: held.handle,
        count: held.count,
        ...(tokenGrant ? { tokens: tokenGrant.tokens, tokenFeature: tokenGrant.feature } : {}),
        heldMs,
        checkedIn: true,
      };
      process.stdout.write(JSON.stringify(out) + '\n');
    }
  } catch (err) {
    throw asLpxError(err, err instanceof LicenseError && err.code !== 'DENIED' && !err.message.startsWith(step) ? `${step}: ` : '');
  } finally {
    tokenConn?.destroy();
    client?.destroy();
  }
}

/**
 * Holds the license for `ms`, heartbeating; ends early (and checks in normally) on SIGINT/SIGTERM. Fails when a
 * connection is lost or a heartbeat fails: the license is then gone, which the operator must see. After a failover
 * the client RESUMEs its handle on the serving member; a member that does not know it (a standalone server, or a
 * set that had not replicated it) means the seat is gone: that fails at once, as a real license client stops, or
 * with `recheckout` checks out anew. Resolves the license held at the end.
 */
function holdLicense(
  client: LicenseClient,
  tokens: { conn: TokenClient; count: number; where: string } | undefined,
  grant: Grant,
  ms: number,
  heartbeatMs: number,
  say: (line: string) => void,
  recheckout: (() => Promise<Grant>) | null,
): Promise<Grant> {
  let held = grant;
  // The operator watching a failover sees the license connection drop and come back on the new server.
  const onLost = (cause: Error) => say(`license connection lost (${cause.message}); resuming`);
  return new Promise<Grant>((resolve, reject) => {
    let finished = false;
    const done = (err?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      client.off('disconnected', onLost);
      client.off('resumed', onResumed);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      client.stopHeartbeat();
      if (err) reject(err);
      else resolve(held);
    };
    const onResumed = (r: ResumeResult) => {
      const server = client.serverName ?? `${client.host}:${client.port}`;
      if (!r.lost.some((l) => l.handle === held.handle)) {
        say(`resumed ${r.resumed.join(', ')} on ${server} after ${r.gap}ms`);
        return;
      }
      const why = `license lost: ${server} does not know handle ${held.handle} after the failover (the seat is gone)`;
      if (recheckout === null) return done(new LicenseError('LICENSE_LOST', why));
      say(`${why}; checking out anew`);
      recheckout().then(
        (g) => {
          if (finished) return;
          held = g;
          say(`granted ${g.feature || grant.feature} x${g.count} handle=${g.handle} on ${server}`);
        },
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    };
    client.on('disconnected', onLost);
    client.on('resumed', onResumed);
    const onSignal = () => done();
    const timer = setTimeout(() => done(), ms);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // A heartbeat that failed with its connection (reset, closed, timed out: e.g. the RST of a balancer that took
    // over a virtual IP and never had this connection) is the client library's to handle: it reconnects and
    // RESUMEs, then says 'resumed', or gives up through onDisconnect. Only a server's answer ends the hold here.
    client.startHeartbeat(heartbeatMs, (err) => {
      if (!(err instanceof LicenseError && CONNECTION_LOSS.has(err.code))) done(err);
    });
    client.setHooks({ onDisconnect: (err) => done(err ?? new LicenseError('CONNECTION_CLOSED', 'license connection closed while holding')) });
    // Tokens live on their connection (licd frees them when it closes) and are never resumed: losing it loses them,
    // and with them the license's use, whatever the license connection does next.
    tokens?.conn.closed.then(() =>
      done(new LicenseError('LICENSE_LOST', `license lost: the token connection to ${tokens.where} closed while holding (the ${tokens.count} tokens drawn on it are gone)`)),
    );
  });
}

/** Heartbeat failures that are the connection's, not the server's answer. */
const CONNECTION_LOSS = new Set(['CONNECTION_CLOSED', 'TIMEOUT', 'CONNECT_FAILED']);

function durationFlag(name: string, text: string, min: number): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new LpxError('LPX_ERR_USAGE', `${name} expects a duration with a unit (500ms, 30s, 5m, 1h), got "${text}"`);
  if (ms < min) throw new LpxError('LPX_ERR_USAGE', `${name} must be at least ${formatDuration(min)}, got "${text}"`);
  return ms;
}

function currentUser(): string {
  try {
    return userInfo().username || process.env.USER || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

function localHost(): string {
  const h = hostname().trim();
  return h && isWord(h) ? h : 'localhost';
}
