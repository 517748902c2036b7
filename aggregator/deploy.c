/* Deploy correlation fields and the audit record (see deploy.h). */
#include "deploy.h"

#include <errno.h>
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

static bool commit_like(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
      return false;
  return true;
}

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
  if (rc != 0)
    rp_error("audit", "%s %s on rack %s not kept in the audit log (%s): the request fails",
             json_string_value(json_object_get(entry, "action"))
                 ? json_string_value(json_object_get(entry, "action"))
                 : "decision",
             json_string_value(json_object_get(entry, "decision_id")),
             json_string_value(json_object_get(entry, "rack")), strerror(-rc));
  return rc;
}
