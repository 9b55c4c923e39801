/**
 * The start of one connection of a licd pool (`protocol: licd`, SPEC 8.2), until the proxy has nothing left to
 * decide; then the connection switches to plain forwarding (the same read callbacks as a tcp pool) and this object
 * is dropped.
 *
 * - Collect (only `route: feature`): no server yet. HELLO and HEARTBEAT are answered by the proxy (a client waits
 *   for HELLO's answer before it sends CHECKOUT); the last HELLO is kept. The first line that needs a server routes
 *   the connection: `CHECKOUT <feature>` to a server that serves the feature, a handle line to the server that
 *   issued the handle, anything else by the pool's balance. A feature no usable server serves is answered
 *   `DENIED ... reason=UNKNOWN_FEATURE` and the client may go on.
 * - Watch: every client line is kept (bounded) and written to the server; every answer is read. An answer to a line
 *   already answered (HELLO answered by the proxy, lines replayed on another server) is dropped. The connection's
 *   first CHECKOUT answered `DENIED reason=EXHAUSTED` is tried on another server with a free seat (`retry_denied`);
 *   `ERR NOT_MASTER` / `ERR NO_QUORUM`, or a server lost before any useful answer, replays the kept lines on the
 *   member that serves (the one named by NOT_MASTER, else the pool's choice, waiting in the pool queue while there
 *   is none). The first useful answer (anything but the answers to HELLO / HEARTBEAT) ends watching: after it the
 *   proxy never moves the connection, so a granted seat is never asked for twice.
 */
import type { Side } from '../connection.ts';
import type { Pool, SelectContext, SelectResult } from '../pool.ts';
import type { Server } from '../server.ts';
import { LineDecoder, MAX_LINE_BYTES, type LineDecoderHooks } from '../../common/line-decoder.ts';
import { ANSWER } from '../../licd/protocol.ts';
import { checkoutCountersOf, type CheckoutCounters } from './checkout-counters.ts';
import { retryTarget, routeFeature, usable } from './feature-route.ts';
import { SessionSeen } from './session-seen.ts';
import { Answer, classifyAnswer, classifyClientLine, helloAnswer, LineKind, type ClientLine, namedMaster, unknownFeatureAnswer, withRequestId } from './licd-lines.ts';

/** Client bytes kept for replay; beyond, the connection is no longer moved (and goes plain once it can). */
export const MAX_KEPT_BYTES = 16 * 1024;
/** Moves of one connection (retries and failovers): a set that keeps bouncing it is not going to serve it. */
export const MAX_MOVES = 8;
/** Longest server answer line read while watching (status lines carry user names). */
const MAX_ANSWER_LINE = 64 * 1024;
const OK_LINE = Buffer.from(ANSWER.OK);
/** The proxy's HELLO answer per pool name, built once (it is written to nearly every route: feature client). */
const helloAnswers = new Map<string, Buffer>();
function helloAnswerOf(pool: string): Buffer {
  let b = helloAnswers.get(pool);
  if (b === undefined) {
    b = Buffer.from(helloAnswer(pool));
    if (helloAnswers.size > 10_000) helloAnswers.clear();
    helloAnswers.set(pool, b);
  }
  return b;
}

/** What the session needs of its connection (Connection implements it). */
export interface SessionHost extends SelectContext {
  readonly pool: Pool;
  readonly client: Side;
  readonly upstream: Side | null;
  readonly server: Server | null;
  exclude: Server[] | null;
  /** Connect to (or queue for) what the pool answered. */
  sessionPlace(r: SelectResult): void;
  /** Leave the current server quietly and connect to `next` (null: wait in the pool queue for a server). */
  sessionMove(next: Server | null): void;
  /** Watching is over: both directions go to the plain forwarding callbacks. */
  sessionPlain(): void;
  /** Answer `answer` (if any) and close the client; logged with `end` and `error`. */
  sessionRefuse(answer: string | null, end: 'bad_request' | 'client_close', error: string | null): void;
}

interface Kept {
  bytes: Buffer;
  kind: LineKind;
}

