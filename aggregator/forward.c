/* Request routing between the members of a site (see cluster.h), called at
 * the top of the HTTP API's dispatch (http_api.c):
 *   - a request about one rack (its state, its gate, its floor entry, a
 *     flag, a retirement, a reservation or an override for it) that this
 *     member does not
 *     own is forwarded to the owner with libcurl, the hop count in
 *     X-Rackpulse-Hops (refused with 508 past cluster.max_hops), and
 *     answered with the owner's status and body; the answer names who
 *     answered (answered_by, X-Rackpulse-Answered-By) and who forwarded
 *     (X-Rackpulse-Forwarded-By);
 *   - a rack whose partition no live member owns is answered 503 with the
 *     partition named: never an allow from a store that is not fed;
 *   - a reservation or override named by id that this member does not hold
 *     is asked of the other live members, the first that knows it answers;
 *   - site-wide queries (GET /v1/racks, /v1/placement, /v1/audit,
 *     /v1/floor, /v1/reservations, /v1/flags, /v1/overrides) fan out to
 *     every live member
 *     (this one included, through its own HTTP port) in parallel and are
 *     merged: racks only from their owner, lists sorted and cut as one
 *     member would, and the members that did not answer named.
 * Requests that already carry a hop are answered where they land (fan-out
 * legs) or forwarded on (a view that was behind). Forwarding blocks the HTTP
 * worker thread for at most cluster.forward_timeout. */
#define _GNU_SOURCE
#include "forward.h"
#include "forward_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "ledger.h"
#include "override.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"

#define HOPS_HEADER "X-Rackpulse-Hops"

int rp_forward_global_init(void) {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}
void rp_forward_global_cleanup(void) { curl_global_cleanup(); }

static size_t on_body(char *data, size_t size, size_t n, void *ctx) {
  struct answer *ans = ctx;
  size_t len = size * n;
  if (ans->len + len > 64u << 20)
    return 0; /* more than 64 MiB: not a member's answer */
  char *grown = realloc(ans->body, ans->len + len + 1);
  if (grown == NULL)
    return 0;
  ans->body = grown;
  memcpy(ans->body + ans->len, data, len);
  ans->len += len;
  ans->body[ans->len] = '\0';
  return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx) {
  struct answer *ans = ctx;
  size_t len = size * n;
  static const char name[] = "X-Rackpulse-Answered-By:";
  if (len > sizeof(name) && strncasecmp(data, name, sizeof(name) - 1) == 0) {
    const char *v = data + sizeof(name) - 1;
    size_t vl = len - (sizeof(name) - 1);
    while (vl > 0 && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    snprintf(ans->answered_by, sizeof(ans->answered_by), "%.*s", (int)vl, v);
  }
  return len;
}

/* Sets up `h` for `req` to base URL `url`; *hdrs is freed by the caller. */
static void setup(CURL *h, const char *url, const struct outbound *req, long timeout_ms,
                  struct answer *ans, struct curl_slist **hdrs) {
  char full[2048], line[512];
  snprintf(full, sizeof(full), "%s%s", url, req->path);
  curl_easy_setopt(h, CURLOPT_URL, full);
  if (strcmp(req->method, "HEAD") == 0)
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  else
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (req->ca != NULL)
    curl_easy_setopt(h, CURLOPT_CAINFO, req->ca);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, ans);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ans->err);
  if (strcmp(req->method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req->len);
  }
  snprintf(line, sizeof(line), HOPS_HEADER ": %d", req->hops);
  *hdrs = curl_slist_append(NULL, line);
  const char *self = rp_cluster_self_id();
  snprintf(line, sizeof(line), "X-Rackpulse-Forwarded-By: %s", self ? self : "?");
  *hdrs = curl_slist_append(*hdrs, line);
  *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
  *hdrs = curl_slist_append(*hdrs, "Expect:");
  if (req->auth != NULL && strlen(req->auth) < 400) {
    snprintf(line, sizeof(line), "Authorization: %s", req->auth);
    *hdrs = curl_slist_append(*hdrs, line);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
}

