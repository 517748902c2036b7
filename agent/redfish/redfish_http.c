/* libcurl's multi interface on the agent's libuv loop, for the Redfish
 * collector. One CURLM per agent (the collector's shared state): libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> a uv_poll_t
 * per socket) and when to call it back (CURLMOPT_TIMERFUNCTION -> one
 * uv_timer_t); readiness and timeouts go back to it through
 * rf__curl.multi_socket_action(). Connections stay in the multi handle's
 * cache between scrapes (HTTP keep-alive), so a BMC's TLS handshake is
 * paid once, not every interval. Nothing here blocks: name resolution is
 * libcurl's threaded resolver.
 *
 * The handles do not hold the loop (uv_unref): the agent's own timers
 * keep it running, and its shutdown is not held up by idle connections. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rackpulse/log.h"
#include "redfish_internal.h"

struct rf_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct rf_http *h;
  struct rf_sock *next;
};

static void on_handle_closed(uv_handle_t *hd) {
  struct rf_http *h = hd->data;
  h->handles--;
  if (hd->type == UV_POLL)
    free(hd);
}

static void sock_forget(struct rf_http *h, struct rf_sock *s) {
  for (struct rf_sock **p = &h->socks; *p != NULL; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void check_done(struct rf_http *h) {
  CURLMsg *m;
  int left;
  while ((m = rf__curl.multi_info_read(h->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    CURLcode res = m->data.result;
    struct rf_req *q = NULL;
    rf__curl.easy_getinfo(e, CURLINFO_PRIVATE, (char **)&q);
    rf__curl.multi_remove_handle(h->multi, e);
    if (q == NULL) {
      rf__curl.easy_cleanup(e);
      continue;
    }
    q->result = res;
    rf__curl.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &q->status);
    struct rf_dev *d = q->d;
    for (struct rf_req **p = &d->inflight; *p != NULL; p = &(*p)->next)
      if (*p == q) {
        *p = q->next;
        break;
      }
    q->cb(q);
    rf__curl.easy_cleanup(e);
    rf__curl.slist_free_all(q->headers);
    if (q->post != NULL) {
      explicit_bzero(q->post, strlen(q->post));
      free(q->post);
    }
    explicit_bzero(q->token, sizeof(q->token));
    free(q->body);
    free(q);
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct rf_sock *s = (struct rf_sock *)p;
  struct rf_http *h = s->h;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running;
  rf__curl.multi_socket_action(h->multi, s->fd, flags, &running);
  check_done(h);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  struct rf_http *h = userp;
  struct rf_sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      rf__curl.multi_assign(h->multi, fd, NULL);
      sock_forget(h, s);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = h;
    s->fd = fd;
    s->h = h;
    s->next = h->socks;
    h->socks = s;
    h->handles++;
    uv_unref((uv_handle_t *)&s->poll);
    rf__curl.multi_assign(h->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static void on_timer(uv_timer_t *t) {
  struct rf_http *h = t->data;
  int running;
  rf__curl.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  struct rf_http *h = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

struct rf_http *rf__http(struct rp_agent *a) {
  void **slot = rp_collector_state(a, &rp_collector_redfish);
  if (slot == NULL)
    return NULL;
  if (*slot != NULL)
    return *slot;
  struct rf_http *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return NULL;
  if (rf__curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    goto fail_global;
  h->loop = a->loop;
  h->multi = rf__curl.multi_init();
  if (h->multi == NULL)
    goto fail_multi;
  if (uv_timer_init(a->loop, &h->timer) != 0)
    goto fail_timer;
  h->timer.data = h;
  h->handles = 1;
  uv_unref((uv_handle_t *)&h->timer);
  rf__curl.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  rf__curl.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  rf__curl.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  rf__curl.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  /* Keep every device's connection between scrapes; at most two to one
   * BMC at once (small embedded web servers). */
  rf__curl.multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 2048L);
  rf__curl.multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 2L);
  *slot = h;
  return h;

fail_timer:
  rf__curl.multi_cleanup(h->multi);
fail_multi:
  rf__curl.global_cleanup();
fail_global:
  free(h);
  return NULL;
}

