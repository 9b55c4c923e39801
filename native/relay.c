/*
 * licproxy's native relay: forwards the bytes of an established, plain connection (client <-> server) in C, on
 * Node's own event loop (uv_poll on the two sockets), with no JavaScript per chunk.
 *
 * Why: once a connection is placed and connected, licproxy's JavaScript only moves bytes, yet every read still
 * costs Node a C++ -> JavaScript call (MakeCallback, a property lookup, an async-context scope) and every write a
 * JavaScript -> C++ call. On persistent request/answer traffic that is the whole per-operation gap to HAProxy
 * (bench/results/perf-vs-haproxy.md). Here a readable socket is read into one buffer per environment and written
 * to the other side at once; only a write the kernel does not take whole keeps a copy (and stops reading the
 * source until it drains: back-pressure).
 *
 * JavaScript hands over a pair with adopt(clientFd, serverFd): the descriptors are duplicated here, so the
 * caller then closes its own handles (libuv removes them from epoll) without touching the connection. The pair
 * ends by itself (both sides' FIN passed on, or an error) and reports once through the callback given to init();
 * JavaScript may also end it with close(). Counters and end flags are written into a Float64Array shared with
 * JavaScript (no allocation per call).
 *
 * FIN handling matches connection.ts: a FIN read from one side is passed on with shutdown(SHUT_WR) while the other
 * side may still send; when the other side has already sent its own FIN and nothing waits to be written to it,
 * both sockets are simply closed (close sends the FIN; nothing is unread, so no RST). A read or write error on one
 * side closes both, the other side with RST when the error was ECONNRESET (the peer learns that the far end died).
 *
 * Every environment (main thread, worker thread) has its own state (napi_set_instance_data) and its own loop.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <fcntl.h>

#define READ_SIZE (64 * 1024)
/* Slots written by stats() and by a pair's end report, read by JavaScript (see native-relay.ts). */
#define ST_CLIENT_READ 0
#define ST_CLIENT_WRITTEN 1
#define ST_SERVER_READ 2
#define ST_SERVER_WRITTEN 3
#define ST_FIRST_END 4  /* 0: no FIN yet, 1: the client's came first, 2: the server's */
#define ST_ENDED 5      /* bit 1: client sent FIN, bit 2: server sent FIN */
#define ST_ERR_SIDE 6   /* -1: none, 0: client, 1: server */
#define ST_ERR_CODE 7   /* errno (positive) of that error */
#define ST_CLIENT_PENDING 8 /* bytes read from the server that the client's socket has not taken yet */
#define ST_SERVER_PENDING 9 /* the same the other way */
#define ST_SLOTS 10

typedef struct pair pair_t;
typedef struct env_state env_state_t;

typedef struct side {
  uv_poll_t poll;
  pair_t *pair;
  int fd;
  int events;        /* what the poll watches now (UV_READABLE | UV_WRITABLE), 0: stopped */
  int read_ended;    /* this side sent its FIN (read returned 0) */
  int fin_sent;      /* shutdown(SHUT_WR) done on this side */
  int fin_wanted;    /* pass a FIN to this side once `pending` is written */
  int closed;
  char *pending;     /* bytes to write to this side that the kernel did not take yet */
  size_t pending_len, pending_off;
  double bytes_read, bytes_written;
} side_t;

struct pair {
  side_t s[2]; /* 0: client, 1: server */
  env_state_t *st;
  uint32_t id;
  int first_end;
  int err_side;
  int err_code;
  int done;
  int open_handles;
};

struct env_state {
  napi_env env;
  uv_loop_t *loop;
  napi_ref callback;
  napi_ref stats_ref;
  double *stats;
  napi_async_context async;
  napi_ref resource;
  char *buf;
  pair_t **slots;
  uint32_t nslots;
  uint32_t *free_ids;
  uint32_t nfree;
  uint32_t live;
};

static void pair_finish(pair_t *p, int report);
static void update_events(side_t *s);

static int other(int i) { return 1 - i; }

