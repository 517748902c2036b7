/* The HTTP API (libmicrohttpd, JSON with jansson):
 *
 *   GET    /v1/racks                          racks with freshness
 *   GET    /v1/racks/{rack}                   latest values, window stats, devices
 *   GET    /v1/racks/{rack}/gate?kw=N[&duration=30m][&class=gold][&owner=O]
 *                                             the deploy-gate decision (audited; an
 *                                             override in force turns a deny into an
 *                                             allow and says so, override.h);
 *                                             class: only one at least as strict as
 *                                             the rack's own (403), any with [override]
 *   GET    /v1/placement?kw=N[&count=K][&pool=P][&class=C]   ranked racks
 *   GET    /v1/floor[?rack=R]                 every rack's summary in one answer
 *                                             (the last evaluation pass, floor.c;
 *                                             with rack=R that rack with its checks):
 *                                             {"racks": [{rack, row, loop, decision,
 *                                             power_headroom_kw, thermal_headroom_kw,
 *                                             supply_temp, delta_t, flags, failing:
 *                                             [{check, reason}], missing, age_s, ...}],
 *                                             evaluated_at_ms, now_ms}
 *   GET    /v1/slo                            thermal SLOs per rack and objective (slo.h)
 *   GET    /v1/reservations[?rack=R][&owner=O]
 *   POST   /v1/reservations                   create (body: JSON)          [reserve]
 *   POST   /v1/reservations/{id}/extend       body {"end": ...}            [reserve]
 *   DELETE /v1/reservations/{id}              release                      [reserve]
 *   GET    /v1/audit?[rack=R][&since=ms][&until=ms][&limit=N]
 *   GET    /v1/flags[?rack=R]
 *   POST   /v1/flags                          body {rack, flag, owner, expires, reason} [flag]
 *   DELETE /v1/flags/{rack}/{flag}                                         [flag]
 *   POST   /v1/racks/{rack}/devices/{device}/retire  body {owner[, reason]} [admin]
 *                                             forget a device (audited)
 *   ... and the deploy workflow's endpoints (http_deploy.h): the audit
 *   export and one deploy's story, overrides [override], canaries [reserve].
 *   GET    /, /floor.js, /floor.css           the incident-map page (web.c)
 *   GET    /metrics                           Prometheus text exposition
 *   GET    /healthz                           liveness
 *
 * [role]: a named client (auth.h: "Authorization: Bearer T" with T from
 * http.tokens_file or the shared http.token_file, compared in constant
 * time, or a TLS client certificate) holding the role; 401 without valid
 * credentials, 403 naming the role without it; with no client configured
 * changes are refused. Every request may carry deploy fields (deploy.h:
 * deploy_id, commit, pipeline_url, requester), query arguments of a GET or
 * fields of a POST body; every decision and change is audited with them and
 * the client (http_change.c), and one whose audit entry cannot be kept is
 * answered 503. HTTPS with http.tls_cert and http.tls_key (tls.h); plain
 * HTTP only on a loopback address.
 * Requests are served by a fixed pool of threads with bounded connections
 * (also per client address), a per-connection timeout and a 64 KiB body
 * limit, so slow or greedy clients cannot pile up; handlers only open LMDB
 * read transactions on rack state, which never block ingest (but retiring a
 * device, rare and operator-driven, writes it in one short transaction). Errors are
 * JSON: {"error": "what is wrong"} with a 4xx/5xx status. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "cluster.h"
#include "forward.h"
#include "gate.h"
#include "http_deploy.h"
#include "ledger.h"
#include "override.h"
#include "rackpulse/cfg.h"
#include "rackpulse/clock.h"
#include "rackpulse/hash.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"
#include "reservations.h"
#include "tls.h"

#define MAX_BODY (64 * 1024)

/* Per request: the body as it arrives. */
struct request {
  char *body;
  size_t len;
  bool too_big;
  bool limited; /* over the client's rate: answered 429 */
};

/* Per client address, a token bucket (http.rate_limit, http.rate_burst).
 * A fixed table indexed by a hash of the address: a client that collides
 * with another shares its bucket, which errs on the side of limiting. */
#define RATE_SLOTS 4096

struct rate_slot {
  uint8_t addr[16];
  double tokens;
  uint64_t last_us;
};

struct rp_http {
  struct MHD_Daemon *daemon;
  struct rp_aggregator *a;
  pthread_mutex_t rate_lock;
  struct rate_slot *rate;
  struct rp_tls_files tls; /* HTTPS (tls.h); all NULL for plain HTTP */
};

