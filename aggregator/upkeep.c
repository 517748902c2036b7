/* The aggregator's decision side, set up and kept: the policy (file or
 * built-in) and the gate, the ledger (audit, reservations, flags), the API
 * token, the events producer; and a thread that once a second applies a
 * SIGHUP policy reload, evaluates every rack (the floor summaries of
 * floor.c) and reconciles automatic flags, expires reservations and
 * flags, and prunes the audit log. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aggregator.h"
#include "auth.h"
#include "canary.h"
#include "deploy.h"
#include "gate.h"
#include "ladder.h"
#include "override.h"
#include "ledger.h"
#include "policy.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"
#include "reservations.h"
#include "slo.h"

static pthread_t upkeep_thread;
static bool upkeep_running;

int rp_upkeep_load_policy(const struct rp_aggregator_config *cfg, struct rp_policy **out, char *err,
                          size_t errlen) {
  if (cfg->policy.file[0] != '\0')
    return rp_policy_load(cfg->policy.file, out, err, errlen);
  return rp_policy_builtin(cfg->policy.version, cfg->policy.max_staleness_ms,
                           cfg->policy.supply_temp_max, cfg->policy.supply_temp_series, out);
}

/* A flag that expired, in the audit log. */
static void audit_flag_expired(struct rp_aggregator *a, const json_t *f, int64_t now) {
  json_t *e =
      json_pack("{s:s, s:O, s:O, s:O}", "action", "flag_expired", "rack",
                json_object_get(f, "rack"), "flag", json_object_get(f, "flag"), "record", f);
  rp_audit_record(a, NULL, e, now);
  json_decref(e);
}

/* Removes flags past their expiry, each announced by its CLEARED event. */
static void expire_flags(struct rp_aggregator *a, int64_t now) {
  json_t *all = rp_ledger_flag_list(a->ledger, NULL);
  char version[64];
  rp_gate_policy_version(a->gate, version, sizeof(version));
  size_t i;
  json_t *f;
  json_array_foreach(all, i, f) {
    if (json_integer_value(json_object_get(f, "expires_ms")) > now)
      continue;
    const char *rack = json_string_value(json_object_get(f, "rack"));
    const char *flag = json_string_value(json_object_get(f, "flag"));
    /* Only the flag as read: one set again meanwhile stays. */
    if (rack && flag && rp_ledger_flag_del_if(a->ledger, rack, flag, f) == 0) {
      rp_info("flags", "%s on rack %s expired", flag, rack);
      rp_events_publish(a->events, f, false, version);
      audit_flag_expired(a, f, now);
    }
  }
  json_decref(all);
}

/* A policy reload (SIGHUP) in the audit log: the version before and after,
 * whether or not the new file was taken. */
static void audit_reload(struct rp_aggregator *a, const char *before, int64_t now) {
  char after[64];
  rp_gate_policy_version(a->gate, after, sizeof(after));
  json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:b}", "action", "policy_reload", "file",
                        a->cfg.policy.file, "version_before", before, "policy_version", after,
                        "changed", strcmp(before, after) != 0);
  rp_audit_record(a, NULL, e, now);
  json_decref(e);
}

/* SIGHUP: the clients of http.tokens_file and http.token_file again. A
 * file that does not load leaves the clients in force (and says where). */
static void reload_clients(struct rp_aggregator *a) {
  if (a->cfg.http.tokens_file[0] == '\0' && a->cfg.token_file[0] == '\0')
    return;
  char err[1024], token[sizeof(a->token)] = "";
  size_t n = 0;
  int rc = 0;
  if (a->cfg.token_file[0] != '\0')
    rc = rp_secret_read_file(a->cfg.token_file, token, sizeof(token), err, sizeof(err));
  if (rc == 0)
    rc = rp_auth_reload(a->auth, a->cfg.http.tokens_file, token, &n, err, sizeof(err));
  explicit_bzero(token, sizeof(token));
  if (rc != 0)
    rp_error("http", "clients reload refused: %s; the clients in force stay", err);
  else
    rp_info("http", "clients reloaded: %zu client(s)", n);
}

