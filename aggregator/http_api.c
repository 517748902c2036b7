/* The HTTP API (libmicrohttpd, JSON with jansson):
 *
 *   GET /v1/racks                     racks with freshness
 *   GET /v1/racks/{rack}              latest values, devices, freshness
 *   GET /v1/racks/{rack}/gate?kw=N    the deploy-gate decision
 *   GET /metrics                      Prometheus text exposition
 *   GET /healthz                      liveness
 *
 * Requests are served by a fixed pool of threads with a bounded number of
 * connections and a per-connection timeout, so slow clients cannot pile up;
 * handlers only open LMDB read transactions, which never block ingest.
 * Errors are JSON: {"error": "what is wrong"} with a 4xx/5xx status. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "rackpulse/log.h"

struct rp_http {
  struct MHD_Daemon *daemon;
  struct rp_aggregator *a;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(resp, "Content-Type", type);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  enum MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, json_t *j) {
  char *body = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
  json_decref(j);
  if (body == NULL)
    return MHD_NO;
  return reply(conn, status, "application/json", body, strlen(body));
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status,
                                   const char *msg) {
  return reply_json(conn, status, json_pack("{s:s}", "error", msg));
}

/* Rack ids: 1..64 of [A-Za-z0-9._-]. */
static bool valid_rack_id(const char *s, size_t len) {
  if (len == 0 || len > RP_ID_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

static void add_latest(void *ctx, const char *key, const struct store_latest *l) {
  json_t *series = ctx;
  json_t *o = json_pack("{s:s, s:I}", "unit", l->unit, "ts_ms", (json_int_t)l->ts_ms);
  json_object_set_new(o, "value", l->status == 0 && isfinite(l->value) ? json_real(l->value)
                                                                       : json_null());
  static const char *const names[] = {"ok", "absent", "out_of_range", "error", "stale"};
  json_object_set_new(o, "status",
                      json_string(l->status >= 0 && l->status <= 4 ? names[l->status] : "?"));
  if (l->detail[0] != '\0')
    json_object_set_new(o, "detail", json_string(l->detail));
  json_object_set_new(series, key, o);
}

/* "series key|window" -> stats[series key][window] */
static void add_stats(void *ctx, const char *key, const struct store_stats *st) {
  char series[512];
  snprintf(series, sizeof(series), "%s", key);
  char *bar = strrchr(series, '|');
  if (bar == NULL)
    return;
  *bar = '\0';
  json_t *by_window = json_object_get(ctx, series);
  if (by_window == NULL) {
    by_window = json_object();
    json_object_set_new(ctx, series, by_window);
  }
  json_t *o = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "count",
                        (json_int_t)st->count, "min", st->min, "max", st->max, "mean", st->mean,
                        "stddev", st->stddev, "p50", st->p50, "p95", st->p95, "p99", st->p99,
                        "ts_ms", (json_int_t)st->ts_ms);
  json_object_set_new(o, "slope_per_min",
                      st->has_slope && isfinite(st->slope_per_min) ? json_real(st->slope_per_min)
                                                                  : json_null());
  json_object_set_new(by_window, bar + 1, o);
}

static void add_device(void *ctx, const char *device, const struct store_device *d) {
  json_object_set_new(
      ctx, device,
      json_pack("{s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "kind", d->kind, "up", (int)d->up,
                "last_error", d->last_error, "scrape_ms", (json_int_t)d->scrape_ms, "scrapes",
                (json_int_t)d->scrapes, "failures", (json_int_t)d->failures, "last_ok_ms",
                (json_int_t)d->last_ok_ms, "reported_ms", (json_int_t)d->reported_ms));
}

static enum MHD_Result get_rack(struct rp_http *h, struct MHD_Connection *conn,
                                const char *rack) {
  struct store_read *r;
  if (store_read_begin(h->a->store, &r) != 0)
    return reply_error(conn, 503, "store unavailable");
  struct store_rack rk;
  if (store_read_rack(r, rack, &rk) != 0) {
    store_read_end(r);
    return reply_error(conn, 404, "unknown rack: no frame from it has been received");
  }
  json_t *series = json_object(), *devices = json_object(), *stats = json_object();
  store_read_each_latest(r, rack, add_latest, series);
  store_read_each_stats(r, rack, add_stats, stats);
  store_read_each_device(r, rack, add_device, devices);
  store_read_end(r);
  int64_t now = rp_now_ms();
  return reply_json(conn, 200,
                    json_pack("{s:s, s:s, s:I, s:I, s:f, s:o, s:o, s:o}", "rack", rack, "agent",
                              rk.agent, "last_seq", (json_int_t)rk.last_seq, "last_frame_ms",
                              (json_int_t)rk.last_frame_ms, "age_s",
                              (double)(now - rk.last_frame_ms) / 1000.0, "series", series,
                              "stats", stats, "devices", devices));
}

static void add_rack(void *ctx, const char *rack, const struct store_rack *rk) {
  json_array_append_new(ctx, json_pack("{s:s, s:s, s:I, s:f}", "rack", rack, "agent", rk->agent,
                                       "last_frame_ms", (json_int_t)rk->last_frame_ms, "age_s",
                                       (double)(rp_now_ms() - rk->last_frame_ms) / 1000.0));
}

static enum MHD_Result list_racks(struct rp_http *h, struct MHD_Connection *conn) {
  struct store_read *r;
  if (store_read_begin(h->a->store, &r) != 0)
    return reply_error(conn, 503, "store unavailable");
  json_t *racks = json_array();
  store_read_each_rack(r, add_rack, racks);
  store_read_end(r);
  return reply_json(conn, 200, json_pack("{s:o}", "racks", racks));
}

/* Parses a non-negative, finite kW figure. */
static int parse_kw(const char *s, double *kw) {
  if (s == NULL || *s == '\0')
    return -EINVAL;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end != '\0' || errno != 0 || !isfinite(v) || v < 0 || v > 100000)
    return -EINVAL;
  *kw = v;
  return 0;
}