/* True when the client at `sa` may make one more request now. */
static bool rate_allows(struct rp_http *h, const struct sockaddr *sa) {
  double rate = h->a->cfg.http.rate_limit, burst = h->a->cfg.http.rate_burst;
  if (rate <= 0 || sa == NULL)
    return true;
  uint8_t addr[16] = {0};
  if (sa->sa_family == AF_INET)
    memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  else if (sa->sa_family == AF_INET6)
    memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  uint64_t hash = rp_hash_bytes(addr, sizeof(addr));
  uint64_t now = rp_mono_us();
  pthread_mutex_lock(&h->rate_lock);
  struct rate_slot *s = &h->rate[hash % RATE_SLOTS];
  if (memcmp(s->addr, addr, 16) != 0 || s->last_us == 0) {
    memcpy(s->addr, addr, 16);
    s->tokens = burst;
  } else {
    s->tokens += rate * (double)(now - s->last_us) / 1e6;
    if (s->tokens > burst)
      s->tokens = burst;
  }
  s->last_us = now;
  bool ok = s->tokens >= 1;
  if (ok)
    s->tokens -= 1;
  pthread_mutex_unlock(&h->rate_lock);
  return ok;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(resp, "Content-Type", type);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  if (rp_cluster_self_id() != NULL)
    MHD_add_response_header(resp, "X-Rackpulse-Answered-By", rp_cluster_self_id());
  enum MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, json_t *j) {
  rp_cluster_stamp(j);
  char *body = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
  json_decref(j);
  if (body == NULL)
    return MHD_NO;
  return reply(conn, status, "application/json", body, strlen(body));
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status, const char *msg) {
  return reply_json(conn, status, json_pack("{s:s}", "error", msg));
}

enum MHD_Result rp_http_reply_json(struct MHD_Connection *conn, unsigned status, json_t *j) {
  return reply_json(conn, status, j);
}

enum MHD_Result rp_http_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg) {
  return reply_error(conn, status, msg);
}

