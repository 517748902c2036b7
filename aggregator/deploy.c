/* Deploy correlation fields and the audit record (see deploy.h). */
#include "deploy.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "aggregator.h"
#include "gate.h"
#include "ledger.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"

static bool printable(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return false;
  return true;
}

static bool commit_like(const char *s) { return rp_http_valid_id(s, strlen(s)); }

int rp_deploy_from_fields(struct rp_caller *c, const char *deploy_id, const char *commit,
                          const char *pipeline_url, const char *requester, const char **why) {
  if (deploy_id && !printable(deploy_id, 128)) {
    *why = "deploy_id: 1..128 printable characters";
    return -EINVAL;
  }
  if (commit && !commit_like(commit)) {
    *why = "commit: 1..64 characters of A-Z a-z 0-9 . _ -";
    return -EINVAL;
  }
  if (pipeline_url &&
      (!printable(pipeline_url, 512) ||
       (strncmp(pipeline_url, "http://", 7) != 0 && strncmp(pipeline_url, "https://", 8) != 0))) {
    *why = "pipeline_url: an http:// or https:// URL of at most 512 characters";
    return -EINVAL;
  }
  if (requester && !printable(requester, 128)) {
    *why = "requester: 1..128 printable characters";
    return -EINVAL;
  }
  if (!deploy_id && !commit && !pipeline_url && !requester)
    return 0;
  json_t *d = json_object();
  if (deploy_id)
    json_object_set_new(d, "deploy_id", json_string(deploy_id));
  if (commit)
    json_object_set_new(d, "commit", json_string(commit));
  if (pipeline_url)
    json_object_set_new(d, "pipeline_url", json_string(pipeline_url));
  if (requester)
    json_object_set_new(d, "requester", json_string(requester));
  json_decref(c->deploy);
  c->deploy = d;
  return 0;
}

int rp_deploy_from_body(struct rp_caller *c, json_t *body, const char **why) {
  static const char *const keys[] = {"deploy_id", "commit", "pipeline_url", "requester"};
  const char *v[4] = {NULL};
  for (int i = 0; i < 4; i++) {
    json_t *f = json_object_get(body, keys[i]);
    if (f != NULL && !json_is_string(f)) {
      *why = "deploy_id, commit, pipeline_url, requester: strings";
      return -EINVAL;
    }
    v[i] = json_string_value(f);
  }
  int rc = rp_deploy_from_fields(c, v[0], v[1], v[2], v[3], why);
  if (rc == 0)
    for (int i = 0; i < 4; i++)
      json_object_del(body, keys[i]);
  return rc;
}

void rp_caller_clear(struct rp_caller *c) {
  json_decref(c->deploy);
  c->deploy = NULL;
}

const char *rp_caller_deploy_id(const struct rp_caller *c) {
  return c ? json_string_value(json_object_get(c->deploy, "deploy_id")) : NULL;
}

void rp_deploy_new_id(const char *prefix, char *out, size_t len) {
  static _Atomic uint64_t counter;
  uint8_t b[16];
  if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
    uint64_t n[2] = {(uint64_t)rp_now_ms(), atomic_fetch_add(&counter, 1)};
    memcpy(b, n, sizeof(b));
  }
  char hex[33];
  for (int i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", b[i]);
  snprintf(out, len, "%s%s%s", prefix ? prefix : "", prefix ? "-" : "", hex);
}

/* Deploy markers for dashboards: per rack and kind of event, the newest
 * one that carried a deploy id (or was a canary's or an override's), as
 * rackpulse_deploy_event_timestamp_seconds. One table per process (one
 * aggregator), bounded; entries older than a day are dropped. */
#define MARKERS_MAX 4096
#define MARKER_TTL_MS (24LL * 3600 * 1000)

struct marker {
  char rack[RP_ID_MAX + 1], kind[32], deploy_id[129];
  int64_t ts_ms;
};

static struct {
  pthread_mutex_t lock;
  struct marker v[MARKERS_MAX];
  size_t n;
} markers = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The marker kind of an entry: its action, or gate_allow / gate_deny;
 * NULL when it marks nothing. */
static const char *marker_kind(const json_t *e, const char *deploy_id, char *buf, size_t len) {
  const char *action = json_string_value(json_object_get(e, "action"));
  const char *decision = json_string_value(json_object_get(e, "decision"));
  if (action == NULL && decision != NULL && deploy_id != NULL) {
    snprintf(buf, len, "gate_%s", decision);
    return buf;
  }
  if (action != NULL && (deploy_id != NULL || strncmp(action, "canary", 6) == 0 ||
                         strncmp(action, "override", 8) == 0))
    return action;
  return NULL;
}