static enum MHD_Result get_gate(struct rp_http *h, struct MHD_Connection *conn,
                                const char *rack) {
  const char *kw_text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "kw");
  double kw;
  if (parse_kw(kw_text, &kw) != 0)
    return reply_error(conn, 400, "kw: expected a number of kilowatts, 0..100000");
  bool found;
  json_t *d = rp_gate_evaluate(h->a->store, &h->a->cfg.policy, rack, kw, rp_now_ms(), &found);
  if (d == NULL)
    return found ? reply_error(conn, 503, "store unavailable")
                 : reply_error(conn, 404, "unknown rack: no frame from it has been received");
  return reply_json(conn, 200, d);
}

static enum MHD_Result get_metrics(struct rp_http *h, struct MHD_Connection *conn) {
  size_t len;
  char *text = rp_metrics_render(h->a, &len);
  if (text == NULL)
    return reply_error(conn, 503, "metrics unavailable");
  return reply(conn, 200, "text/plain; version=0.0.4", text, len);
}

static enum MHD_Result route(struct rp_http *h, struct MHD_Connection *conn, const char *url) {
  static const char prefix[] = "/v1/racks/";
  if (strcmp(url, "/healthz") == 0)
    return reply_json(conn, 200, json_pack("{s:s}", "status", "ok"));
  if (strcmp(url, "/metrics") == 0)
    return get_metrics(h, conn);
  if (strcmp(url, "/v1/racks") == 0 || strcmp(url, "/v1/racks/") == 0)
    return list_racks(h, conn);
  if (strncmp(url, prefix, sizeof(prefix) - 1) == 0) {
    const char *rack = url + sizeof(prefix) - 1;
    const char *slash = strchr(rack, '/');
    size_t len = slash ? (size_t)(slash - rack) : strlen(rack);
    if (!valid_rack_id(rack, len))
      return reply_error(conn, 400, "rack id: 1..64 characters of A-Z a-z 0-9 . _ -");
    char id[RP_ID_MAX + 1];
    memcpy(id, rack, len);
    id[len] = '\0';
    if (slash == NULL)
      return get_rack(h, conn, id);
    if (strcmp(slash, "/gate") == 0)
      return get_gate(h, conn, id);
  }
  return reply_error(conn, 404, "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  (void)upload_data;
  if (*con_cls == NULL) { /* first call: headers only */
    *con_cls = conn;
    return MHD_YES;
  }
  if (*upload_data_size != 0)
    return reply_error(conn, 413, "request bodies are not accepted here");
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return reply_error(conn, 405, "method not allowed");
  return route(cls, conn, url);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  rp_warn("http", "%s", msg);
}

int rp_http_start(struct rp_aggregator *a, struct rp_http **out, char *err, size_t errlen) {
  struct rp_http *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return -ENOMEM;
  h->a = a;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->cfg.http.port)};
  if (inet_pton(AF_INET, a->cfg.http.listen, &addr.sin_addr) != 1) {
    snprintf(err, errlen, "http.listen: '%s' is not an IPv4 address", a->cfg.http.listen);
    free(h);
    return -EINVAL;
  }
  h->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_EPOLL, 0, NULL, NULL,
      on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &addr,
      MHD_OPTION_THREAD_POOL_SIZE,
      (unsigned)a->cfg.http.threads, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)a->cfg.http.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
  if (h->daemon == NULL) {
    snprintf(err, errlen, "http: cannot listen on %s:%lld (in use, or not permitted)",
             a->cfg.http.listen, (long long)a->cfg.http.port);
    free(h);
    return -EADDRINUSE;
  }
  rp_info("http", "serving on http://%s:%lld", a->cfg.http.listen, (long long)a->cfg.http.port);
  *out = h;
  return 0;
}

void rp_http_stop(struct rp_http *h) {
  if (h == NULL)
    return;
  MHD_stop_daemon(h->daemon);
  free(h);
}
