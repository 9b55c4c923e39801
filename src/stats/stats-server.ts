/**
 * The stats listener (SPEC 3): a bare `node:http` server that renders snapshots and forwards admin requests to the
 * source's hooks. Everything it shows is built synchronously from one snapshot per request, so a slow or hostile
 * HTTP client can cost this listener a socket, never the proxy a delay. The listener is hardened on its own:
 * header/request/idle timeouts (slowloris), header size, connection and per-socket request caps, body limit.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { errorMessage } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { parseServerChange, type ServerChange } from './admin-request.ts';
import { adminFormRoute, answerForm, type AdminFormRoute } from './admin-form.ts';
import { AdminSessions } from './admin-session.ts';
import { AdminToken } from './admin-token.ts';
import { readBody } from './read-body.ts';
import { renderCsv } from './render-csv.ts';
import { renderHtml } from './render-html.ts';
import { renderEventsJson, renderJson } from './render-json.ts';
import { PrometheusExporter } from './render-prometheus.ts';
import { parsePath } from './request-path.ts';
import type { AdminAction, AdminResult, StatsSource } from './snapshot.ts';
import type { UsageRecorder } from './history/usage-recorder.ts';
import { answerUsage, usageRoute, type UsageRoute } from './history/usage-routes.ts';

export interface StatsServerLimits {
  /** Time a client has to send the complete request headers (slowloris). */
  headersTimeoutMs: number;
  /** Time a client has to send the complete request, body included. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection with no activity either way (e.g. a client that stopped reading) is closed after this. */
  socketIdleTimeoutMs: number;
  maxHeaderSize: number;
  maxRequestsPerSocket: number;
  /** Concurrent connections to the stats listener; beyond, new ones are closed at accept. */
  maxConnections: number;
  /** Admin request bodies; larger ones get 413. */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: StatsServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  socketIdleTimeoutMs: 30_000,
  maxHeaderSize: 16 * 1024,
  maxRequestsPerSocket: 1000,
  maxConnections: 1024,
  maxBodyBytes: 64 * 1024,
};

export interface StatsServerOptions {
  host: string;
  /** 0 = an ephemeral port (see `address` after start). */
  port: number;
  source: StatsSource;
  /** HTML auto-refresh (`stats.refresh`), ms. */
  refreshMs?: number;
  /** The admin bearer token (content of `stats.admin.token_file`); null/absent = admin endpoints answer 404. */
  adminToken?: string | null;
  logger?: Logger;
  limits?: Partial<StatsServerLimits>;
  /** How long stop() lets in-flight responses finish before it closes every connection. */
  stopGraceMs?: number;
  /** Default process metrics on /metrics (default true). */
  defaultMetrics?: boolean;
  /** `stats.history` (SPEC 10): /api/usage and /stats/usage; absent = those answer 404. */
  history?: UsageRecorder | null;
}

const READ_ROUTES = new Set(['stats', 'stats.json', 'stats.csv', 'metrics', 'health', 'ready']);
const READ_ALLOW = 'GET, HEAD';

