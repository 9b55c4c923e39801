/*
 * A measurement prototype, not part of licproxy (bench/prototype/c-accept/README.md): the design that would close
 * issue 17's short-transaction gap, reduced to what costs CPU, so its cost per connection can be measured against
 * HAProxy before licproxy is restructured around it.
 *
 * The whole connection in C on one edge-triggered epoll set, registered in libuv as a single uv_poll: accept4
 * drains the backlog (up to 64 per event; libuv accepts one per event), JavaScript places each batch with one call
 * (a port per connection written into a shared Int32Array), C connects and relays, and the ends of a loop turn
 * are reported with one call. No TCPWrap, no uv_poll per socket (uv_poll_init_socket alone costs four system
 * calls), no epoll_ctl after a connection's two ADDs (close removes the descriptors from the set).
 *
 * Left out on purpose (the real change needs them, their cost is small or JavaScript's): connect timeouts, retries
 * and redispatch, idle timeouts, counters, the session list, logs, a listener shared with Node, worker processes.
 * One prototype per process (static state).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)
#define ACCEPT_MAX 64
#define EVENTS_MAX 256

typedef struct pair pair_t;
typedef struct side {
  pair_t *pair;
  int fd;
  int readable, read_ended, fin_sent, fin_wanted, connecting;
  char *pending;
  size_t pending_len, pending_off;
} side_t;

struct pair {
  side_t s[2];
  int done;
  int first_end;
  int err;
  uint32_t key;
  pair_t *next_free;
};

typedef struct {
  napi_env env;
  uv_loop_t *loop;
  uv_poll_t poll;
  int efd, lfd;
  char listener_tag;
  char *buf;
  napi_ref accept_cb, end_cb, arr_ref, resource;
  napi_async_context async;
  int32_t *arr;
  pair_t *dead; /* finished in this batch: freed after it (later events of the batch may name them) */
  uint32_t ends_n;
  uint32_t next_key;
} state_t;

static state_t S;

static void finish(pair_t *p, int err) {
  if (p->done) return;
  p->done = 1;
  p->err = err;
  for (int i = 0; i < 2; i++) {
    free(p->s[i].pending);
    p->s[i].pending = NULL;
    close(p->s[i].fd);
  }
  p->next_free = S.dead;
  S.dead = p;
  S.ends_n++;
}

static void fail(pair_t *p, int i, int err) {
  if (err == ECONNRESET) {
    struct linger lg = {1, 0};
    setsockopt(p->s[1 - i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  finish(p, err);
}

static void pass_fin(pair_t *p, int j) {
  side_t *o = &p->s[j];
  if (o->pending_len > 0) {
    o->fin_wanted = 1;
    return;
  }
  if (o->read_ended && p->s[1 - j].read_ended) {
    finish(p, 0);
    return;
  }
  if (!o->fin_sent) {
    o->fin_sent = 1;
    if (shutdown(o->fd, SHUT_WR) != 0 && errno != ENOTCONN) fail(p, j, errno);
  }
}

static int write_to(pair_t *p, int j, const char *data, size_t n) {
  side_t *o = &p->s[j];
  ssize_t w = send(o->fd, data, n, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) {
      fail(p, j, errno);
      return 0;
    }
    w = 0;
  }
  if ((size_t)w == n) return 1;
  o->pending_len = n - (size_t)w;
  o->pending = malloc(o->pending_len);
  memcpy(o->pending, data + w, o->pending_len);
  o->pending_off = 0;
  return 0;
}

/* Reads side i while it has data and the other side takes everything. A short read means drained: with EPOLLET
 * any later arrival signals again, so no read is spent on EAGAIN. */
static void pump(pair_t *p, int i) {
  side_t *s = &p->s[i];
  while (!p->done && s->readable && !s->read_ended && p->s[1 - i].pending_len == 0 && !p->s[1].connecting) {
    ssize_t n = read(s->fd, S.buf, READ_SIZE);
    if (n < 0) {
      if (errno == EAGAIN) s->readable = 0;
      else fail(p, i, errno);
      return;
    }
    if (n == 0) {
      s->read_ended = 1;
      if (p->first_end == 0) p->first_end = i + 1;
      pass_fin(p, 1 - i);
      return;
    }
    if (!write_to(p, 1 - i, S.buf, (size_t)n)) return;
    if (n < READ_SIZE) s->readable = 0;
  }
}

static void flush(pair_t *p, int j) {
  side_t *o = &p->s[j];
  if (o->pending_len == 0) return;
  ssize_t w = send(o->fd, o->pending + o->pending_off, o->pending_len, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) fail(p, j, errno);
    return;
  }
  o->pending_off += (size_t)w;
  o->pending_len -= (size_t)w;
  if (o->pending_len > 0) return;
  free(o->pending);
  o->pending = NULL;
  if (o->fin_wanted) {
    o->fin_wanted = 0;
    pass_fin(p, j);
  }
  pump(p, 1 - j);
}

static void on_side(side_t *s, uint32_t ev) {
  pair_t *p = s->pair;
  if (p->done) return;
  int i = s == &p->s[0] ? 0 : 1;
  if (ev & EPOLLERR) {
    int e = 0;
    socklen_t len = sizeof e;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len);
    fail(p, i, e ? e : EIO);
    return;
  }
  if ((ev & EPOLLOUT) && s->connecting) {
    s->connecting = 0; /* EPOLLERR would have come with a failed connect */
    pump(p, 0);        /* the client may have sent already */
    if (p->done) return;
  } else if (ev & EPOLLOUT) {
    flush(p, i);
    if (p->done) return;
  }
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
    s->readable = 1;
    pump(p, i);
  }
}