static void *upkeep(void *arg) {
  struct rp_aggregator *a = arg;
  for (unsigned tick = 0; !a->stop; tick++) {
    sleep(1);
    int64_t now = rp_now_ms();
    if (a->reload) {
      a->reload = false;
      char err[1024], version_before[64];
      rp_gate_policy_version(a->gate, version_before, sizeof(version_before));
      if (a->cfg.policy.file[0] == '\0') {
        rp_info("policy", "SIGHUP: no policy.file configured; the built-in policy stays");
      } else if (rp_gate_reload(a->gate, a->cfg.policy.file, err, sizeof(err)) != 0) {
        rp_error("policy", "reload refused: %s; the policy in force stays", err);
      } else {
        char version[64];
        rp_gate_policy_version(a->gate, version, sizeof(version));
        rp_info("policy", "reloaded %s: version %s", a->cfg.policy.file, version);
      }
      audit_reload(a, version_before, now);
      reload_clients(a);
    }
    rp_flags_reconcile(a, now);
    rp_events_poll(a->events);
    if (tick % 5 == 0) {
      int n = rp_reservations_expire(a, now);
      if (n > 0)
        rp_info("reservations", "%d reservation(s) expired", n);
      expire_flags(a, now);
    }
    if (tick % 60 == 0) {
      uint64_t n = rp_ledger_audit_prune(a->ledger, now);
      if (n > 0)
        rp_info("audit", "pruned %llu decision(s) past retention", (unsigned long long)n);
    }
  }
  return NULL;
}

int rp_upkeep_start(struct rp_aggregator *a, char *err, size_t errlen) {
  struct rp_policy *policy;
  int rc = rp_upkeep_load_policy(&a->cfg, &policy, err, errlen);
  if (rc != 0)
    return rc;
  if ((rc = rp_gate_new(policy, &a->gate)) != 0) {
    rp_policy_free(policy);
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  if (a->cfg.token_file[0] != '\0' &&
      (rc = rp_secret_read_file(a->cfg.token_file, a->token, sizeof(a->token), err, errlen)) != 0)
    return rc;
  if ((rc = rp_auth_load(a->cfg.http.tokens_file, a->token, &a->auth, err, errlen)) != 0)
    return rc;
  if (!rp_auth_enabled(a->auth))
    rp_warn("http", "no http.token_file nor http.tokens_file: nothing can be changed");
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/ledger", a->cfg.store.path);
  struct rp_ledger_limits lim = {.map_size = (size_t)1 << 30,
                                 .audit_map_size = (size_t)a->cfg.audit.map_size_mb << 20,
                                 .audit_max_age_ms = a->cfg.audit.max_age_ms,
                                 .audit_max_entries = (uint64_t)a->cfg.audit.max_entries};
  if ((rc = rp_ledger_open(dir, &lim, &a->ledger, err, errlen)) != 0)
    return rc;
  if ((rc = rp_events_new(&a->cfg, &a->events, err, errlen)) != 0)
    return rc;
  if ((rc = rp_ladder_new(&a->ladder)) != 0 || (rc = rp_slo_new(&a->slo)) != 0) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  if ((rc = rp_audit_topic_start(a, err, errlen)) != 0)
    return rc;
  if ((rc = rp_floor_new(&a->floor)) != 0) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  if ((rc = rp_overrides_new(&a->overrides)) != 0 || (rc = rp_canaries_new(a, &a->canaries)) != 0) {
    snprintf(err, errlen, "cannot start the canary watcher");
    return rc;
  }
  char version[64];
  rp_gate_policy_version(a->gate, version, sizeof(version));
  rp_info("policy", "policy %s (%s)", version,
          a->cfg.policy.file[0] ? a->cfg.policy.file : "built-in");
  if (pthread_create(&upkeep_thread, NULL, upkeep, a) != 0) {
    snprintf(err, errlen, "cannot start the upkeep thread");
    return -EAGAIN;
  }
  upkeep_running = true;
  return 0;
}

void rp_upkeep_stop(struct rp_aggregator *a) {
  if (upkeep_running) {
    pthread_join(upkeep_thread, NULL);
    upkeep_running = false;
  }
  rp_canaries_free(a->canaries); /* its thread expires overrides: first */
  a->canaries = NULL;
  rp_overrides_free(a->overrides);
  a->overrides = NULL;
  rp_events_free(a->events);
  a->events = NULL;
  rp_floor_free(a->floor);
  a->floor = NULL;
  rp_ladder_free(a->ladder);
  a->ladder = NULL;
  rp_slo_free(a->slo);
  a->slo = NULL;
  rp_ledger_close(a->ledger);
  a->ledger = NULL;
  rp_audit_topic_stop(a);
  rp_gate_free(a->gate);
  a->gate = NULL;
  memset(a->token, 0, sizeof(a->token));
  rp_auth_free(a->auth);
  a->auth = NULL;
}