void rf__http_free(void *state) {
  struct rf_http *h = state;
  if (h == NULL)
    return;
  /* Stop watching before libcurl closes the sockets, and let it close
   * them without calling back into handles that are going away. */
  while (h->socks != NULL)
    sock_forget(h, h->socks);
  rf__curl.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, NULL);
  rf__curl.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL);
  rf__curl.multi_cleanup(h->multi);
  uv_close((uv_handle_t *)&h->timer, on_handle_closed);
  while (h->handles > 0)
    uv_run(h->loop, UV_RUN_NOWAIT);
  rf__curl.global_cleanup();
  free(h);
}

/* ------------------------------------------------------------ a request */

static void sse_events(struct rf_req *q) {
  for (;;) {
    char *end = NULL;
    for (size_t i = q->sse_used; i + 1 < q->len; i++)
      if (q->body[i] == '\n' && q->body[i + 1] == '\n') {
        end = q->body + i;
        break;
      }
    if (end == NULL) {
      q->sse_used = q->len > 0 ? q->len - 1 : 0;
      return;
    }
    /* The event's "data:" lines, joined, in place. */
    size_t out = 0;
    for (char *line = q->body; line < end;) {
      char *nl = memchr(line, '\n', (size_t)(end - line));
      size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
      if (n >= 5 && memcmp(line, "data:", 5) == 0) {
        size_t skip = n > 5 && line[5] == ' ' ? 6 : 5;
        memmove(q->body + out, line + skip, n - skip);
        out += n - skip;
      }
      line += n + 1;
    }
    size_t consumed = (size_t)(end - q->body) + 2;
    if (out > 0) {
      q->body[out] = '\0';
      q->on_event(q, q->body, out);
    }
    memmove(q->body, q->body + consumed, q->len - consumed);
    q->len -= consumed;
    q->sse_used = 0;
  }
}

static size_t on_body(char *p, size_t size, size_t n, void *userp) {
  struct rf_req *q = userp;
  size_t len = size * n;
  if (q->len + len + 1 > RF_BODY_MAX) {
    q->too_big = true;
    return 0;
  }
  if (q->len + len + 1 > q->cap) {
    size_t cap = q->cap ? q->cap : 8192;
    while (cap < q->len + len + 1)
      cap *= 2;
    char *b = realloc(q->body, cap);
    if (b == NULL)
      return 0;
    q->body = b;
    q->cap = cap;
  }
  memcpy(q->body + q->len, p, len);
  q->len += len;
  q->body[q->len] = '\0';
  if (q->on_event != NULL)
    sse_events(q);
  return len;
}

/* Copies a header's value (trimmed) when `line` is that header. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return false;
  const char *v = line + nl + 1;
  const char *e = line + len;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
    e--;
  size_t n = (size_t)(e - v);
  if (n >= cap)
    n = 0; /* too long to be what we expect: ignore it */
  memcpy(out, v, n);
  out[n] = '\0';
  return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *userp) {
  struct rf_req *q = userp;
  size_t len = size * n;
  if (!header_value(p, len, "ETag", q->etag, sizeof(q->etag)) &&
      !header_value(p, len, "X-Auth-Token", q->token, sizeof(q->token)))
    header_value(p, len, "Location", q->location, sizeof(q->location));
  return len;
}

static int add_header(struct rf_req *q, const char *fmt, const char *v) {
  char buf[256];
  snprintf(buf, sizeof(buf), fmt, v);
  struct curl_slist *l = rf__curl.slist_append(q->headers, buf);
  explicit_bzero(buf, sizeof(buf));
  if (l == NULL)
    return -ENOMEM;
  q->headers = l;
  return 0;
}