const COMMON_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};
const HTML_HEADERS: Record<string, string> = {
  // The page has no script and no external asset; the policy makes that a guarantee even if escaping ever slipped.
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** /stats with stats.admin: its forms post to this listener, and send their Origin and Referer (admin-form.ts). */
const ADMIN_HTML_HEADERS: Record<string, string> = {
  ...HTML_HEADERS,
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'Referrer-Policy': 'same-origin',
};

/** /stats/usage: the same guarantees, and its filter form (a GET to itself) may submit. */
const USAGE_HTML_HEADERS: Record<string, string> = {
  ...HTML_HEADERS,
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** A page is rendered again only when its last rendering is older than this many times its cost (see #rendered). */
const RENDER_BUDGET = 20;

export class StatsServer {
  readonly #renders = new Map<string, { body: string; at: number; costMs: number }>();
  readonly #opts: StatsServerOptions;
  readonly #limits: StatsServerLimits;
  readonly #source: StatsSource;
  readonly #log: Logger;
  #token: AdminToken | null;
  #refreshMs: number;
  readonly #prom: PrometheusExporter;
  readonly #server: http.Server;
  #reloading = false;
  #started = false;
  #history: UsageRecorder | null;
  /** The page's admin sessions (a new token logs every session out). */
  #sessions = new AdminSessions();

  constructor(opts: StatsServerOptions) {
    this.#opts = opts;
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#source = opts.source;
    this.#log = opts.logger ?? silentLogger;
    this.#token = opts.adminToken ? new AdminToken(opts.adminToken) : null;
    this.#refreshMs = opts.refreshMs ?? 5_000;
    this.#history = opts.history ?? null;
    this.#prom = new PrometheusExporter({ defaultMetrics: opts.defaultMetrics ?? true });
    const l = this.#limits;
    this.#server = http.createServer(
      {
        headersTimeout: l.headersTimeoutMs,
        requestTimeout: Math.max(l.requestTimeoutMs, l.headersTimeoutMs),
        maxHeaderSize: l.maxHeaderSize,
        // Node checks the two timeouts above on this period; the default (30 s) would let a slowloris outlive them.
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(l.headersTimeoutMs / 4))),
      },
      (req, res) => this.#onRequest(req, res),
    );
    this.#server.keepAliveTimeout = l.keepAliveTimeoutMs;
    this.#server.maxRequestsPerSocket = l.maxRequestsPerSocket;
    this.#server.maxConnections = l.maxConnections;
    this.#server.setTimeout(l.socketIdleTimeoutMs, (socket: Socket) => socket.destroy());
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
  }

  /** The bound address once started. */
  get address(): { host: string; port: number } {
    const a = this.#server.address() as AddressInfo | null;
    if (!a) throw new Error('stats server is not listening');
    return { host: a.address, port: a.port };
  }

  get url(): string {
    const { host, port } = this.address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  start(): Promise<{ host: string; port: number }> {
    if (this.#started) return Promise.resolve(this.address);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ host: this.#opts.host, port: this.#opts.port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#log.error({ err: errorMessage(err) }, 'stats listener error'));
        this.#started = true;
        this.#log.info({ url: this.url, admin: this.#token !== null }, 'stats listening');
        resolve(this.address);
      });
    });
  }

  /** A reload that keeps the listen address: the page's refresh and the admin token change in place. */
  configure(opts: { refreshMs?: number; adminToken?: string | null; history?: UsageRecorder | null }): void {
    if (opts.refreshMs !== undefined) this.#refreshMs = opts.refreshMs;
    if (opts.history !== undefined) this.#history = opts.history;
    if (opts.adminToken !== undefined) {
      this.#token = opts.adminToken ? new AdminToken(opts.adminToken) : null;
      this.#sessions = new AdminSessions();
    }
    this.#renders.clear();
  }

  /** Stops accepting, closes idle keep-alive connections at once and every connection after the grace period. */
  stop(): Promise<void> {
    if (!this.#started) return Promise.resolve();
    this.#started = false;
    return new Promise((resolve) => {
      const grace = setTimeout(() => this.#server.closeAllConnections(), this.#opts.stopGraceMs ?? 1_000);
      grace.unref();
      this.#server.close(() => {
        clearTimeout(grace);
        resolve();
      });
      this.#server.closeIdleConnections();
    });
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // Node answers header timeouts (408) and oversized headers (431) itself when it can; anything else is a bad request.
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
        : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.#route(req, res);
    } catch (err) {
      this.#fail(res, err);
    }
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const parsed = parsePath(req.url);
    if (!parsed.ok) return text(res, parsed.status, parsed.message);
    const seg = parsed.segments;
    const method = req.method ?? 'GET';
    if (seg.length === 0) {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, READ_ALLOW);
      return send(res, 302, 'text/plain; charset=utf-8', 'see /stats\n', { Location: '/stats' });
    }
    const usage = usageRoute(seg);
    if (usage !== null) {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, READ_ALLOW);
      return this.#usage(usage, req, res);
    }
    const form = adminFormRoute(seg);
    if (form !== null) {
      if (!this.#token) return text(res, 404, 'not found');
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      return void this.#form(form, req, res).catch((err: unknown) => this.#fail(res, err));
    }
    const isApi = seg.length >= 2 && seg[0] === 'api';
    const read = seg.length === 1 && READ_ROUTES.has(seg[0]!) ? seg[0]! : isApi && seg.length === 2 && seg[1] === 'events' ? 'api/events' : null;
    if (read !== null) {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, READ_ALLOW);
      return this.#read(read, req, res);
    }
    const isReload = isApi && seg.length === 2 && seg[1] === 'reload';
    const isServer = seg.length === 5 && seg[0] === 'api' && seg[1] === 'pools' && seg[3] === 'servers';
    if (!isReload && !isServer) return text(res, 404, 'not found');
    // Without an admin token the admin API does not exist (404, the same answer as an unknown path).
    if (!this.#token) return text(res, 404, 'not found');
    if (method !== 'POST') return methodNotAllowed(res, 'POST');
    const remote = remoteOf(req);
    if (!this.#token.verify(req.headers.authorization)) {
      this.#log.warn({ remote, path: req.url }, 'admin request refused: missing or wrong bearer token');
      return json(res, 401, { error: 'missing or wrong bearer token' }, { 'WWW-Authenticate': 'Bearer realm="licproxy"' });
    }
    void this.#admin(req, res, remote, isReload ? null : { pool: seg[2]!, server: seg[4]! }).catch((err) => this.#fail(res, err));
  }

  #read(path: string, req: IncomingMessage, res: ServerResponse): void {
    switch (path) {
      case 'health':
        return text(res, 200, 'ok', '');
      case 'stats': {
        const opts = { refreshMs: this.#refreshMs, usageLink: this.#history !== null };
        if (this.#token === null) {
          return this.#rendered(res, path, 'text/html; charset=utf-8', HTML_HEADERS, () => renderHtml(this.#source.snapshot(), this.#source.events(), opts));
        }
        // With stats.admin the page carries forms: a logged-in viewer's holds its session's CSRF token, so it is
        // never served from the shared rendering.
        const session = this.#sessions.fromCookie(req.headers.cookie);
        if (session === null) {
          return this.#rendered(res, 'stats+login', 'text/html; charset=utf-8', ADMIN_HTML_HEADERS, () =>
            renderHtml(this.#source.snapshot(), this.#source.events(), { ...opts, admin: { loggedIn: false } }));
        }
        return this.#afterRefresh(res, () => this.#render(res, 'stats+session', 'text/html; charset=utf-8', ADMIN_HTML_HEADERS, () =>
          renderHtml(this.#source.snapshot(), this.#source.events(), { ...opts, admin: { loggedIn: true, csrf: session.csrf } })));
      }
      case 'stats.json':
        return this.#rendered(res, path, 'application/json; charset=utf-8', {}, () => renderJson(this.#source.snapshot()));
      case 'stats.csv':
        return this.#rendered(res, path, 'text/csv; charset=utf-8; header=present', {}, () => renderCsv(this.#source.snapshot()));
      case 'api/events':
        return send(res, 200, 'application/json; charset=utf-8', renderEventsJson(this.#source.events()));
      case 'ready':
        return this.#afterRefresh(res, () => this.#ready(req, res));
      case 'metrics':
        return this.#rendered(res, path, this.#prom.contentType, {}, () => this.#prom.render(this.#source.snapshot()));
    }
  }

  #usage(route: UsageRoute, req: IncomingMessage, res: ServerResponse): void {
    answerUsage(route, req.url, this.#history).then(
      (a) => send(res, a.status, a.type, a.body, route === 'page' && a.status === 200 ? USAGE_HTML_HEADERS : {}),
      (err: unknown) => this.#fail(res, err),
    );
  }

  /** Runs `f` on fresh counters: at once for a source that has them at hand, after its refresh otherwise. */
  #afterRefresh(res: ServerResponse, f: () => void): void {
    const refresh = this.#source.refresh;
    if (refresh === undefined) return f();
    refresh.call(this.#source).then(f, (err: unknown) => this.#fail(res, err));
  }

  /**
   * Serves a rendered page, rendering it again only when the last rendering is older than RENDER_BUDGET times its
   * own cost: a scraper or dashboard hammering an endpoint then gets the same fresh-enough text and costs the
   * forwarding path at most about 1/RENDER_BUDGET of the event loop, whatever its rate (a 1000-server /metrics
   * that takes 30 ms is rendered at most every 0.6 s; a small one every few milliseconds).
   */
  #rendered(
    res: ServerResponse,
    key: string,
    type: string,
    headers: Record<string, string>,
    render: () => string | Promise<string>,
  ): void {
    const hit = this.#renders.get(key);
    if (hit && performance.now() - hit.at < hit.costMs * RENDER_BUDGET) return send(res, 200, type, hit.body, headers);
    // Counters kept elsewhere (cluster workers) are fetched first; waiting for them is not rendering cost.
    this.#afterRefresh(res, () => this.#render(res, key, type, headers, render));
  }

  #render(res: ServerResponse, key: string, type: string, headers: Record<string, string>, render: () => string | Promise<string>): void {
    const now = performance.now();
    const done = (body: string) => {
      this.#renders.set(key, { body, at: now, costMs: performance.now() - now });
      send(res, 200, type, body, headers);
    };
    try {
      const body = render();
      if (typeof body === 'string') return done(body);
      body.then(done, (err: unknown) => this.#fail(res, err));
    } catch (err) {
      this.#fail(res, err);
    }
  }

  #ready(req: IncomingMessage, res: ServerResponse): void {
    const snap = this.#source.snapshot();
    const down = snap.pools.filter((p) => !p.available).map((p) => p.name);
    const status = down.length === 0 ? 200 : 503;
    if ((req.headers.accept ?? '').includes('application/json')) {
      return json(res, status, { ready: down.length === 0, unavailablePools: down });
    }
    if (down.length === 0) return text(res, 200, `ready: ${snap.pools.length} pool(s), each with a usable server`);
    return text(res, 503, `not ready: no usable server in pool(s) ${down.join(', ')}`);
  }

  async #admin(req: IncomingMessage, res: ServerResponse, remote: string, target: { pool: string; server: string } | null): Promise<void> {
    const body = await readBody(req, this.#limits.maxBodyBytes);
    if (!body.ok) {
      if (body.reason === 'too-large') {
        return json(res, 413, { error: `body larger than ${this.#limits.maxBodyBytes} bytes` }, { Connection: 'close' });
      }
      res.destroy();
      return;
    }
    if (target === null) return this.#reload(res, remote);
    const parsed = parseServerChange(body.body);
    if (!parsed.ok) return json(res, 400, { error: parsed.message });
    const result = this.#apply(target, parsed.change, remote);
    if (!result.ok) return json(res, result.error === 'invalid' ? 400 : 404, { error: result.message });
    return json(res, 200, { ok: true, pool: target.pool, server: target.server, ...parsed.change });
  }

  /** The /stats page's login, logout and admin forms (admin-form.ts); the changes go through #apply. */
  async #form(route: AdminFormRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, this.#limits.maxBodyBytes);
    if (!body.ok) {
      if (body.reason === 'too-large') return text(res, 413, `body larger than ${this.#limits.maxBodyBytes} bytes`, '\n', { Connection: 'close' });
      res.destroy();
      return;
    }
    const remote = remoteOf(req);
    const a = answerForm(route, req, body.body, {
      token: this.#token!,
      sessions: this.#sessions,
      apply: (pool, server, change) => this.#apply({ pool, server }, change, remote),
    });
    if (a.status === 401 || a.status === 403) this.#log.warn({ remote, path: req.url, status: a.status }, `admin form refused: ${a.body.trim()}`);
    else if (route !== 'admin' && a.status === 303) this.#log.info({ remote }, `admin: ${route} on the stats page`);
    this.#renders.delete('stats+session');
    send(res, a.status, a.headers['Content-Type'] ?? 'text/plain; charset=utf-8', a.body, a.headers);
  }

  /** One server change, from the JSON API or the page's form: applied, recorded as an event, logged. */
  #apply(target: { pool: string; server: string }, change: ServerChange, remote: string): AdminResult {
    const { state, weight, bindings } = change;
    let result: AdminResult = { ok: true };
    if (state !== undefined) result = this.#source.setServerState(target.pool, target.server, state);
    if (result.ok && weight !== undefined) result = this.#source.setServerWeight(target.pool, target.server, weight);
    if (result.ok && bindings === 'clear') result = this.#source.clearServerBindings(target.pool, target.server);
    const action: AdminAction = { action: 'set-server', pool: target.pool, server: target.server, remote, ok: result.ok };
    if (state !== undefined) action.state = state;
    if (weight !== undefined) action.weight = weight;
    if (bindings !== undefined) action.bindings = bindings;
    if (!result.ok) action.error = result.message;
    this.#source.recordAdminAction(action);
    this.#log.info({ remote, pool: target.pool, server: target.server, state, weight, ok: result.ok, error: action.error },
      `admin: set server ${target.pool}/${target.server}${state ? ` state=${state}` : ''}${weight !== undefined ? ` weight=${weight}` : ''}${bindings ? ' bindings=clear' : ''}` +
      (result.ok ? '' : ` failed: ${result.message}`));
    return result;
  }

  async #reload(res: ServerResponse, remote: string): Promise<void> {
    if (this.#reloading) return json(res, 409, { error: 'a reload is already in progress' });
    this.#reloading = true;
    let result;
    try {
      result = await this.#source.reload();
    } catch (err) {
      result = { ok: false as const, error: errorMessage(err) };
    } finally {
      this.#reloading = false;
    }
    const action: AdminAction = { action: 'reload', remote, ok: result.ok };
    if (!result.ok) action.error = result.error;
    this.#source.recordAdminAction(action);
    this.#log.info({ remote, ok: result.ok, error: action.error }, result.ok ? 'admin: reload applied' : `admin: reload refused: ${action.error}`);
    if (!result.ok) return json(res, 400, { ok: false, error: result.error });
    return json(res, 200, { ok: true });
  }

  #fail(res: ServerResponse, err: unknown): void {
    this.#log.error({ err: errorMessage(err) }, 'stats request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    text(res, 500, 'internal error');
  }
}

function remoteOf(req: IncomingMessage): string {
  const s = req.socket;
  const host = s.remoteAddress ?? '?';
  return `${host.includes(':') ? `[${host}]` : host}:${s.remotePort ?? '?'}`;
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    ...COMMON_HEADERS,
    ...headers,
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Plain text, one line (a newline is added unless `nl` says otherwise). */
function text(res: ServerResponse, status: number, message: string, nl = '\n', headers: Record<string, string> = {}): void {
  send(res, status, 'text/plain; charset=utf-8', message + nl, headers);
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), headers);
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  text(res, 405, `method not allowed (allowed: ${allow})`, '\n', { Allow: allow });
}