static void finish(CURL *h, CURLcode rc, struct answer *ans) {
  if (rc != CURLE_OK) {
    ans->failed = true;
    if (ans->err[0] == '\0')
      snprintf(ans->err, sizeof(ans->err), "%s", curl_easy_strerror(rc));
    return;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
}

/* One request to `url`. Always on a new connection: the HTTP server binds a
 * kept-alive connection to one of its worker threads, so two members
 * forwarding to each other over kept-alive connections could each wait for
 * the thread the other holds; a new connection is accepted by a free one. */
static void request_one(const char *url, const struct outbound *req, long timeout_ms,
                        struct answer *ans) {
  CURL *h = curl_easy_init();
  if (h == NULL) {
    ans->failed = true;
    snprintf(ans->err, sizeof(ans->err), "out of memory");
    return;
  }
  struct curl_slist *hdrs = NULL;
  setup(h, url, req, timeout_ms, ans, &hdrs);
  finish(h, curl_easy_perform(h), ans);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
}

void rp_forward_request_all(const struct rp_member_addr *to, size_t n, const struct outbound *req,
                            long timeout_ms, struct answer *answers) {
  CURLM *multi = curl_multi_init();
  CURL *easy[RP_CLUSTER_MAX_MEMBERS] = {0};
  struct curl_slist *hdrs[RP_CLUSTER_MAX_MEMBERS] = {0};
  for (size_t i = 0; i < n; i++) {
    easy[i] = curl_easy_init();
    if (multi == NULL || easy[i] == NULL) {
      answers[i].failed = true;
      snprintf(answers[i].err, sizeof(answers[i].err), "out of memory");
      continue;
    }
    setup(easy[i], to[i].url, req, timeout_ms, &answers[i], &hdrs[i]);
    curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (char *)&answers[i]);
    curl_multi_add_handle(multi, easy[i]);
  }
  int running = 1;
  while (multi != NULL && running > 0) {
    if (curl_multi_perform(multi, &running) != CURLM_OK)
      break;
    if (running > 0)
      curl_multi_poll(multi, NULL, 0, 100, NULL);
  }
  CURLMsg *msg;
  int left;
  while (multi != NULL && (msg = curl_multi_info_read(multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    char *priv;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    finish(msg->easy_handle, msg->data.result, (struct answer *)priv);
  }
  for (size_t i = 0; i < n; i++) {
    if (easy[i] == NULL)
      continue;
    if (!answers[i].failed && answers[i].status == 0) {
      answers[i].failed = true;
      snprintf(answers[i].err, sizeof(answers[i].err), "no answer");
    }
    curl_multi_remove_handle(multi, easy[i]);
    curl_easy_cleanup(easy[i]);
    curl_slist_free_all(hdrs[i]);
  }
  curl_multi_cleanup(multi);
}

/* --- answering ---------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *answered_by) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(resp, "Content-Type", "application/json");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  if (answered_by != NULL && answered_by[0] != '\0')
    MHD_add_response_header(resp, "X-Rackpulse-Answered-By", answered_by);
  const char *self = rp_cluster_self_id();
  if (self != NULL)
    MHD_add_response_header(resp, "X-Rackpulse-Forwarded-By", self);
  enum MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

enum MHD_Result rp_forward_respond_json(struct MHD_Connection *conn, unsigned status, json_t *j) {
  rp_cluster_stamp(j);
  char *body = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
  json_decref(j);
  if (body == NULL)
    return MHD_NO;
  return respond(conn, status, body, strlen(body), rp_cluster_self_id());
}

/* --- what a request is about -------------------------------------------- */

/* Copies the path segment at s (up to '/' or the end) into out when it is
 * a valid id. */
static bool segment(const char *s, char out[65]) {
  size_t len = strcspn(s, "/");
  if (!rp_http_valid_id(s, len))
    return false;
  memcpy(out, s, len);
  out[len] = '\0';
  return true;
}

static bool body_rack(const char *body, size_t len, char out[65]) {
  json_t *j = json_loadb(body ? body : "", len, 0, NULL);
  const char *rack = json_string_value(json_object_get(j, "rack"));
  bool ok = rack != NULL && rp_http_valid_id(rack, strlen(rack));
  if (ok)
    snprintf(out, 65, "%s", rack);
  json_decref(j);
  return ok;
}

enum about {
  ABOUT_LOCAL,
  ABOUT_RACK,
  ABOUT_RESERVATION,
  ABOUT_OVERRIDE,
  ABOUT_SITE,
  ABOUT_CLUSTER
};

/* What the request is about: one rack (rack set), one reservation (id
 * set), the whole site (a fan-out query), or nothing to route. */
static enum about classify(struct MHD_Connection *conn, const char *method, const char *url,
                           const char *body, size_t len, char rack[65], char id[65]) {
  static const char racks[] = "/v1/racks/", flags[] = "/v1/flags/", res[] = "/v1/reservations/",
                    ovr[] = "/v1/overrides/";
  bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (get && strcmp(url, "/v1/cluster") == 0)
    return ABOUT_CLUSTER;
  if (strncmp(url, racks, sizeof(racks) - 1) == 0 && segment(url + sizeof(racks) - 1, rack))
    return ABOUT_RACK; /* state, gate, retire */
  if (get && strcmp(url, "/v1/floor") == 0) {
    const char *r = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "rack");
    if (r == NULL)
      return ABOUT_SITE;
    return segment(r, rack) ? ABOUT_RACK : ABOUT_LOCAL;
  }
  if (get && (strcmp(url, "/v1/racks") == 0 || strcmp(url, "/v1/placement") == 0 ||
              strcmp(url, "/v1/audit") == 0 || strcmp(url, "/v1/reservations") == 0 ||
              strcmp(url, "/v1/flags") == 0 || strcmp(url, "/v1/overrides") == 0))
    return ABOUT_SITE;
  if (strcmp(method, "POST") == 0 &&
      (strcmp(url, "/v1/flags") == 0 || strcmp(url, "/v1/reservations") == 0 ||
       strcmp(url, "/v1/overrides") == 0))
    return body_rack(body, len, rack) ? ABOUT_RACK : ABOUT_LOCAL;
  if (strcmp(method, "DELETE") == 0 && strncmp(url, flags, sizeof(flags) - 1) == 0 &&
      segment(url + sizeof(flags) - 1, rack))
    return ABOUT_RACK;
  if (!get && strncmp(url, res, sizeof(res) - 1) == 0 && segment(url + sizeof(res) - 1, id))
    return ABOUT_RESERVATION;
  if (strcmp(method, "DELETE") == 0 && strncmp(url, ovr, sizeof(ovr) - 1) == 0 &&
      segment(url + sizeof(ovr) - 1, id))
    return ABOUT_OVERRIDE;
  return ABOUT_LOCAL;
}

/* --- the path and query sent upstream ------------------------------------ */

struct query_buf {
  char *s;
  size_t len, cap;
  bool first;
  bool overflow;
};

static enum MHD_Result add_arg(void *ctx, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
  (void)kind;
  struct query_buf *q = ctx;
  char *k = curl_easy_escape(NULL, key, 0), *v = value ? curl_easy_escape(NULL, value, 0) : NULL;
  int n = snprintf(q->s + q->len, q->cap - q->len, "%c%s%s%s", q->first ? '?' : '&', k ? k : "",
                   v ? "=" : "", v ? v : "");
  curl_free(k);
  curl_free(v);
  if (n < 0 || (size_t)n >= q->cap - q->len) {
    q->overflow = true;
    return MHD_NO;
  }
  q->len += (size_t)n;
  q->first = false;
  return MHD_YES;
}

/* url and its query string into out (size cap); false when too long. */
static bool path_with_query(struct MHD_Connection *conn, const char *url, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s", url);
  if (n < 0 || (size_t)n >= cap)
    return false;
  struct query_buf q = {out, (size_t)n, cap, true, false};
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
  return !q.overflow;
}

/* --- the routes ------------------------------------------------------------ */

static enum MHD_Result relay(struct MHD_Connection *conn, struct answer *ans) {
  char *body = ans->body;
  size_t len = ans->len;
  ans->body = NULL;
  if (body == NULL) {
    body = strdup("");
    len = 0;
  }
  return respond(conn, (unsigned)ans->status, body, len, ans->answered_by);
}

static enum MHD_Result forward_rack(struct rp_aggregator *a, struct MHD_Connection *conn,
                                    const struct outbound *req, const char *rack, bool *handled) {
  int32_t partition;
  char member[65], url[256];
  enum rp_owner who = rp_cluster_owner(a->cluster, rack, &partition, member, url);
  if (who == RP_OWNER_SELF) {
    *handled = false;
    return MHD_YES;
  }
  *handled = true;
  if (who == RP_OWNER_NONE)
    return rp_forward_respond_json(
        conn, 503,
        json_pack("{s:s, s:s, s:i, s:s}", "error",
                  "no live member owns this rack's partition now (rebalancing, or its member was "
                  "lost and the group has not handed it over yet): retry shortly",
                  "rack", rack, "partition", (int)partition, "owner", "unknown"));
  if (req->hops > (int)rp_cluster_config(a->cluster)->max_hops)
    return rp_forward_respond_json(
        conn, 508,
        json_pack("{s:s, s:s, s:s}", "error",
                  "hop limit reached (cluster.max_hops): the members disagree on "
                  "who owns this rack; retry shortly",
                  "rack", rack, "owner", member));
  struct answer ans = {0};
  request_one(url, req, (long)rp_cluster_config(a->cluster)->forward_timeout_ms, &ans);
  enum MHD_Result r;
  if (ans.failed) {
    static _Atomic uint64_t last_warn_ms;
    uint64_t now = rp_mono_ms(), last = atomic_load(&last_warn_ms);
    if (now - last >= 1000 && atomic_compare_exchange_strong(&last_warn_ms, &last, now))
      rp_warn("forward",
              "rack %s: owner %s at %s did not answer: %s (at most one such line a "
              "second)",
              rack, member, url, ans.err);
    r = rp_forward_respond_json(
        conn, 503,
        json_pack("{s:s, s:s, s:s, s:i}", "error",
                  "the member that owns this rack did not answer: retry shortly", "rack", rack,
                  "owner", member, "partition", (int)partition));
  } else {
    r = relay(conn, &ans);
  }
  free(ans.body);
  return r;
}

/* A reservation or override by id: to the owner of its rack when this
 * member holds it (perhaps as a stale copy; rack set), else the first
 * other live member that does not answer 404. */
static enum MHD_Result forward_by_id(struct rp_aggregator *a, struct MHD_Connection *conn,
                                     const struct outbound *req, const char *rack, bool *handled) {
  if (rack != NULL)
    return forward_rack(a, conn, req, rack, handled);
  *handled = req->hops <= 1;
  if (!*handled)
    return MHD_YES;
  struct rp_member_addr to[RP_CLUSTER_MAX_MEMBERS];
  size_t n = rp_cluster_live(a->cluster, to, RP_CLUSTER_MAX_MEMBERS);
  for (size_t i = 1; i < n; i++) { /* to[0] is this member */
    struct answer ans = {0};
    request_one(to[i].url, req, (long)rp_cluster_config(a->cluster)->forward_timeout_ms, &ans);
    if (!ans.failed && ans.status != 404) {
      enum MHD_Result r = relay(conn, &ans);
      free(ans.body);
      return r;
    }
    free(ans.body);
  }
  *handled = false; /* nobody has it: our own 404 */
  return MHD_YES;
}

/* The rack of reservation or override `id` when this member holds it. */
static bool rack_of(struct rp_aggregator *a, enum about about, const char *id, char rack[65]) {
  if (about == ABOUT_OVERRIDE)
    return a->overrides != NULL && rp_override_rack(a->overrides, id, rack);
  json_t *mine = rp_ledger_res_get(a->ledger, id);
  const char *r = json_string_value(json_object_get(mine, "rack"));
  if (r != NULL)
    snprintf(rack, 65, "%s", r);
  json_decref(mine);
  return r != NULL;
}

bool rp_forward_route(struct rp_aggregator *a, struct MHD_Connection *conn, const char *method,
                      const char *url, const char *body, size_t len, enum MHD_Result *result) {
  if (a->cluster == NULL)
    return false;
  const char *hv = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, HOPS_HEADER);
  int hops = hv ? atoi(hv) : 0;
  if (hops < 0)
    hops = 0;
  char rack[65], id[65], path[4096];
  enum about about = classify(conn, method, url, body, len, rack, id);
  if (about == ABOUT_LOCAL || (about == ABOUT_SITE && hops > 0))
    return false;
  if (about == ABOUT_CLUSTER) {
    *result = rp_forward_respond_json(conn, 200, rp_cluster_json(a->cluster));
    return true;
  }
  if (!path_with_query(conn, url, path, sizeof(path))) {
    *result =
        rp_forward_respond_json(conn, 414, json_pack("{s:s}", "error", "request URI too long"));
    return true;
  }
  struct outbound req = {method,
                         path,
                         body,
                         len,
                         MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                         hops + 1,
                         NULL};
  if (rp_cluster_config(a->cluster)->tls_ca[0] != '\0')
    req.ca = rp_cluster_config(a->cluster)->tls_ca;
  bool handled = true;
  if (about == ABOUT_RACK)
    *result = forward_rack(a, conn, &req, rack, &handled);
  else if (about == ABOUT_RESERVATION || about == ABOUT_OVERRIDE)
    *result = forward_by_id(a, conn, &req, rack_of(a, about, id, rack) ? rack : NULL, &handled);
  else
    *result = rp_fanout(a, conn, url, &req);
  return handled;
}