const enum Phase {
  Collect,
  Watch,
  Plain,
}

export class LicenseSession implements LineDecoderHooks {
  readonly #host: SessionHost;
  readonly #pool: Pool;
  readonly #counters: CheckoutCounters;
  /** User, handle and features seen, for the live sessions list; outlives the session (Connection keeps it). */
  readonly seen = new SessionSeen();
  #phase: Phase;
  /** Complete client lines, in order; the replay is all of them. */
  #lines: Kept[] = [];
  #keptBytes = 0;
  /** Bytes of an unfinished client line (copied). */
  #partial: Buffer | null = null;
  /** Lines whose answer the client has had (from a server or from the proxy): their answers are dropped. */
  #answered = 0;
  /** The line the current server answers next. */
  #srvNext = 0;
  /** Lines written to the current server (the rest waits for it to connect). */
  #sent = 0;
  #open = false;
  #decoder: LineDecoder | null = null;
  /** Index of the connection's first CHECKOUT (-1: none yet) and its feature. */
  #checkout = -1;
  #feature = '';
  /** The first useful answer reached the client: the connection stays where it is. */
  #done = false;
  #replayable = true;
  /** retry_denied: the denial being retried elsewhere, and the server that gave it. */
  #heldDenial: string | null = null;
  #deniedBy: Server | null = null;
  #tried: Server[] | null = null;
  #moves = 0;
  /** After a move: the new server must answer within `timeouts.connect`, or it is treated as lost (hung). */
  #answerTimer: NodeJS.Timeout | null = null;

  constructor(host: SessionHost) {
    this.#host = host;
    this.#pool = host.pool;
    this.#counters = checkoutCountersOf(host.pool);
    this.#phase = host.pool.config.route === 'feature' ? Phase.Collect : Phase.Watch;
  }

  /** True while no server is chosen (route: feature, before the line that routes). */
  get collecting(): boolean {
    return this.#phase === Phase.Collect;
  }

  get feature(): string {
    return this.#feature;
  }

  /** The connection left a server already (failover, retry): what it connects to now gets a replay. */
  get moved(): boolean {
    return this.#moves > 0;
  }

  /** Bytes this session holds now (the bench's memory figure reads the structure, not this). */
  get keptBytes(): number {
    return this.#keptBytes + (this.#partial?.length ?? 0);
  }