static void write_stats(pair_t *p) {
  double *o = p->st->stats;
  o[ST_CLIENT_READ] = p->s[0].bytes_read;
  o[ST_CLIENT_WRITTEN] = p->s[0].bytes_written;
  o[ST_SERVER_READ] = p->s[1].bytes_read;
  o[ST_SERVER_WRITTEN] = p->s[1].bytes_written;
  o[ST_FIRST_END] = p->first_end;
  o[ST_ENDED] = (p->s[0].read_ended ? 1 : 0) | (p->s[1].read_ended ? 2 : 0);
  o[ST_ERR_SIDE] = p->err_side;
  o[ST_ERR_CODE] = p->err_code;
  o[ST_CLIENT_PENDING] = (double)p->s[0].pending_len;
  o[ST_SERVER_PENDING] = (double)p->s[1].pending_len;
}

/* An error on side i: both sides close, the other with RST when the peer of side i reset. */
static void pair_fail(pair_t *p, int i, int err) {
  if (p->done) return;
  p->err_side = i;
  p->err_code = err;
  if (err == ECONNRESET) {
    side_t *o = &p->s[other(i)];
    struct linger lg = {1, 0};
    setsockopt(o->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  pair_finish(p, 1);
}

/* Passes a FIN to side j (its peer will read EOF), or ends the pair when j is done sending too. */
static void pass_fin(pair_t *p, int j) {
  side_t *o = &p->s[j];
  if (o->pending_len > 0) {
    o->fin_wanted = 1;
    return;
  }
  if (o->read_ended && p->s[other(j)].read_ended) {
    /* Both FINs read and nothing left to write: close() sends this side's FIN itself. */
    pair_finish(p, 1);
    return;
  }
  if (!o->fin_sent) {
    o->fin_sent = 1;
    if (shutdown(o->fd, SHUT_WR) != 0 && errno != ENOTCONN) pair_fail(p, j, errno);
  }
}

/* Writes to side j what was read from the other side; keeps what the kernel did not take. */
static void write_to(pair_t *p, int j, const char *data, size_t n) {
  side_t *o = &p->s[j];
  ssize_t w;
  do w = send(o->fd, data, n, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      pair_fail(p, j, errno);
      return;
    }
    w = 0;
  }
  o->bytes_written += (double)w;
  if ((size_t)w == n) return;
  size_t rest = n - (size_t)w;
  o->pending = malloc(rest);
  if (o->pending == NULL) {
    pair_fail(p, j, ENOMEM);
    return;
  }
  memcpy(o->pending, data + w, rest);
  o->pending_len = rest;
  o->pending_off = 0;
  update_events(o);
  update_events(&p->s[other(j)]);
}

/* Side j became writable: writes what waits for it; once empty, the reader resumes and a held FIN goes out. */
static void flush(pair_t *p, int j) {
  side_t *o = &p->s[j];
  if (o->pending_len == 0) return;
  ssize_t w;
  do w = send(o->fd, o->pending + o->pending_off, o->pending_len, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) pair_fail(p, j, errno);
    return;
  }
  o->bytes_written += (double)w;
  o->pending_off += (size_t)w;
  o->pending_len -= (size_t)w;
  if (o->pending_len > 0) return;
  free(o->pending);
  o->pending = NULL;
  o->pending_off = 0;
  update_events(o);
  update_events(&p->s[other(j)]);
  if (o->fin_wanted && !p->done) {
    o->fin_wanted = 0;
    pass_fin(p, j);
  }
}

/* Side i is readable: one read (the buffer is larger than what a license exchange sends; level-triggered epoll
 * reports the rest), relayed at once. */
static void pump(pair_t *p, int i) {
  side_t *s = &p->s[i];
  ssize_t n;
  do n = read(s->fd, p->st->buf, READ_SIZE);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) pair_fail(p, i, errno);
    return;
  }
  if (n == 0) {
    s->read_ended = 1;
    if (p->first_end == 0) p->first_end = i + 1;
    update_events(s);
    pass_fin(p, other(i));
    return;
  }
  s->bytes_read += (double)n;
  write_to(p, other(i), p->st->buf, (size_t)n);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  side_t *s = h->data;
  pair_t *p = s->pair;
  int i = s == &p->s[0] ? 0 : 1;
  if (p->done) return;
  if (status < 0) {
    /* libuv reports EPOLLERR as UV_EBADF: the socket's own error (ECONNRESET...) says what happened. */
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e == 0) e = -status;
    pair_fail(p, i, e);
    return;
  }
  if (events & UV_WRITABLE) flush(p, i);
  if (p->done) return;
  if ((events & UV_READABLE) && !s->read_ended && p->s[other(i)].pending_len == 0) pump(p, i);
}

