/* Overrides of denied deploys (see override.h). */
#include "override.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "ledger.h"
#include "rackpulse/cfg.h"
#include "rackpulse/log.h"

struct rp_overrides {
  pthread_mutex_t lock;
  json_t *active; /* array of records */
};

int rp_overrides_new(struct rp_overrides **out) {
  struct rp_overrides *o = calloc(1, sizeof(*o));
  if (o == NULL || (o->active = json_array()) == NULL) {
    free(o);
    return -ENOMEM;
  }
  pthread_mutex_init(&o->lock, NULL);
  *out = o;
  return 0;
}

void rp_overrides_free(struct rp_overrides *o) {
  if (o == NULL)
    return;
  json_decref(o->active);
  pthread_mutex_destroy(&o->lock);
  free(o);
}

static int64_t jint(const json_t *o, const char *k) {
  return (int64_t)json_integer_value(json_object_get(o, k));
}

/* The end time of a new override from the body: "for" or "expires_ms". */
static int parse_end(const json_t *body, int64_t now, int64_t *end, const char **why) {
  const char *dur = json_string_value(json_object_get(body, "for"));
  json_t *exp = json_object_get(body, "expires_ms");
  int64_t ms = 0;
  if (dur != NULL && rp_parse_duration_ms(dur, &ms) == 0)
    *end = now + ms;
  else if (dur == NULL && json_is_integer(exp))
    *end = json_integer_value(exp);
  else {
    *why = "for: a duration such as 30m, or expires_ms: Unix ms";
    return -EINVAL;
  }
  if (*end <= now || *end - now > RP_OVERRIDE_MAX_MS) {
    *why = "an override lasts more than 0 and at most 24h";
    return -EINVAL;
  }
  return 0;
}

static void audit(struct rp_aggregator *a, const struct rp_caller *caller, const char *action,
                  const json_t *rec, int64_t now) {
  json_t *e = json_pack("{s:s, s:O, s:O}", "action", action, "rack", json_object_get(rec, "rack"),
                        "override", rec);
  /* The aggregator's own entries (expiry) belong to the override's deploy. */
  json_t *deploy_id = json_object_get(rec, "deploy_id");
  if (e != NULL && caller == NULL && deploy_id != NULL)
    json_object_set_new(e, "deploy", json_pack("{s:O}", "deploy_id", deploy_id));
  if (e != NULL)
    rp_audit_record(a, caller, e, now);
  json_decref(e);
}

json_t *rp_override_create(struct rp_aggregator *a, const json_t *body,
                           const struct rp_caller *caller, int64_t now, unsigned *status,
                           const char **why) {
  const char *rack = json_string_value(json_object_get(body, "rack"));
  const char *reason = json_string_value(json_object_get(body, "reason"));
  int64_t end;
  *status = 400;
  if (rack == NULL || !rp_http_valid_id(rack, strlen(rack))) {
    *why = "rack: 1..64 characters of A-Z a-z 0-9 . _ -";
    return NULL;
  }
  if (reason == NULL || reason[0] == '\0' || strlen(reason) > 256) {
    *why = "reason: 1..256 characters (an override says why)";
    return NULL;
  }
  if (parse_end(body, now, &end, why) != 0)
    return NULL;
  char id[48];
  rp_deploy_new_id("ovr", id, sizeof(id));
  json_t *rec =
      json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", id, "rack", rack, "reason", reason,
                "client", caller->client ? caller->client->name : "anonymous", "created_ms",
                (json_int_t)now, "expires_ms", (json_int_t)end, "uses", (json_int_t)0);
  if (rec == NULL) {
    *status = 503;
    *why = "out of memory";
    return NULL;
  }
  if (rp_caller_deploy_id(caller) != NULL)
    json_object_set_new(rec, "deploy_id", json_string(rp_caller_deploy_id(caller)));
  /* On the ledger topic first (in a cluster): one it did not take is not
   * granted. */
  int rc = rp_ledger_publish(a->ledger, rack, "override", id, rec);
  if (rc != 0) {
    json_decref(rec);
    *status = 503;
    *why = rp_ledger_write_error(rc);
    return NULL;
  }
  json_t *e =
      json_pack("{s:s, s:s, s:O}", "action", "override_create", "rack", rack, "override", rec);
  rc = e ? rp_audit_record(a, caller, e, now) : -ENOMEM;
  json_decref(e);
  if (rc != 0) { /* an override that is not audited is not granted */
    rp_ledger_publish(a->ledger, rack, "override", id, NULL);
    json_decref(rec);
    *status = 503;
    *why = "the override could not be written to the audit log; not granted";
    return NULL;
  }
  pthread_mutex_lock(&a->overrides->lock);
  json_array_append(a->overrides->active, rec);
  pthread_mutex_unlock(&a->overrides->lock);
  rp_warn("override", "rack %s: denied deploys allowed until %lld by %s%s%s: %s", rack,
          (long long)end, json_string_value(json_object_get(rec, "client")),
          rp_caller_deploy_id(caller) ? " for deploy " : "",
          rp_caller_deploy_id(caller) ? rp_caller_deploy_id(caller) : "", reason);
  return rec;
}