  /**
   * The client ended its side with its CHECKOUT unanswered: the kept lines to deliver anyway (see
   * abandoned-checkout.ts), or null when there is nothing such (no CHECKOUT, answered, a handle line among them, or
   * not a master pool).
   */
  abandonedCheckout(): { lines: Buffer; count: number } | null {
    if (this.#phase !== Phase.Watch || this.#done || !this.#replayable || this.#checkout < 0 || this.#pool.mode !== 'master') return null;
    const lines = this.#lines;
    if (this.#answered > this.#checkout) return null;
    for (const l of lines) if (l.kind === LineKind.Handle) return null;
    return { lines: Buffer.concat(lines.map((l) => l.bytes)), count: lines.length };
  }

  // ---- client -> proxy ----

  clientData(chunk: Buffer): void {
    let start = 0;
    const end = chunk.length;
    while (start < end && this.#phase !== Phase.Plain) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        const p = this.#partial;
        const n = end - start;
        if ((p?.length ?? 0) + n > MAX_LINE_BYTES + 1) return this.#lineTooLong(chunk.subarray(start));
        this.#partial = p === null ? Buffer.from(chunk.subarray(start)) : Buffer.concat([p, chunk.subarray(start)]);
        return;
      }
      const piece = chunk.subarray(start, nl + 1);
      const p = this.#partial;
      const bytes = p === null ? Buffer.from(piece) : Buffer.concat([p, piece]);
      this.#partial = null;
      start = nl + 1;
      const text = bytes.length >= 2 && bytes[bytes.length - 2] === 13 ? bytes.length - 2 : bytes.length - 1;
      if (text > MAX_LINE_BYTES) return this.#lineTooLong(bytes);
      if (this.#phase === Phase.Collect) this.#collectLine(bytes, bytes.toString('utf8', 0, text));
      else this.#watchLine(bytes, bytes.toString('utf8', 0, text));
    }
    // Went plain mid-chunk (gave up watching): the rest is forwarded as is.
    if (start < end && this.#phase === Phase.Plain) this.#host.upstream?.write(Buffer.from(chunk.subarray(start)));
  }

  #lineTooLong(rest: Buffer): void {
    if (this.#phase === Phase.Collect) {
      this.#host.sessionRefuse(ANSWER.LINE_TOO_LONG, 'bad_request', `line over ${MAX_LINE_BYTES} bytes before the first CHECKOUT`);
      this.#phase = Phase.Plain;
      return;
    }
    // The server answers it (licd: LINE_TOO_LONG and close); the proxy stops keeping and gets out of the way.
    const p = this.#partial;
    this.#partial = null;
    this.#giveUp(p === null ? Buffer.from(rest) : Buffer.concat([p, rest]));
  }

  #collectLine(bytes: Buffer, line: string): void {
    const c = classifyClientLine(line);
    if (!c.malformed) this.#saw(c);
    const client = this.#host.client;
    switch (c.kind) {
      case LineKind.Hello:
        if (c.malformed) return void client.write(Buffer.from(ANSWER.BAD_ARGUMENT));
        // A later HELLO replaces the earlier one (it applies to later checkouts): one is kept, whatever the client sends.
        if (this.#lines.length === 1) this.#keptBytes -= this.#lines.pop()!.bytes.length;
        this.#keep(bytes, LineKind.Hello);
        this.#answered = 1;
        client.write(helloAnswerOf(this.#pool.name));
        return;
      case LineKind.Heartbeat:
        return void client.write(c.malformed ? Buffer.from(ANSWER.BAD_ARGUMENT) : OK_LINE);
      case LineKind.Quit:
        return this.#host.sessionRefuse(ANSWER.OK, 'client_close', null);
      case LineKind.Bad:
        return void client.write(Buffer.from(ANSWER.BAD_COMMAND));
      case LineKind.Checkout: {
        if (c.malformed) return void client.write(Buffer.from(ANSWER.BAD_ARGUMENT));
        const r = routeFeature(this.#pool, this.#host, c.arg);
        if (r === 'unknown') {
          this.#counters.add('-', c.arg, 'denied');
          return void client.write(Buffer.from(unknownFeatureAnswer(c.arg)));
        }
        this.#checkout = this.#lines.length;
        this.#feature = c.arg;
        return this.#route(c.hasReq ? bytes : withRequestId(bytes), c.kind, r);
      }
      case LineKind.Handle: {
        if (c.malformed) return void client.write(Buffer.from(ANSWER.BAD_ARGUMENT));
        const dot = c.arg.lastIndexOf('.');
        const s = dot > 0 ? this.#pool.server(c.arg.slice(0, dot)) : undefined;
        const bound = s !== undefined && s.takesBoundClients() && (this.#pool.mode !== 'master' || s.isMaster);
        return this.#route(bytes, c.kind, bound ? (s.isFull() ? 'full' : s) : this.#pool.select(this.#host));
      }
      default:
        return this.#route(bytes, c.kind, this.#pool.select(this.#host));
    }
  }

  #route(bytes: Buffer, kind: LineKind, r: SelectResult): void {
    this.#keep(bytes, kind);
    this.#phase = Phase.Watch;
    this.#host.sessionPlace(r);
  }

  #saw(c: ClientLine): void {
    if (c.kind === LineKind.Hello) this.seen.hello(c.user);
    else if (c.kind === LineKind.Checkout) this.seen.checkout(c.arg);
    else if (c.kind === LineKind.Handle) this.seen.presented(c.arg);
  }

  #keep(bytes: Buffer, kind: LineKind): void {
    this.#lines.push({ bytes, kind });
    this.#keptBytes += bytes.length;
  }

  #watchLine(bytes: Buffer, line: string): void {
    const c = classifyClientLine(line);
    if (!c.malformed) this.#saw(c);
    // Replayable CHECKOUTs carry a request id, so a replay on a new master is idempotent (see withRequestId).
    if (c.kind === LineKind.Checkout && !c.malformed && !c.hasReq) bytes = withRequestId(bytes);
    if (this.#keptBytes + bytes.length > MAX_KEPT_BYTES) return this.#giveUp(bytes);
    if (this.#checkout < 0 && c.kind === LineKind.Checkout && !c.malformed) {
      this.#checkout = this.#lines.length;
      this.#feature = c.arg;
    }
    this.#keep(bytes, c.kind);
    if (this.#open) {
      this.#host.upstream!.write(bytes);
      this.#sent = this.#lines.length;
    }
  }

  /**
   * Stops keeping (a line too long or too much before an answer): forwarded plainly from here when nothing needs
   * dropping; otherwise the connection cannot be kept consistent and is closed.
   */
  #giveUp(pending: Buffer): void {
    this.#replayable = false;
    const u = this.#host.upstream;
    if (!this.#open || u === null || this.#heldDenial !== null || this.#srvNext < this.#answered || this.#sent !== this.#lines.length) {
      this.#phase = Phase.Plain;
      this.#host.sessionRefuse(null, 'bad_request', `over ${MAX_KEPT_BYTES} bytes of requests before a useful answer`);
      return;
    }
    u.write(pending);
    this.#plain();
  }

  // ---- server -> proxy ----

  /** A server connection is open: replay what the client sent so far. */
  upstreamOpen(u: Side): void {
    this.#open = true;
    this.#srvNext = 0;
    // One decoder per session, reset for each server: the session itself takes its lines (no closures).
    if (this.#decoder === null) this.#decoder = new LineDecoder(this, MAX_ANSWER_LINE);
    else this.#decoder.reset();
    const lines = this.#lines;
    if (lines.length > 0) u.write(lines.length === 1 ? lines[0]!.bytes : Buffer.concat(lines.map((l) => l.bytes)));
    this.#sent = lines.length;
    if (this.#moves > 0 && this.#srvNext < lines.length) {
      this.#answerTimer = setTimeout(onAnswerTimeout, this.#pool.config.timeouts.connect, this, u);
      this.#answerTimer.unref();
    }
    this.#maybePlain();
  }

  /** A server moved to took `timeouts.connect` without a line (a hung member): go on as if it had died. */
  answerTimedOut(u: Side): void {
    this.#answerTimer = null;
    if (this.#phase !== Phase.Watch || !this.#open || u !== this.#host.upstream) return;
    this.lost();
  }

  #clearAnswerTimer(): void {
    if (this.#answerTimer !== null) clearTimeout(this.#answerTimer);
    this.#answerTimer = null;
  }

  serverData(u: Side, chunk: Buffer): void {
    if (u !== this.#host.upstream || this.#decoder === null || !this.#open) return;
    const read = this.#decoder.write(chunk);
    if (read < chunk.length && this.#phase === Phase.Plain) this.#host.client.write(Buffer.from(chunk.subarray(read)));
  }

  /** LineDecoderHooks: one answer line of the current server. */
  onLine(line: string): boolean {
    return this.#serverLine(line);
  }

  /** LineDecoderHooks: an answer line over MAX_ANSWER_LINE. */
  onError(): void {
    this.#answerTooLong();
  }

  #answerTooLong(): void {
    this.#replayable = false;
    this.#host.sessionRefuse(null, 'bad_request', `server answer line over ${MAX_ANSWER_LINE} bytes`);
    this.#phase = Phase.Plain;
  }

  /** One answer line; false stops reading the chunk here (moved or gone plain: the rest is not for this reader). */
  #serverLine(line: string): boolean {
    if (this.#answerTimer !== null) this.#clearAnswerTimer();
    const i = this.#srvNext;
    const lines = this.#lines;
    const client = this.#host.client;
    if (i >= lines.length) {
      // Nothing asked: an unsolicited line (a daemon closing, a queued grant): the client's business.
      client.write(Buffer.from(line + '\n'));
      this.#done = true;
      this.#plain();
      return false;
    }
    const e = lines[i]!;
    if (e.kind === LineKind.StatusText) {
      const last = line === 'END';
      if (last) this.#srvNext++;
      if (i < this.#answered) return true;
      client.write(Buffer.from(line + '\n'));
      if (!last) return true;
      this.#answered = i + 1;
      this.#done = true;
      return this.#maybePlain();
    }
    this.#srvNext++;
    if (i < this.#answered) return this.#maybePlain();
    const a = classifyAnswer(line);
    if (a === Answer.Granted) this.seen.granted(line);
    if (a === Answer.NotServing && this.#replayable && !this.#done && this.#moves < MAX_MOVES) {
      this.#failover(namedMaster(line));
      return false;
    }
    if (i === this.#checkout) {
      if (a === Answer.Exhausted && this.#mayRetry(i)) return this.#retry(line);
      this.#count(a);
    } else if (this.#heldDenial !== null) {
      // Cannot happen (no line after the retried CHECKOUT is sent before its answer); stay consistent anyway.
      this.#heldDenial = null;
    }
    client.write(Buffer.from(line + '\n'));
    this.#answered = i + 1;
    if (e.kind !== LineKind.Hello && e.kind !== LineKind.Heartbeat) this.#done = true;
    return this.#maybePlain();
  }

  #count(a: Answer): void {
    const server = this.#host.server?.name ?? '-';
    if (a === Answer.Granted) {
      this.#counters.add(server, this.#feature, 'granted');
      if (this.#heldDenial !== null) this.#counters.add(server, this.#feature, 'retried_saved');
    } else if (a === Answer.Exhausted || a === Answer.Denied) {
      this.#counters.add(server, this.#feature, 'denied');
    }
    this.#heldDenial = null;
  }

  /** Goes plain once watching is over and no answer of the current server is left to drop. */
  #maybePlain(): boolean {
    if (!this.#done || this.#srvNext < this.#answered || !this.#open || this.#sent !== this.#lines.length) return true;
    this.#plain();
    return false;
  }

  #plain(): void {
    this.#clearAnswerTimer();
    this.#phase = Phase.Plain;
    const p = this.#partial;
    this.#partial = null;
    if (p !== null) this.#host.upstream?.write(p);
    this.#lines = [];
    this.#decoder = null;
    this.#host.sessionPlain();
  }

  // ---- retry_denied ----

  /** The first CHECKOUT, nothing that could hold a seat before it, nothing sent after it, and a retry allowed. */
  #mayRetry(i: number): boolean {
    if (!this.#pool.config.retryDenied || !this.#replayable || this.#done || this.#lines.length !== i + 1) return false;
    for (let k = 0; k < i; k++) if (this.#lines[k]!.kind === LineKind.Handle) return false;
    return this.#moves < MAX_MOVES;
  }

  #retry(line: string): boolean {
    const s = this.#host.server!;
    if (this.#heldDenial === null) {
      this.#heldDenial = line;
      this.#deniedBy = s;
    }
    (this.#tried ??= []).push(s);
    const next = retryTarget(this.#pool, this.#feature, this.#tried);
    if (next === undefined) {
      // Nowhere else: this answer is the client's, on the connection it came on.
      this.#count(Answer.Exhausted);
      this.#host.client.write(Buffer.from(line + '\n'));
      this.#answered = this.#srvNext;
      this.#done = true;
      return this.#maybePlain();
    }
    this.#move(next);
    return false;
  }

  // ---- moving to another server ----

  #move(next: Server | null): void {
    this.#clearAnswerTimer();
    this.#moves++;
    this.#open = false;
    this.#decoder?.stop();
    this.#sent = 0;
    this.#host.sessionMove(next);
  }

  #failover(hint: string | undefined): void {
    const cur = this.#host.server;
    if (cur !== null) (this.#host.exclude ??= []).push(cur);
    const named = hint !== undefined ? this.#pool.server(hint) : undefined;
    // The pool learns what this answer says now, not at the members' next checks: the one that refused is no
    // master, the one it names may be (a check reporting (MASTER) brings even a DOWN member UP at once).
    cur?.monitor?.checkSoon?.();
    if (named !== undefined && named !== cur) {
      named.monitor?.checkSoon?.();
      if (named.takesBoundClients()) return this.#move(named);
    }
    this.#move(this.#reselect());
  }

  /** Where to go after a loss: the pool's choice (feature-aware), or null to wait in its queue. */
  #reselect(): Server | null {
    const r = this.#feature !== '' && this.#pool.config.route === 'feature' ? routeFeature(this.#pool, this.#host, this.#feature) : this.#pool.select(this.#host);
    return r !== null && r !== 'full' && r !== 'unknown' ? r : null;
  }

  /**
   * The current server connection ended or failed before watching was over. True: handled (moved or waiting);
   * false: the connection ends as any would.
   */
  lost(): boolean {
    if (this.#phase !== Phase.Watch || !this.#replayable || this.#moves >= MAX_MOVES) return false;
    const cur = this.#host.server;
    if (this.#heldDenial !== null) {
      // The server tried for a retry is gone: the next one, else back to the one that denied, without the CHECKOUT.
      if (cur !== null) (this.#tried ??= []).push(cur);
      const next = retryTarget(this.#pool, this.#feature, this.#tried ?? []);
      if (next !== undefined) {
        this.#move(next);
        return true;
      }
      return this.#backToDenier();
    }
    if (this.#done) return false;
    if (cur !== null) (this.#host.exclude ??= []).push(cur);
    // A lost master: the pool stops sending new clients there as soon as a check confirms it.
    if (this.#pool.mode === 'master') cur?.monitor?.checkSoon?.();
    const next = this.#reselect();
    // With no server now: a master pool waits for the next master; others wait only if servers exist but are full.
    if (next === null && this.#pool.mode !== 'master') {
      const r = this.#pool.select(this.#host);
      if (r !== 'full') return false;
    }
    this.#move(next);
    return true;
  }

  /**
   * The pool's master is now another member: a connection still waiting for its first useful answer here (the old
   * master frozen, or about to close it) is replayed there now rather than when this one answers or closes. A
   * CHECKOUT the old master granted and replicated meanwhile is re-attached by its `req=`, never counted twice.
   */
  masterMoved(): void {
    if (this.#phase !== Phase.Watch || !this.#open || this.#done || this.#heldDenial !== null) return;
    this.lost();
  }

  /** The retry failed for lack of servers: the held denial is the answer, on the server that gave it. */
  #backToDenier(): boolean {
    const s = this.#deniedBy;
    const denial = this.#heldDenial!;
    if (s === null || !usable(this.#pool, s, Date.now())) return false;
    this.#counters.add(s.name, this.#feature, 'denied');
    this.#heldDenial = null;
    this.#host.client.write(Buffer.from(denial + '\n'));
    // The CHECKOUT is not asked again: the replay is the lines before it (its answers dropped) and any after it.
    const k = this.#checkout;
    this.#keptBytes -= this.#lines[k]!.bytes.length;
    this.#lines.splice(k, 1);
    this.#checkout = -1;
    this.#answered = k;
    this.#done = true;
    this.#move(s);
    return true;
  }

  /**
   * A connect failed: true when the session found another way. The first connect of a balance / failover pool
   * without feature routing is left to the pool's retries and redispatch, which pick as for any new client; in a
   * master pool a refused connect is a master gone, and the client waits for the next one.
   */
  connectFailed(): boolean {
    if (this.#phase !== Phase.Watch) return false;
    if (this.#moves === 0 && this.#pool.config.route !== 'feature' && this.#pool.mode !== 'master') return false;
    return this.lost();
  }

  /** Counts a wait in the pool queue that ended on `server`. */
  queueWaited(server: Server): void {
    this.#counters.add(server.name, this.#feature, 'queue_wait');
  }
}

function onAnswerTimeout(s: LicenseSession, u: Side): void {
  s.answerTimedOut(u);
}