static void start_pair(int cfd, int port) {
  int sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sfd < 0) {
    close(cfd);
    return;
  }
  int one = 1;
  setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int r = connect(sfd, (struct sockaddr *)&a, sizeof a);
  if (r != 0 && errno != EINPROGRESS) {
    close(sfd);
    close(cfd);
    return;
  }
  pair_t *p = calloc(1, sizeof *p);
  p->key = S.next_key++;
  p->s[0].pair = p->s[1].pair = p;
  p->s[0].fd = cfd;
  p->s[1].fd = sfd;
  p->s[1].connecting = 1;
  for (int i = 0; i < 2; i++) {
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &p->s[i]};
    epoll_ctl(S.efd, EPOLL_CTL_ADD, p->s[i].fd, &e);
  }
}

static void call_js(napi_ref fn, int32_t n) {
  napi_env env = S.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, arg;
  napi_get_reference_value(env, fn, &cb);
  napi_get_reference_value(env, S.resource, &recv);
  napi_create_int32(env, n, &arg);
  napi_make_callback(env, S.async, recv, cb, 1, &arg, NULL);
  napi_close_handle_scope(env, scope);
}

static void accept_batch(void) {
  int fds[ACCEPT_MAX];
  int n = 0;
  while (n < ACCEPT_MAX) {
    int fd = accept4(S.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    fds[n++] = fd;
  }
  if (n == 0) return;
  call_js(S.accept_cb, n);
  for (int k = 0; k < n; k++) {
    if (S.arr[k] <= 0) close(fds[k]);
    else start_pair(fds[k], S.arr[k]);
  }
}

static void on_epoll(uv_poll_t *h, int status, int events) {
  (void)h, (void)events;
  if (status < 0) return;
  struct epoll_event ev[EVENTS_MAX];
  int n = epoll_wait(S.efd, ev, EVENTS_MAX, 0);
  for (int k = 0; k < n; k++) {
    if (ev[k].data.ptr == &S.listener_tag) accept_batch();
    else on_side(ev[k].data.ptr, ev[k].events);
  }
  uint32_t ended = S.ends_n;
  while (S.dead) {
    pair_t *p = S.dead;
    S.dead = p->next_free;
    free(p);
  }
  S.ends_n = 0;
  if (ended > 0) call_js(S.end_cb, (int32_t)ended); /* one call for the batch's ends */
}

/* serve(port, accept(n), ended(n), arr: Int32Array(64)) */
static napi_value js_serve(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t port;
  napi_get_value_int32(env, argv[0], &port);
  napi_typedarray_type type;
  size_t length, off;
  void *data;
  napi_value ab;
  napi_get_typedarray_info(env, argv[3], &type, &length, &data, &ab, &off);
  S.env = env;
  S.arr = data;
  napi_create_reference(env, argv[3], 1, &S.arr_ref);
  napi_create_reference(env, argv[1], 1, &S.accept_cb);
  napi_create_reference(env, argv[2], 1, &S.end_cb);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &S.resource);
  napi_create_string_utf8(env, "proto", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &S.async);
  napi_get_uv_event_loop(env, &S.loop);
  S.buf = malloc(READ_SIZE);
  S.efd = epoll_create1(EPOLL_CLOEXEC);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  S.lfd = fd;
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = &S.listener_tag}; /* level-triggered: a batch leaves the rest */
  epoll_ctl(S.efd, EPOLL_CTL_ADD, fd, &e);
  uv_poll_init(S.loop, &S.poll, S.efd);
  uv_poll_start(&S.poll, UV_READABLE, on_epoll);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {{"serve", NULL, js_serve, NULL, NULL, NULL, napi_enumerable, NULL}};
  napi_define_properties(env, exports, 1, props);
  return exports;
}