static void set_tls(struct rf_dev *d, CURL *e) {
  if (d->cfg.insecure) {
    rf__curl.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    rf__curl.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (d->cfg.ca_file[0] != '\0') {
    rf__curl.easy_setopt(e, CURLOPT_CAINFO, d->cfg.ca_file);
  }
}

struct rf_req *rf__request(struct rf_dev *d, const char *path, const char *post, bool del,
                           const char *etag, rf_req_cb cb, int slot) {
  struct rf_req *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return NULL;
  q->d = d;
  q->h = d->h;
  q->cb = cb;
  q->slot = slot;
  q->easy = rf__curl.easy_init();
  if (q->easy == NULL)
    goto fail;
  char url[sizeof(d->base) + RF_URI_MAX + 64];
  snprintf(url, sizeof(url), "%s%s", d->base, path);
  CURL *e = q->easy;
  if (rf__curl.easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
    goto fail;
  rf__curl.easy_setopt(e, CURLOPT_PRIVATE, q);
  rf__curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
  rf__curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  rf__curl.easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  rf__curl.easy_setopt(e, CURLOPT_ERRORBUFFER, q->curl_err);
  rf__curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  rf__curl.easy_setopt(e, CURLOPT_WRITEDATA, q);
  rf__curl.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  rf__curl.easy_setopt(e, CURLOPT_HEADERDATA, q);
  /* A little past the device's deadline, which names the failure first;
   * the SSE stream has none (its freshness is judged by its events). */
  rf__curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, d->stream_next ? 0L : (long)d->cfg.timeout_ms + 1000);
  rf__curl.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg.timeout_ms);
  set_tls(d, e);
  if (add_header(q, "Accept: %s", d->stream_next ? "text/event-stream" : "application/json") != 0 ||
      add_header(q, "OData-Version: %s", "4.0") != 0)
    goto fail;
  if (etag != NULL && etag[0] != '\0' && add_header(q, "If-None-Match: %s", etag) != 0)
    goto fail;
  if (strcmp(d->cfg.auth, "basic") == 0) {
    rf__curl.easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    rf__curl.easy_setopt(e, CURLOPT_USERNAME, d->cfg.user);
    rf__curl.easy_setopt(e, CURLOPT_PASSWORD, d->password);
  } else if (d->token[0] != '\0' && post == NULL &&
             add_header(q, "X-Auth-Token: %s", d->token) != 0) {
    goto fail;
  }
  if (post != NULL) {
    q->post = strdup(post);
    if (q->post == NULL || add_header(q, "Content-Type: %s", "application/json") != 0)
      goto fail;
    rf__curl.easy_setopt(e, CURLOPT_POSTFIELDS, q->post);
    rf__curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(q->post));
  } else if (del) {
    rf__curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
  }
  rf__curl.easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
  if (rf__curl.multi_add_handle(d->h->multi, e) != CURLM_OK)
    goto fail;
  q->next = d->inflight;
  d->inflight = q;
  return q;

fail:
  if (q->easy != NULL)
    rf__curl.easy_cleanup(q->easy);
  rf__curl.slist_free_all(q->headers);
  if (q->post != NULL) {
    explicit_bzero(q->post, strlen(q->post));
    free(q->post);
  }
  free(q);
  return NULL;
}

void rf__cancel_all(struct rf_dev *d) {
  while (d->inflight != NULL) {
    struct rf_req *q = d->inflight;
    d->inflight = q->next;
    rf__curl.multi_remove_handle(d->h->multi, q->easy);
    rf__curl.easy_cleanup(q->easy);
    rf__curl.slist_free_all(q->headers);
    if (q->post != NULL) {
      explicit_bzero(q->post, strlen(q->post));
      free(q->post);
    }
    explicit_bzero(q->token, sizeof(q->token));
    free(q->body);
    free(q);
  }
  d->sse = NULL;
}

json_t *rf__parse(struct rf_req *q, char *why, size_t len) {
  json_error_t je;
  if (q->too_big) {
    snprintf(why, len, "answer larger than %u bytes", RF_BODY_MAX);
    return NULL;
  }
  json_t *j = json_loadb(q->body ? q->body : "", q->len, 0, &je);
  if (j == NULL) {
    snprintf(why, len, "malformed JSON (%s at line %d column %d)", je.text, je.line, je.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    snprintf(why, len, "the answer is not a JSON object");
    return NULL;
  }
  return j;
}

const char *rf__req_path(const struct rf_req *q) {
  const char *url = NULL;
  rf__curl.easy_getinfo(q->easy, CURLINFO_EFFECTIVE_URL, &url);
  if (url == NULL)
    return "?";
  const char *p = strstr(url, "://");
  p = p ? strchr(p + 3, '/') : NULL;
  return p ? p : url;
}

void rf__fail(struct rf_dev *d, const char *fmt, ...) {
  if (d->failed)
    return;
  d->failed = true;
  int n = snprintf(d->error, sizeof(d->error), "%s: %s: ", d->cfg.name, d->base);
  if (n < 0 || (size_t)n >= sizeof(d->error))
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->error + n, sizeof(d->error) - (size_t)n, fmt, ap);
  va_end(ap);
}