/* Reads while the other side takes everything and this side has not ended; writes while something waits. */
static void update_events(side_t *s) {
  if (s->closed) return;
  pair_t *p = s->pair;
  side_t *o = s == &p->s[0] ? &p->s[1] : &p->s[0];
  int want = 0;
  if (!s->read_ended && o->pending_len == 0) want |= UV_READABLE;
  if (s->pending_len > 0) want |= UV_WRITABLE;
  if (want == s->events) return;
  s->events = want;
  if (want == 0) uv_poll_stop(&s->poll);
  else uv_poll_start(&s->poll, want, on_poll);
}

static void on_handle_closed(uv_handle_t *h) {
  side_t *s = h->data;
  pair_t *p = s->pair;
  if (--p->open_handles == 0) free(p);
}

static void call_js(env_state_t *st, uint32_t id) {
  napi_env env = st->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg;
  /* The receiver must be an object (napi_make_callback converts it): the async resource serves. */
  if (napi_get_reference_value(env, st->callback, &cb) == napi_ok && napi_get_reference_value(env, st->resource, &recv) == napi_ok &&
      napi_create_uint32(env, id, &arg) == napi_ok) {
    napi_status r = napi_make_callback(env, st->async, recv, cb, 1, &arg, NULL);
    if (r == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* Closes both sockets (each with RST if SO_LINGER 0 was set) and frees the slot; `report`: tell JavaScript. */
static void pair_finish(pair_t *p, int report) {
  if (p->done) return;
  p->done = 1;
  env_state_t *st = p->st;
  for (int i = 0; i < 2; i++) {
    side_t *s = &p->s[i];
    s->closed = 1;
    free(s->pending);
    s->pending = NULL;
    s->pending_len = 0;
    /* uv_close removes the descriptor from epoll now (before it is closed); the memory waits for the callback. */
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    close(s->fd);
  }
  st->slots[p->id] = NULL;
  st->free_ids[st->nfree++] = p->id;
  st->live--;
  if (report) {
    write_stats(p);
    call_js(st, p->id);
  }
}

/* ---- JavaScript API ---- */

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static env_state_t *state_of(napi_env env) {
  void *d = NULL;
  napi_get_instance_data(env, &d);
  return d;
}

/* init(callback(id), stats: Float64Array(8)) */
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  env_state_t *st = state_of(env);
  if (argc < 2 || st->callback != NULL) return throw_error(env, "init(callback, stats) once");
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &off) != napi_ok || type != napi_float64_array ||
      length < ST_SLOTS)
    return throw_error(env, "stats: a Float64Array of 10");
  st->stats = data;
  napi_create_reference(env, argv[1], 1, &st->stats_ref);
  napi_create_reference(env, argv[0], 1, &st->callback);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &st->resource);
  napi_create_string_utf8(env, "licproxy.relay", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &st->async);
  return NULL;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* adopt(clientFd, serverFd) -> id: duplicates both descriptors and relays between them from now on. */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  env_state_t *st = state_of(env);
  int32_t fds[2];
  if (st->callback == NULL) return throw_error(env, "init() first");
  if (argc < 2 || !get_int(env, argv[0], &fds[0]) || !get_int(env, argv[1], &fds[1]) || fds[0] < 0 || fds[1] < 0)
    return throw_error(env, "adopt(clientFd, serverFd)");
  if (st->nfree == 0) {
    uint32_t n = st->nslots == 0 ? 1024 : st->nslots * 2;
    pair_t **slots = realloc(st->slots, n * sizeof *slots);
    if (slots == NULL) return throw_error(env, "out of memory");
    st->slots = slots;
    uint32_t *f = realloc(st->free_ids, n * sizeof *f);
    if (f == NULL) return throw_error(env, "out of memory");
    st->free_ids = f;
    /* Lowest ids first out of the free list. */
    for (uint32_t k = n; k > st->nslots; k--) st->free_ids[st->nfree++] = k - 1;
    for (uint32_t k = st->nslots; k < n; k++) st->slots[k] = NULL;
    st->nslots = n;
  }
  pair_t *p = calloc(1, sizeof *p);
  if (p == NULL) return throw_error(env, "out of memory");
  int dups[2] = {-1, -1};
  for (int i = 0; i < 2; i++) {
    dups[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    if (dups[i] < 0) {
      int e = errno;
      if (i == 1) close(dups[0]);
      free(p);
      napi_throw_error(env, "ERR_NATIVE_RELAY", strerror(e));
      return NULL;
    }
  }
  p->st = st;
  p->err_side = -1;
  for (int i = 0; i < 2; i++) {
    side_t *s = &p->s[i];
    s->pair = p;
    s->fd = dups[i];
    s->poll.data = s;
    /* The descriptions are non-blocking already (libuv's sockets): uv_poll_init_socket sets it again, harmless. */
    uv_poll_init_socket(st->loop, &s->poll, s->fd);
  }
  p->open_handles = 2;
  p->id = st->free_ids[--st->nfree];
  st->slots[p->id] = p;
  st->live++;
  update_events(&p->s[0]);
  update_events(&p->s[1]);
  napi_value out;
  napi_create_uint32(env, p->id, &out);
  return out;
}