json_t *rp_override_revoke(struct rp_aggregator *a, const char *id, const struct rp_caller *caller,
                           int64_t now, unsigned *status, const char **why) {
  json_t *rec = NULL;
  pthread_mutex_lock(&a->overrides->lock);
  size_t i;
  json_t *o;
  json_array_foreach(a->overrides->active, i, o) {
    if (strcmp(json_string_value(json_object_get(o, "id")), id) == 0)
      rec = json_deep_copy(o);
  }
  pthread_mutex_unlock(&a->overrides->lock);
  if (rec == NULL) {
    *status = 404;
    *why = "no such override in force";
    return NULL;
  }
  /* Its end on the ledger topic first (in a cluster): not revoked when the
   * topic did not take it. */
  int rc = rp_ledger_publish(a->ledger, json_string_value(json_object_get(rec, "rack")), "override",
                             id, NULL);
  if (rc != 0) {
    json_decref(rec);
    *status = 503;
    *why = rp_ledger_write_error(rc);
    return NULL;
  }
  rp_override_restore(a->overrides, id, NULL, now);
  json_object_set_new(rec, "ended_ms", json_integer(now));
  json_object_set_new(rec, "state", json_string("revoked"));
  audit(a, caller, "override_revoke", rec, now);
  return rec;
}

void rp_override_restore(struct rp_overrides *o, const char *id, const json_t *rec, int64_t now) {
  pthread_mutex_lock(&o->lock);
  for (size_t i = json_array_size(o->active); i-- > 0;) {
    const char *have = json_string_value(json_object_get(json_array_get(o->active, i), "id"));
    if (have != NULL && strcmp(have, id) == 0)
      json_array_remove(o->active, i);
  }
  if (rec != NULL && jint(rec, "expires_ms") > now &&
      json_string_value(json_object_get(rec, "rack")) != NULL)
    json_array_append_new(o->active, json_deep_copy(rec));
  pthread_mutex_unlock(&o->lock);
}

void rp_overrides_drop_if(struct rp_overrides *o, bool (*match)(void *ctx, const char *rack),
                          void *ctx) {
  pthread_mutex_lock(&o->lock);
  for (size_t i = json_array_size(o->active); i-- > 0;)
    if (match(ctx, json_string_value(json_object_get(json_array_get(o->active, i), "rack"))))
      json_array_remove(o->active, i);
  pthread_mutex_unlock(&o->lock);
}

bool rp_override_rack(struct rp_overrides *o, const char *id, char rack[65]) {
  bool found = false;
  pthread_mutex_lock(&o->lock);
  size_t i;
  json_t *r;
  json_array_foreach(o->active, i, r) {
    if (!found && strcmp(json_string_value(json_object_get(r, "id")), id) == 0) {
      snprintf(rack, 65, "%s", json_string_value(json_object_get(r, "rack")));
      found = true;
    }
  }
  pthread_mutex_unlock(&o->lock);
  return found;
}

json_t *rp_overrides_list(struct rp_overrides *o, const char *rack, int64_t now) {
  json_t *out = json_array();
  pthread_mutex_lock(&o->lock);
  size_t i;
  json_t *r;
  json_array_foreach(o->active, i, r) {
    if (jint(r, "expires_ms") > now &&
        (rack == NULL || strcmp(rack, json_string_value(json_object_get(r, "rack"))) == 0))
      json_array_append_new(out, json_deep_copy(r));
  }
  pthread_mutex_unlock(&o->lock);
  return out;
}

bool rp_override_apply(struct rp_overrides *o, json_t *decision, const char *deploy_id,
                       int64_t now) {
  const char *verdict = json_string_value(json_object_get(decision, "decision"));
  const char *rack = json_string_value(json_object_get(decision, "rack"));
  if (o == NULL || verdict == NULL || strcmp(verdict, "deny") != 0 || rack == NULL)
    return false;
  json_t *used = NULL;
  pthread_mutex_lock(&o->lock);
  size_t i;
  json_t *r;
  json_array_foreach(o->active, i, r) {
    const char *scope = json_string_value(json_object_get(r, "deploy_id"));
    if (jint(r, "expires_ms") > now &&
        strcmp(rack, json_string_value(json_object_get(r, "rack"))) == 0 &&
        (scope == NULL || (deploy_id != NULL && strcmp(scope, deploy_id) == 0))) {
      json_object_set_new(r, "uses", json_integer(jint(r, "uses") + 1));
      used = json_deep_copy(r);
      break;
    }
  }
  pthread_mutex_unlock(&o->lock);
  if (used == NULL)
    return false;
  json_t *denied_by = json_array(), *c;
  json_array_foreach(json_object_get(decision, "checks"), i, c) {
    if (!json_is_true(json_object_get(c, "pass")))
      json_array_append(denied_by, json_object_get(c, "name"));
  }
  json_object_set_new(used, "denied_by", denied_by);
  json_object_set_new(decision, "override", used);
  json_object_set_new(decision, "decision", json_string("allow"));
  return true;
}

int rp_overrides_expire(struct rp_aggregator *a, int64_t now) {
  json_t *ended = json_array();
  pthread_mutex_lock(&a->overrides->lock);
  for (size_t i = json_array_size(a->overrides->active); i-- > 0;) {
    json_t *r = json_array_get(a->overrides->active, i);
    if (jint(r, "expires_ms") <= now) {
      json_array_append(ended, r);
      json_array_remove(a->overrides->active, i);
    }
  }
  pthread_mutex_unlock(&a->overrides->lock);
  size_t i;
  json_t *r;
  json_array_foreach(ended, i, r) {
    json_object_set_new(r, "state", json_string("expired"));
    json_object_set_new(r, "ended_ms", json_integer(now));
    rp_info("override", "override %s of rack %s expired (%lld uses); the gate decides again",
            json_string_value(json_object_get(r, "id")),
            json_string_value(json_object_get(r, "rack")), (long long)jint(r, "uses"));
    audit(a, NULL, "override_expired", r, now);
  }
  int n = (int)json_array_size(ended);
  json_decref(ended);
  return n;
}
