/* The deploy workflow's HTTP endpoints and request identity (see
 * http_deploy.h): authentication by bearer token or client certificate,
 * roles, deploy fields, the audit export, overrides and canaries. */
#include "http_deploy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"
#include "ledger.h"
#include "override.h"
#include "rackpulse/clock.h"
#include "tls.h"

static const char *arg(struct MHD_Connection *conn, const char *name) {
  return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

bool rp_http_identify(struct rp_aggregator *a, struct MHD_Connection *conn,
                      struct rp_caller *caller, unsigned *status, const char **why) {
  caller->client = NULL;
  caller->via = NULL;
  const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  if (auth != NULL) {
    if (strncmp(auth, "Bearer ", 7) != 0 || !rp_auth_by_token(a->auth, auth + 7, &caller->who)) {
      *status = 401;
      *why = "a valid bearer token is required (Authorization: Bearer ...)";
      return false;
    }
    caller->client = &caller->who;
    caller->via = "token";
    return true;
  }
  char cn[256];
  if (rp_tls_client_cn(conn, cn, sizeof(cn))) {
    if (!rp_auth_by_cert(a->auth, cn, &caller->who)) {
      *status = 401;
      *why = "the client certificate's common name is not a client of http.tokens_file";
      return false;
    }
    caller->client = &caller->who;
    caller->via = "cert";
  }
  return true;
}

bool rp_http_authorize(struct rp_aggregator *a, struct MHD_Connection *conn, enum rp_role role,
                       struct rp_caller *caller, unsigned *status, const char **why) {
  if (!rp_auth_enabled(a->auth)) {
    *status = 403;
    *why = "changes are disabled: the aggregator has no http.token_file nor http.tokens_file";
    return false;
  }
  if (!rp_http_identify(a, conn, caller, status, why))
    return false;
  if (caller->client == NULL) {
    *status = 401;
    *why = "a valid bearer token is required (Authorization: Bearer ...)";
    return false;
  }
  if (!rp_auth_has(caller->client, role)) {
    static const char *const need[] = {
        "this needs the role 'read'",  "this needs the role 'reserve'",
        "this needs the role 'flag'",  "this needs the role 'override'",
        "this needs the role 'admin'",
    };
    unsigned i = 0;
    while (i < 4 && (1u << i) != (unsigned)role)
      i++;
    *status = 403;
    *why = need[i];
    return false;
  }
  return true;
}

enum rp_role rp_http_route_role(const char *method, const char *url) {
  (void)method;
  if (strncmp(url, "/v1/reservations", 16) == 0 || strncmp(url, "/v1/canaries", 12) == 0)
    return RP_ROLE_RESERVE;
  if (strncmp(url, "/v1/flags", 9) == 0)
    return RP_ROLE_FLAG;
  if (strncmp(url, "/v1/overrides", 13) == 0)
    return RP_ROLE_OVERRIDE;
  return RP_ROLE_ADMIN;
}

bool rp_http_deploy_args(struct MHD_Connection *conn, struct rp_caller *caller, const char **why) {
  return rp_deploy_from_fields(caller, arg(conn, "deploy_id"), arg(conn, "commit"),
                               arg(conn, "pipeline_url"), arg(conn, "requester"), why) == 0;
}

bool rp_http_reader(struct rp_aggregator *a, struct MHD_Connection *conn, struct rp_caller *caller,
                    unsigned *status, const char **why) {
  if (!rp_http_identify(a, conn, caller, status, why))
    return false;
  if (!rp_http_deploy_args(conn, caller, why)) {
    *status = 400;
    return false;
  }
  return true;
}

/* The export, streamed a chunk of entries at a time; the first chunk is
 * read in the same transaction as the chain's ends its header line names. */
struct export_stream {
  struct rp_aggregator *a;
  uint64_t after;
  size_t remaining;
  bool started, done;
  char *buf;
  size_t len, off;
};

/* The header line and the first chunk, into x->buf. */
static void export_first(struct export_stream *x, char *chunk, size_t clen,
                         const struct rp_audit_ends *e) {
  json_t *hdr =
      json_pack("{s:{s:I, s:s, s:I, s:s, s:I}}", "audit_export", "head_seq",
                (json_int_t)e->head_seq, "head_hash", e->head_hash, "tip_seq",
                (json_int_t)e->tip_seq, "tip_hash", e->tip_hash, "after", (json_int_t)x->after);
  char *line = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
  json_decref(hdr);
  size_t ll = line ? strlen(line) : 0;
  x->buf = line ? malloc(ll + 1 + clen + 1) : NULL;
  if (x->buf != NULL) {
    memcpy(x->buf, line, ll);
    x->buf[ll] = '\n';
    if (clen > 0)
      memcpy(x->buf + ll + 1, chunk, clen);
    x->len = ll + 1 + clen;
  }
  free(line);
  free(chunk);
}

static ssize_t export_read(void *cls, uint64_t pos, char *out, size_t max) {
  (void)pos;
  struct export_stream *x = cls;
  while (x->off == x->len) {
    free(x->buf);
    x->buf = NULL;
    x->len = x->off = 0;
    if (x->done)
      return MHD_CONTENT_READER_END_OF_STREAM;
    size_t want = x->remaining < 500 ? x->remaining : 500, clen = 0;
    uint64_t last = x->after;
    struct rp_audit_ends ends;
    char *chunk = want ? rp_ledger_audit_export(x->a->ledger, x->after, want, &clen, &last,
                                                x->started ? NULL : &ends)
                       : NULL;
    x->done = chunk == NULL || clen == 0 || last == x->after;
    if (!x->started) {
      x->started = true;
      if (want == 0)
        memset(&ends, 0, sizeof(ends));
      export_first(x, chunk, clen, &ends);
      if (x->buf == NULL)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
      x->buf = chunk;
      x->len = chunk ? clen : 0;
    }
    x->after = last;
    x->remaining -= want;
  }
  size_t n = x->len - x->off < max ? x->len - x->off : max;
  memcpy(out, x->buf + x->off, n);
  x->off += n;
  return (ssize_t)n;
}

static void export_free(void *cls) {
  struct export_stream *x = cls;
  free(x->buf);
  free(x);
}

static enum MHD_Result get_export(struct rp_aggregator *a, struct MHD_Connection *conn) {
  const char *after = arg(conn, "after"), *limit = arg(conn, "limit");
  char *end;
  unsigned long long af = after ? strtoull(after, &end, 10) : 0;
  if (after && *end != '\0')
    return rp_http_reply_error(conn, 400, "after: a seq number");
  unsigned long long lim = limit ? strtoull(limit, &end, 10) : 100000000ULL;
  if ((limit && *end != '\0') || lim == 0)
    return rp_http_reply_error(conn, 400, "limit: a number of entries, at least 1");
  struct export_stream *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return MHD_NO;
  *x = (struct export_stream){.a = a, .after = af, .remaining = (size_t)lim};
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, export_read, x, export_free);
  if (resp == NULL) {
    free(x);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  enum MHD_Result r = MHD_queue_response(conn, 200, resp);
  MHD_destroy_response(resp);
  return r;
}

/* GET /v1/audit?deploy_id=X: the deploy's story (others go to
 * http_api.c's query by rack and time). */
static enum MHD_Result get_by_deploy(struct rp_aggregator *a, struct MHD_Connection *conn,
                                     const char *deploy_id) {
  const char *limit = arg(conn, "limit");
  char *end;
  long n = limit ? strtol(limit, &end, 10) : 1000;
  if ((limit && *end != '\0') || n < 1 || n > 100000)
    return rp_http_reply_error(conn, 400, "limit: 1..100000");
  json_t *d = rp_ledger_audit_by_deploy(a->ledger, deploy_id, (size_t)n);
  return rp_http_reply_json(conn, 200,
                            json_pack("{s:s, s:o}", "deploy_id", deploy_id, "decisions", d));
}

enum MHD_Result rp_http_deploy_get(struct rp_aggregator *a, struct MHD_Connection *conn,
                                   const char *url, bool *handled) {
  *handled = true;
  if (strcmp(url, "/v1/audit/export") == 0)
    return get_export(a, conn);
  if (strcmp(url, "/v1/audit") == 0 && arg(conn, "deploy_id") != NULL)
    return get_by_deploy(a, conn, arg(conn, "deploy_id"));
  if (strcmp(url, "/v1/overrides") == 0)
    return rp_http_reply_json(
        conn, 200,
        json_pack("{s:o}", "overrides",
                  rp_overrides_list(a->overrides, arg(conn, "rack"), rp_now_ms())));
  static const char canary_prefix[] = "/v1/canaries/";
  if (strncmp(url, canary_prefix, sizeof(canary_prefix) - 1) == 0) {
    json_t *c = rp_canary_get(a->canaries, url + sizeof(canary_prefix) - 1);
    return c ? rp_http_reply_json(conn, 200, c)
             : rp_http_reply_error(conn, 404, "no such canary (they are kept in memory)");
  }
  if (strcmp(url, "/v1/canaries") == 0)
    return rp_http_reply_json(conn, 200,
                              json_pack("{s:o}", "canaries", rp_canary_list(a->canaries)));
  *handled = false;
  return MHD_NO;
}

enum MHD_Result rp_http_deploy_change(struct rp_aggregator *a, struct MHD_Connection *conn,
                                      const char *method, const char *url, json_t *body,
                                      const struct rp_caller *caller, bool *handled) {
  *handled = true;
  unsigned status = 500;
  const char *why = "failed";
  int64_t now = rp_now_ms();
  json_t *r = NULL;
  static const char override_prefix[] = "/v1/overrides/";
  if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/overrides") == 0) {
    r = rp_override_create(a, body, caller, now, &status, &why);
    status = r ? 201 : status;
  } else if (strcmp(method, "DELETE") == 0 &&
             strncmp(url, override_prefix, sizeof(override_prefix) - 1) == 0) {
    r = rp_override_revoke(a, url + sizeof(override_prefix) - 1, caller, now, &status, &why);
    status = r ? 200 : status;
  } else if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/canaries") == 0) {
    r = rp_canary_start(a, body, caller, now, &status, &why);
    status = r ? 201 : status;
  } else {
    *handled = false;
    return MHD_NO;
  }
  return r ? rp_http_reply_json(conn, status, r) : rp_http_reply_error(conn, status, why);
}