static void mark(const json_t *e, int64_t now) {
  const char *rack = json_string_value(json_object_get(e, "rack"));
  const char *id = json_string_value(json_object_get(json_object_get(e, "deploy"), "deploy_id"));
  char buf[32];
  const char *kind = marker_kind(e, id, buf, sizeof(buf));
  if (rack == NULL || kind == NULL || strcmp(rack, "*") == 0)
    return;
  pthread_mutex_lock(&markers.lock);
  size_t i = 0, oldest = 0;
  for (; i < markers.n; i++) {
    if (strcmp(markers.v[i].rack, rack) == 0 && strcmp(markers.v[i].kind, kind) == 0)
      break;
    if (markers.v[i].ts_ms < markers.v[oldest].ts_ms)
      oldest = i;
  }
  if (i == markers.n)
    i = markers.n < MARKERS_MAX ? markers.n++ : oldest;
  struct marker *m = &markers.v[i];
  snprintf(m->rack, sizeof(m->rack), "%s", rack);
  snprintf(m->kind, sizeof(m->kind), "%s", kind);
  snprintf(m->deploy_id, sizeof(m->deploy_id), "%s", id ? id : "");
  m->ts_ms = now;
  pthread_mutex_unlock(&markers.lock);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      fputc('\\', out);
    fputc(*s, out);
  }
}

void rp_deploy_metrics(FILE *out, int64_t now_ms) {
  fprintf(out, "# HELP rackpulse_deploy_event_timestamp_seconds When the newest event of a kind "
               "(gate_allow/gate_deny with a deploy id, canary_*, override_*, changes with a "
               "deploy id) happened on a rack, with its deploy id: dashboard annotations.\n"
               "# TYPE rackpulse_deploy_event_timestamp_seconds gauge\n");
  pthread_mutex_lock(&markers.lock);
  for (size_t i = 0; i < markers.n; i++) {
    const struct marker *m = &markers.v[i];
    if (now_ms - m->ts_ms > MARKER_TTL_MS)
      continue;
    fputs("rackpulse_deploy_event_timestamp_seconds{rack=\"", out);
    label(out, m->rack);
    fprintf(out, "\",kind=\"%s\",deploy_id=\"", m->kind);
    label(out, m->deploy_id);
    fprintf(out, "\"} %.3f\n", (double)m->ts_ms / 1000.0);
  }
  pthread_mutex_unlock(&markers.lock);
}

int rp_audit_record(struct rp_aggregator *a, const struct rp_caller *c, json_t *entry,
                    int64_t now_ms) {
  if (json_object_get(entry, "rack") == NULL)
    json_object_set_new(entry, "rack", json_string("*")); /* site-wide */
  if (json_object_get(entry, "decision_id") == NULL) {
    char id[48];
    rp_deploy_new_id(NULL, id, sizeof(id));
    json_object_set_new(entry, "decision_id", json_string(id));
  }
  if (json_object_get(entry, "evaluated_at_ms") == NULL)
    json_object_set_new(entry, "evaluated_at_ms", json_integer(now_ms));
  if (json_object_get(entry, "policy_version") == NULL && a->gate != NULL) {
    char version[64];
    rp_gate_policy_version(a->gate, version, sizeof(version));
    json_object_set_new(entry, "policy_version", json_string(version));
  }
  /* The aggregator's own actions (expiries, automatic flags, reloads)
   * pass no caller; a caller without credentials is "anonymous". */
  const char *client = c == NULL ? "aggregator" : c->client ? c->client->name : "anonymous";
  json_object_set_new(entry, "client", json_string(client));
  if (c != NULL && c->via != NULL)
    json_object_set_new(entry, "auth", json_string(c->via));
  if (c != NULL && c->deploy != NULL)
    json_object_set(entry, "deploy", c->deploy);
  int rc = rp_ledger_audit_append(a->ledger, entry);
  if (rc == 0)
    mark(entry, now_ms);
  if (rc != 0)
    rp_error("audit", "%s %s on rack %s not kept in the audit log (%s): the request fails",
             json_string_value(json_object_get(entry, "action"))
                 ? json_string_value(json_object_get(entry, "action"))
                 : "decision",
             json_string_value(json_object_get(entry, "decision_id")),
             json_string_value(json_object_get(entry, "rack")), strerror(-rc));
  return rc;
}