bool rp_http_valid_id(const char *s, size_t len) {
  if (len == 0 || len > RP_ID_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}

static void add_latest(void *ctx, const char *key, const struct store_latest *l) {
  json_t *series = ctx;
  json_t *o = json_pack("{s:s, s:I}", "unit", l->unit, "ts_ms", (json_int_t)l->ts_ms);
  json_object_set_new(o, "value",
                      l->status == 0 && isfinite(l->value) ? json_real(l->value) : json_null());
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
  json_t *o =
      json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "count", (json_int_t)st->count,
                "min", st->min, "max", st->max, "mean", st->mean, "stddev", st->stddev, "p50",
                st->p50, "p95", st->p95, "p99", st->p99, "ts_ms", (json_int_t)st->ts_ms);
  json_object_set_new(o, "newest_ms", json_integer(st->newest_ms));
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

/* The identity of the rack's agent: its incarnation and dictionary, and
 * when the last frame's samples were skipped, why. 64-bit ids are 16 hex
 * digits (JSON numbers lose bits past 2^53). */
static json_t *agent_identity(const struct store_agent *ag) {
  char inc[17], dict[17];
  snprintf(inc, sizeof(inc), "%016llx", (unsigned long long)ag->incarnation);
  snprintf(dict, sizeof(dict), "%016llx", (unsigned long long)ag->dicts[0]);
  json_t *o =
      json_pack("{s:s, s:I, s:I, s:I, s:s, s:I, s:I}", "incarnation", inc, "incarnation_since_ms",
                (json_int_t)ag->incarnation_ms, "incarnations", (json_int_t)ag->incarnations,
                "last_seq", (json_int_t)ag->last_seq, "dictionary", dict,
                "unknown_dictionary_frames", (json_int_t)ag->unknown_dict_frames,
                "bad_dictionary_frames", (json_int_t)ag->bad_dict_frames);
  if (ag->last_unknown_dict_ms > ag->last_decoded_ms) {
    char why[160];
    snprintf(why, sizeof(why),
             "samples skipped: dictionary %016llx not received yet (the agent resends its "
             "dictionary every agent.dictionary_every frames)",
             (unsigned long long)ag->last_unknown_dict);
    json_object_set_new(o, "samples_skipped", json_string(why));
  } else {
    json_object_set_new(o, "samples_skipped", json_null());
  }
  return o;
}

static enum MHD_Result get_rack(struct rp_http *h, struct MHD_Connection *conn, const char *rack) {
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
  struct store_agent ag;
  json_t *identity = store_read_agent(r, rk.agent, &ag) == 0 ? agent_identity(&ag) : json_null();
  store_read_end(r);
  int64_t now = rp_now_ms();
  return reply_json(conn, 200,
                    json_pack("{s:s, s:s, s:I, s:I, s:f, s:o, s:o, s:o, s:o}", "rack", rack,
                              "agent", rk.agent, "last_seq", (json_int_t)rk.last_seq,
                              "last_frame_ms", (json_int_t)rk.last_frame_ms, "age_s",
                              (double)(now - rk.last_frame_ms) / 1000.0, "series", series, "stats",
                              stats, "devices", devices, "agent_identity", identity));
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

int rp_http_parse_kw(const char *s, double *kw) {
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

static const char *arg(struct MHD_Connection *conn, const char *name) {
  return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static bool valid_name(const char *s) { return s != NULL && rp_http_valid_id(s, strlen(s)); }

static enum MHD_Result get_gate(struct rp_http *h, struct MHD_Connection *conn, const char *rack) {
  double kw;
  if (rp_http_parse_kw(arg(conn, "kw"), &kw) != 0)
    return reply_error(conn, 400, "kw: expected a number of kilowatts, 0..100000");
  struct rp_gate_request q = {.rack = rack, .kw = kw};
  const char *duration = arg(conn, "duration");
  if (duration != NULL &&
      (rp_parse_duration_ms(duration, &q.duration_ms) != 0 || q.duration_ms > 31536000000LL))
    return reply_error(conn, 400, "duration: expected e.g. 30m, 2h (at most a year)");
  q.class_name = arg(conn, "class");
  q.owner = arg(conn, "owner");
  if ((q.class_name && !valid_name(q.class_name)) || (q.owner && !valid_name(q.owner)))
    return reply_error(conn, 400, "class/owner: 1..64 characters of A-Z a-z 0-9 . _ -");
  /* Gates need no credentials, but ones that are sent must be valid: with
   * the override role they let the caller ask for a class looser than the
   * rack's own. The deploy fields tie the decision to a deploy. */
  struct rp_caller caller = {0};
  unsigned st;
  const char *why;
  if (!rp_http_reader(h->a, conn, &caller, &st, &why))
    return reply_error(conn, st, why);
  q.trusted = rp_auth_has(caller.client, RP_ROLE_OVERRIDE);
  int status;
  char err[256];
  int64_t now = rp_now_ms();
  json_t *d =
      rp_gate_evaluate(h->a->gate, h->a->store, h->a->ledger, &q, now, &status, err, sizeof(err));
  if (d == NULL) {
    rp_caller_clear(&caller);
    return reply_error(conn, (unsigned)status, err);
  }
  rp_override_apply(h->a->overrides, d, rp_caller_deploy_id(&caller), now);
  int rc = rp_audit_record(h->a, &caller, d, now);
  rp_caller_clear(&caller);
  if (rc != 0) { /* a decision that is not audited is not given */
    json_decref(d);
    return reply_error(conn, 503, "the audit log cannot take the decision now; retry");
  }
  return reply_json(conn, 200, d);
}

static enum MHD_Result get_placement(struct rp_http *h, struct MHD_Connection *conn) {
  double kw;
  if (rp_http_parse_kw(arg(conn, "kw"), &kw) != 0)
    return reply_error(conn, 400, "kw: expected a number of kilowatts, 0..100000");
  long count = 3;
  if (arg(conn, "count") != NULL) {
    char *end;
    count = strtol(arg(conn, "count"), &end, 10);
    if (*end != '\0' || count < 1 || count > 1000)
      return reply_error(conn, 400, "count: expected 1..1000");
  }
  const char *pool = arg(conn, "pool"), *cls = arg(conn, "class");
  if ((pool && !valid_name(pool)) || (cls && !valid_name(cls)))
    return reply_error(conn, 400, "pool/class: 1..64 characters of A-Z a-z 0-9 . _ -");
  struct rp_caller caller = {0};
  unsigned st;
  const char *why;
  if (!rp_http_reader(h->a, conn, &caller, &st, &why))
    return reply_error(conn, st, why);
  int64_t now = rp_now_ms();
  json_t *p = rp_placement(h->a, kw, (size_t)count, pool, cls, now);
  if (p == NULL) {
    rp_caller_clear(&caller);
    return reply_error(conn, 503, "out of memory");
  }
  /* Audited with the ranking and each rack's decision id. */
  json_t *e = json_pack("{s:s, s:s, s:O}", "action", "placement", "rack", "*", "placement", p);
  int rc = e ? rp_audit_record(h->a, &caller, e, now) : -ENOMEM;
  if (rc == 0)
    json_object_set(p, "decision_id", json_object_get(e, "decision_id"));
  json_decref(e);
  rp_caller_clear(&caller);
  if (rc != 0) {
    json_decref(p);
    return reply_error(conn, 503, "the audit log cannot take the placement now; retry");
  }
  return reply_json(conn, 200, p);
}

static int64_t arg_ms(struct MHD_Connection *conn, const char *name, int64_t def, bool *ok) {
  const char *v = arg(conn, name);
  if (v == NULL)
    return def;
  char *end;
  long long n = strtoll(v, &end, 10);
  if (*end != '\0' || n < 0)
    *ok = false;
  return n;
}

static enum MHD_Result get_audit(struct rp_http *h, struct MHD_Connection *conn) {
  bool ok = true;
  const char *rack = arg(conn, "rack");
  int64_t since = arg_ms(conn, "since", 0, &ok), until = arg_ms(conn, "until", INT64_MAX, &ok);
  int64_t limit = arg_ms(conn, "limit", 100, &ok);
  if (!ok || limit < 1 || limit > 10000 || (rack && !valid_name(rack)))
    return reply_error(conn, 400, "since/until: Unix ms; limit: 1..10000; rack: a valid rack id");
  json_t *d = rp_ledger_audit_query(h->a->ledger, rack, since, until, (size_t)limit);
  return reply_json(conn, 200, json_pack("{s:o}", "decisions", d));
}

json_t *rp_http_parse_body(const char *body, size_t len, unsigned *status, const char **why) {
  json_error_t e;
  json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &e);
  if (j == NULL || !json_is_object(j)) {
    json_decref(j);
    j = NULL; /* valid JSON but no object ("[]", "1"): was returned after its free */
    *status = 400;
    *why = "body: expected a JSON object";
  }
  return j;
}

/* Changes: the caller must hold the route's role (auth.h); a POST body is
 * a JSON object whose deploy fields (deploy.h) are taken out of it. */
static enum MHD_Result mutate(struct rp_http *h, struct MHD_Connection *conn, const char *method,
                              const char *url, const struct request *rq) {
  unsigned status = 0;
  const char *why = NULL;
  struct rp_caller caller = {0};
  if (!rp_http_authorize(h->a, conn, rp_http_route_role(method, url), &caller, &status, &why))
    return reply_error(conn, status, why);
  if (rq->too_big)
    return reply_error(conn, 413, "request body larger than 64 KiB");
  json_t *body = NULL;
  if (strcmp(method, "POST") == 0) {
    body = rp_http_parse_body(rq->body, rq->len, &status, &why);
    if (body == NULL)
      return reply_error(conn, status, why);
    if (rp_deploy_from_body(&caller, body, &why) != 0) {
      json_decref(body);
      return reply_error(conn, 400, why);
    }
  } else if (!rp_http_deploy_args(conn, &caller, &why)) {
    return reply_error(conn, 400, why);
  }
  enum MHD_Result r = rp_http_change(h->a, conn, method, url, body, &caller);
  json_decref(body);
  rp_caller_clear(&caller);
  return r;
}

/* GET /v1/floor[?rack=R]: the cached summaries, so it costs no gate
 * evaluation; with `rack`, that rack alone with its checks. */
static enum MHD_Result get_floor(struct rp_http *h, struct MHD_Connection *conn) {
  const char *rack = arg(conn, "rack");
  if (rack && !valid_name(rack))
    return reply_error(conn, 400, "rack: a valid rack id");
  json_t *f = rp_floor_json(h->a, rack, rp_now_ms());
  if (f == NULL)
    return reply_error(conn, 503, "floor unavailable");
  if (rack != NULL && json_array_size(json_object_get(f, "racks")) == 0) {
    json_decref(f);
    return reply_error(conn, 404, "unknown rack: not in the policy and no frame from it (yet)");
  }
  return reply_json(conn, 200, f);
}

static enum MHD_Result get_metrics(struct rp_http *h, struct MHD_Connection *conn) {
  size_t len;
  char *text = rp_metrics_render(h->a, &len);
  if (text == NULL)
    return reply_error(conn, 503, "metrics unavailable");
  return reply(conn, 200, "text/plain; version=0.0.4", text, len);
}

/* The page's static files, with a strict Content-Security-Policy. */
static enum MHD_Result reply_asset(struct MHD_Connection *conn, const unsigned char *data,
                                   size_t len, const char *type) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(resp, "Content-Type", type);
  MHD_add_response_header(resp, "Cache-Control", "no-cache");
  MHD_add_response_header(resp, "Content-Security-Policy", rp_web_csp);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  enum MHD_Result r = MHD_queue_response(conn, 200, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result route_get(struct rp_http *h, struct MHD_Connection *conn, const char *url) {
  static const char prefix[] = "/v1/racks/";
  const unsigned char *asset;
  size_t asset_len;
  const char *asset_type;
  if (rp_web_asset(url, &asset, &asset_len, &asset_type))
    return reply_asset(conn, asset, asset_len, asset_type);
  if (strcmp(url, "/healthz") == 0)
    return reply_json(conn, 200, json_pack("{s:s}", "status", "ok"));
  if (strcmp(url, "/metrics") == 0)
    return get_metrics(h, conn);
  if (strcmp(url, "/v1/racks") == 0 || strcmp(url, "/v1/racks/") == 0)
    return list_racks(h, conn);
  if (strcmp(url, "/v1/placement") == 0)
    return get_placement(h, conn);
  if (strcmp(url, "/v1/floor") == 0)
    return get_floor(h, conn);
  if (strcmp(url, "/v1/slo") == 0) /* thermal SLOs, slo.h */
    return h->a->slo ? reply_json(conn, 200, rp_slo_json(h->a->slo, rp_now_ms()))
                     : reply_error(conn, 503, "SLOs unavailable");
  bool handled;
  enum MHD_Result dr = rp_http_deploy_get(h->a, conn, url, &handled);
  if (handled)
    return dr;
  if (strcmp(url, "/v1/audit") == 0)
    return get_audit(h, conn);
  if (strcmp(url, "/v1/reservations") == 0) {
    const char *rack = arg(conn, "rack"), *owner = arg(conn, "owner");
    if ((rack && !valid_name(rack)) || (owner && !valid_name(owner)))
      return reply_error(conn, 400, "rack/owner: valid ids");
    return reply_json(conn, 200, rp_reservation_list(h->a, rack, owner, rp_now_ms()));
  }
  if (strcmp(url, "/v1/flags") == 0) {
    const char *rack = arg(conn, "rack");
    if (rack && !valid_name(rack))
      return reply_error(conn, 400, "rack: a valid rack id");
    return reply_json(conn, 200,
                      json_pack("{s:o}", "flags", rp_ledger_flag_list(h->a->ledger, rack)));
  }
  if (strncmp(url, prefix, sizeof(prefix) - 1) == 0) {
    const char *rack = url + sizeof(prefix) - 1;
    const char *slash = strchr(rack, '/');
    size_t len = slash ? (size_t)(slash - rack) : strlen(rack);
    if (!rp_http_valid_id(rack, len))
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
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  struct rp_http *h = cls;
  struct request *rq = *con_cls;
  if (rq == NULL) { /* first call: headers only */
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
      return MHD_NO;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    rq->limited = !rate_allows(h, ci ? ci->client_addr : NULL);
    *con_cls = rq;
    return MHD_YES;
  }
  if (*upload_data_size != 0) { /* body, in pieces */
    if (!rq->too_big && rq->len + *upload_data_size <= MAX_BODY) {
      char *grown = realloc(rq->body, rq->len + *upload_data_size + 1);
      if (grown == NULL)
        return MHD_NO;
      rq->body = grown;
      memcpy(rq->body + rq->len, upload_data, *upload_data_size);
      rq->len += *upload_data_size;
      rq->body[rq->len] = '\0';
    } else {
      rq->too_big = true;
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (rq->limited) {
    atomic_fetch_add(&h->a->stats.http_limited, 1);
    return reply_error(conn, 429, "too many requests from this address (http.rate_limit)");
  }
  enum MHD_Result routed;
  if (!rq->too_big && rp_forward_route(h->a, conn, method, url, rq->body, rq->len, &routed))
    return routed; /* another member's rack, or a site-wide query (cluster.h) */
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
    if (rq->len != 0 || rq->too_big)
      return reply_error(conn, 413, "GET requests carry no body");
    return route_get(h, conn, url);
  }
  if (strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0)
    return mutate(h, conn, method, url, rq);
  return reply_error(conn, 405, "method not allowed");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  struct request *rq = *con_cls;
  if (rq != NULL) {
    free(rq->body);
    free(rq);
    *con_cls = NULL;
  }
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

/* HTTPS when http.tls_cert and http.tls_key are set (client certificates
 * asked for with http.tls_client_ca); plain HTTP only on a loopback
 * address. Fills the daemon's TLS options and flags. */
static int tls_setup(struct rp_http *h, const struct sockaddr_in *addr, struct MHD_OptionItem *opts,
                     unsigned *flags, char *err, size_t errlen) {
  const struct rp_aggregator_config *cfg = &h->a->cfg;
  bool want = cfg->http.tls_cert[0] != '\0' || cfg->http.tls_key[0] != '\0';
  if (!want) {
    if ((ntohl(addr->sin_addr.s_addr) >> 24) != 127) {
      snprintf(err, errlen,
               "http.listen: %s is not a loopback address: serve HTTPS there (http.tls_cert, "
               "http.tls_key), plain HTTP only on 127.0.0.0/8",
               cfg->http.listen);
      return -EINVAL;
    }
    if (cfg->http.tls_client_ca[0] != '\0') {
      snprintf(err, errlen, "http.tls_client_ca: client certificates need HTTPS (http.tls_cert)");
      return -EINVAL;
    }
    return 0;
  }
  if (cfg->http.tls_cert[0] == '\0' || cfg->http.tls_key[0] == '\0') {
    snprintf(err, errlen, "http.tls_cert and http.tls_key: HTTPS needs both");
    return -EINVAL;
  }
  int rc = rp_tls_files_load(cfg->http.tls_cert, cfg->http.tls_key, cfg->http.tls_client_ca,
                             &h->tls, err, errlen);
  if (rc != 0)
    return rc;
  size_t n = 0;
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls.key};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls.cert};
  if (h->tls.client_ca != NULL)
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->tls.client_ca};
  opts[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  *flags |= MHD_USE_TLS;
  return 0;
}

int rp_http_start(struct rp_aggregator *a, struct rp_http **out, char *err, size_t errlen) {
  struct rp_http *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return -ENOMEM;
  h->a = a;
  h->rate = calloc(RATE_SLOTS, sizeof(*h->rate));
  if (h->rate == NULL) {
    free(h);
    return -ENOMEM;
  }
  pthread_mutex_init(&h->rate_lock, NULL);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->cfg.http.port)};
  if (inet_pton(AF_INET, a->cfg.http.listen, &addr.sin_addr) != 1) {
    snprintf(err, errlen, "http.listen: '%s' is not an IPv4 address", a->cfg.http.listen);
    pthread_mutex_destroy(&h->rate_lock);
    free(h->rate);
    free(h);
    return -EINVAL;
  }
  struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_EPOLL;
  int rc = tls_setup(h, &addr, tls_opts, &flags, err, errlen);
  if (rc != 0) {
    pthread_mutex_destroy(&h->rate_lock);
    free(h->rate);
    free(h);
    return rc;
  }
  h->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE,
      (unsigned)a->cfg.http.threads, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)a->cfg.http.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
  if (h->daemon == NULL) {
    snprintf(err, errlen,
             "http: cannot listen on %s:%lld (in use, not permitted, or TLS files "
             "GnuTLS refuses)",
             a->cfg.http.listen, (long long)a->cfg.http.port);
    rp_tls_files_free(&h->tls);
    pthread_mutex_destroy(&h->rate_lock);
    free(h->rate);
    free(h);
    return -EADDRINUSE;
  }
  rp_info("http", "serving on %s://%s:%lld", h->tls.cert ? "https" : "http", a->cfg.http.listen,
          (long long)a->cfg.http.port);
  *out = h;
  return 0;
}

void rp_http_stop(struct rp_http *h) {
  if (h == NULL)
    return;
  MHD_stop_daemon(h->daemon);
  rp_tls_files_free(&h->tls);
  pthread_mutex_destroy(&h->rate_lock);
  free(h->rate);
  free(h);
}