static pair_t *pair_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  env_state_t *st = state_of(env);
  uint32_t id;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &id) != napi_ok || id >= st->nslots || st->slots[id] == NULL) {
    napi_throw_error(env, NULL, "no such relay");
    return NULL;
  }
  return st->slots[id];
}

/* stats(id): writes the counters into the shared array. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  pair_t *p = pair_arg(env, info, 1, argv);
  if (p != NULL) write_stats(p);
  return NULL;
}

/* close(id, resetClient, resetServer): ends the pair now without a report; the counters are in the array. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  pair_t *p = pair_arg(env, info, 3, argv);
  if (p == NULL) return NULL;
  for (int i = 0; i < 2; i++) {
    bool reset = false;
    napi_get_value_bool(env, argv[1 + i], &reset);
    if (reset) {
      struct linger lg = {1, 0};
      setsockopt(p->s[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
  }
  write_stats(p);
  pair_finish(p, 0);
  return NULL;
}

/* keepAlive(id, seconds): SO_KEEPALIVE on the server side (connection.ts sets it late, see KEEPALIVE_DEFER_MS). */
static napi_value js_keepalive(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  pair_t *p = pair_arg(env, info, 2, argv);
  if (p == NULL) return NULL;
  int32_t secs = 0;
  get_int(env, argv[1], &secs);
  int on = 1;
  setsockopt(p->s[1].fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
#ifdef TCP_KEEPIDLE
  if (secs > 0) setsockopt(p->s[1].fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
#endif
#if defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
  /* As libuv's uv_tcp_keepalive (what the JavaScript path calls): a probe a second, ten probes. */
  int intvl = 1, cnt = 10;
  setsockopt(p->s[1].fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(p->s[1].fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#endif
  return NULL;
}

/* live(): pairs relayed now (tests, stats). */
static napi_value js_live(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_uint32(env, state_of(env)->live, &out);
  return out;
}

static void cleanup(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  env_state_t *st = data;
  /* The environment is going away (process exit or worker end): its loop closes the handles; keep it simple. */
  for (uint32_t k = 0; k < st->nslots; k++)
    if (st->slots[k] != NULL) {
      pair_t *p = st->slots[k];
      for (int i = 0; i < 2; i++) close(p->s[i].fd);
    }
  free(st->slots);
  free(st->free_ids);
  free(st->buf);
  free(st);
}

NAPI_MODULE_INIT() {
  env_state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return NULL;
  st->env = env;
  st->buf = malloc(READ_SIZE);
  if (st->buf == NULL || napi_get_uv_event_loop(env, &st->loop) != napi_ok) {
    free(st->buf);
    free(st);
    return NULL;
  }
  napi_set_instance_data(env, st, cleanup, NULL);
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"keepAlive", NULL, js_keepalive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"live", NULL, js_live, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
