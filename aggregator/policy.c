/* Gate policy files (see policy.h). Limits are resolved once at load time:
 * built-in defaults, overlaid by the file's `defaults`, then by a class,
 * then by a rack's own entry; every rack keeps its effective set, so a gate
 * evaluation reads limits without parsing or merging anything. */
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/cfg.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *const rp_check_names[RP_CHECK_COUNT] = {
    [RP_CHECK_SUPPLY_TEMP] = "supply_temp",
    [RP_CHECK_SUPPLY_SLOPE] = "supply_slope",
    [RP_CHECK_INLET_SLOPE] = "inlet_slope",
    [RP_CHECK_DELTA_T] = "delta_t",
    [RP_CHECK_FLOW] = "flow",
    [RP_CHECK_ALARMS] = "alarms",
    [RP_CHECK_HEAT_BALANCE] = "heat_balance",
    [RP_CHECK_POWER] = "power",
    [RP_CHECK_THERMAL] = "thermal",
};

/* The check names as a NULL-ended list of sub-sections for rp_cfg_apply. */
static const char *const check_sections[RP_CHECK_COUNT + 1] = {
    "supply_temp", "supply_slope", "inlet_slope", "delta_t", "flow",
    "alarms",      "heat_balance", "power",       "thermal", NULL};

static const char *const stat_names[] = {"latest", "p50", "p95", "p99",
                                         "mean",   "min", "max", "slope"};
static const char *const across_names[] = {"max", "min", "sum"};

static struct rp_check_limits check(bool enabled, bool fail_closed, const char *series,
                                    enum rp_stat stat, int64_t window_ms, enum rp_across across,
                                    double min, double max) {
  struct rp_check_limits c = {.enabled = enabled,
                              .fail_closed = fail_closed,
                              .stat = stat,
                              .window_ms = window_ms,
                              .across = across,
                              .min = min,
                              .max = max,
                              .persist = 1};
  snprintf(c.series, sizeof(c.series), "%s", series);
  return c;
}

/* The built-in limits every policy starts from. Checks that need devices or
 * rack metadata a minimal deployment lacks start disabled. */
static void builtin_set(struct rp_policy_set *s) {
  memset(s, 0, sizeof(*s));
  s->max_staleness_ms = 10000;
  s->clock_skew_ms = 2000;
  s->power_margin_kw = 0;
  s->heat_fraction = 1.0;
  s->check[RP_CHECK_SUPPLY_TEMP] =
      check(true, true, "cdu.supply_temp", RP_STAT_LATEST, 0, RP_ACROSS_MAX, NAN, 45);
  s->check[RP_CHECK_SUPPLY_SLOPE] =
      check(false, true, "cdu.supply_temp", RP_STAT_SLOPE, 300000, RP_ACROSS_MAX, NAN, 1.0);
  s->check[RP_CHECK_INLET_SLOPE] =
      check(false, true, "server.inlet_temp", RP_STAT_SLOPE, 300000, RP_ACROSS_MAX, NAN, 1.0);
  s->check[RP_CHECK_DELTA_T] =
      check(false, true, "cdu.delta_t", RP_STAT_LATEST, 0, RP_ACROSS_MAX, 4, 15);
  s->check[RP_CHECK_FLOW] =
      check(false, true, "cdu.flow", RP_STAT_LATEST, 0, RP_ACROSS_MIN, NAN, NAN);
  s->check[RP_CHECK_ALARMS] =
      check(true, false, "cdu.alarms", RP_STAT_LATEST, 0, RP_ACROSS_MAX, NAN, NAN);
  s->check[RP_CHECK_HEAT_BALANCE] =
      check(false, true, "rack.heat_balance", RP_STAT_LATEST, 0, RP_ACROSS_MAX, 0.5, 1.2);
  s->check[RP_CHECK_POWER] =
      check(false, true, "pdu.power", RP_STAT_P95, 300000, RP_ACROSS_SUM, NAN, NAN);
  s->check[RP_CHECK_THERMAL] =
      check(false, true, "cdu.heat_removed", RP_STAT_LATEST, 0, RP_ACROSS_SUM, NAN, NAN);
}

/* One check as YAML: the limits, plus the two enums as text. */
struct check_yaml {
  struct rp_check_limits l;
  char stat[16], across[16];
};

typedef struct check_yaml K;

static const struct rp_cfg_field check_fields[] = {
    RP_CFG_NUM("enabled", RP_CFG_BOOL, K, l.enabled, NULL, 0, 0, "evaluate this check"),
    RP_CFG_NUM("fail_closed", RP_CFG_BOOL, K, l.fail_closed, NULL, 0, 0,
               "missing, stale or invalid input denies"),
    RP_CFG_STR("series", K, l.series, NULL, 0, "the series the check reads"),
    RP_CFG_STR("stat", K, stat, NULL, 0, "latest, p50, p95, p99, mean, min, max or slope"),
    RP_CFG_NUM("window", RP_CFG_DURATION, K, l.window_ms, NULL, 1, 86400,
               "the agent's window the stat is taken over"),
    RP_CFG_STR("across", K, across, NULL, 0, "combine devices: max, min or sum"),
    RP_CFG_NUM("min", RP_CFG_DOUBLE, K, l.min, NULL, 0, 0, "lowest passing value"),
    RP_CFG_NUM("max", RP_CFG_DOUBLE, K, l.max, NULL, 0, 0, "highest passing value"),
    RP_CFG_NUM("hysteresis", RP_CFG_DOUBLE, K, l.hysteresis, NULL, 0, 1e9,
               "a tripped check clears only this far inside its band"),
    RP_CFG_NUM("persist", RP_CFG_INT, K, l.persist, NULL, 1, 100000,
               "consecutive out-of-band samples before it trips"),
    RP_CFG_NUM("persist_for", RP_CFG_DURATION, K, l.persist_for_ms, NULL, 0, 86400,
               "or: out of band for this long before it trips"),
};

static int parse_enum(const char *text, const char *const *names, size_t n, int *out) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(text, names[i]) == 0) {
      *out = (int)i;
      return 0;
    }
  return -EINVAL;
}

static int apply_check(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                       struct rp_check_limits *l, char *err, size_t errlen) {
  K k = {.l = *l};
  int rc = rp_cfg_apply(doc, node, where, check_fields, N(check_fields), NULL, &k, err, errlen);
  if (rc != 0)
    return rc;
  int v;
  if (k.stat[0] != '\0') {
    if (parse_enum(k.stat, stat_names, N(stat_names), &v) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "stat"), where, err, errlen,
                   "stat '%s' is not latest, p50, p95, p99, mean, min, max or slope", k.stat);
      return -EINVAL;
    }
    k.l.stat = (enum rp_stat)v;
  }
  if (k.across[0] != '\0') {
    if (parse_enum(k.across, across_names, N(across_names), &v) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "across"), where, err, errlen,
                   "across '%s' is not max, min or sum", k.across);
      return -EINVAL;
    }
    k.l.across = (enum rp_across)v;
  }
  if (!isnan(k.l.min) && !isnan(k.l.max) && k.l.min > k.l.max) {
    rp_cfg_error(doc, node, where, err, errlen, "min %g is above max %g", k.l.min, k.l.max);
    return -EINVAL;
  }
  if (k.l.stat != RP_STAT_LATEST && k.l.window_ms <= 0) {
    rp_cfg_error(doc, node, where, err, errlen, "stat %s needs a window", stat_names[k.l.stat]);
    return -EINVAL;
  }
  *l = k.l;
  return 0;
}

typedef struct rp_policy_set S;
static const struct rp_cfg_field set_fields[] = {
    RP_CFG_NUM("max_staleness", RP_CFG_DURATION, S, max_staleness_ms, NULL, 0.1, 86400,
               "telemetry older than this denies"),
    RP_CFG_NUM("clock_skew", RP_CFG_DURATION, S, clock_skew_ms, NULL, 0.1, 86400,
               "an agent whose frame time differs more from the aggregator's receive time "
               "denies (default 2s)"),
    RP_CFG_NUM("power_margin_kw", RP_CFG_DOUBLE, S, power_margin_kw, NULL, 0, 100000,
               "safety margin kept free below the derated breaker limit"),
    RP_CFG_NUM("heat_fraction", RP_CFG_DOUBLE, S, heat_fraction, NULL, 0, 1,
               "share of a request's kW the CDU must remove as heat (default 1)"),
};

typedef struct rp_rack_meta M;
static const struct rp_cfg_field rack_fields[] = {
    RP_CFG_STR("id", M, id, NULL, 1, "rack id, as the agents report it"),
    RP_CFG_STR("class", M, class_name, NULL, 0, "a class of the classes section"),
    RP_CFG_STR("pool", M, pool, NULL, 0, "placement pool"),
    RP_CFG_STR("row", M, row, NULL, 0, "row (neighbouring load in placement)"),
    RP_CFG_STR("loop", M, loop, NULL, 0, "cooling loop"),
    RP_CFG_NUM("breaker_kw", RP_CFG_DOUBLE, M, breaker_kw, NULL, 0, 100000, "breaker limit, kW"),
    RP_CFG_NUM("derating", RP_CFG_DOUBLE, M, derating, NULL, 0.01, 1,
               "usable fraction of the breaker limit (continuous load)"),
    RP_CFG_NUM("cdu_capacity_kw", RP_CFG_DOUBLE, M, cdu_capacity_kw, NULL, 0, 100000,
               "rated heat removal of the rack's CDU share, kW"),
    RP_CFG_STR("feed_a", M, elec.feed[0], NULL, 0, "PDU device of feed A (as the agent names it)"),
    RP_CFG_STR("feed_b", M, elec.feed[1], NULL, 0, "PDU device of feed B"),
    RP_CFG_NUM("feed_kw", RP_CFG_DOUBLE, M, elec.feed_kw, NULL, 0, 100000,
               "rating of one feed, kW (with N+N, one feed carries the whole rack)"),
    RP_CFG_NUM("phase_amps", RP_CFG_DOUBLE, M, elec.phase_amps, NULL, 0, 10000,
               "rating of each phase of a feed's inlet, A"),
    RP_CFG_NUM("branch_amps", RP_CFG_DOUBLE, M, elec.branch_amps, NULL, 0, 10000,
               "rating of each branch breaker (over-current protector), A"),
    RP_CFG_NUM("volts", RP_CFG_DOUBLE, M, elec.volts, NULL, 1, 1000,
               "phase-to-neutral voltage, to turn kW into A (default 230)"),
    RP_CFG_STR("redundancy", M, elec.redundancy, NULL, 0,
               "n+n (either feed carries the rack; default with two feeds) or none"),
    RP_CFG_NUM("max_staleness", RP_CFG_DURATION, M, set.max_staleness_ms, NULL, 0.1, 86400,
               "telemetry older than this denies"),
    RP_CFG_NUM("clock_skew", RP_CFG_DURATION, M, set.clock_skew_ms, NULL, 0.1, 86400,
               "an agent whose frame time differs more from the aggregator's receive time "
               "denies (default 2s)"),
    RP_CFG_NUM("power_margin_kw", RP_CFG_DOUBLE, M, set.power_margin_kw, NULL, 0, 100000,
               "safety margin kept free below the derated breaker limit"),
    RP_CFG_NUM("heat_fraction", RP_CFG_DOUBLE, M, set.heat_fraction, NULL, 0, 1,
               "share of a request's kW the CDU must remove as heat (default 1)"),
};

/* Applies the checks present in `node` (a defaults, class or rack mapping). */
static int apply_checks(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                        struct rp_policy_set *s, char *err, size_t errlen) {
  for (size_t i = 0; i < RP_CHECK_COUNT; i++) {
    rp_cfg_node c = rp_cfg_get(doc, node, rp_check_names[i]);
    if (c == 0)
      continue;
    char path[96];
    snprintf(path, sizeof(path), "%s.%s", where, rp_check_names[i]);
    int rc = apply_check(doc, c, path, &s->check[i], err, errlen);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int apply_set(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                     struct rp_policy_set *s, char *err, size_t errlen) {
  int rc =
      rp_cfg_apply(doc, node, where, set_fields, N(set_fields), check_sections, s, err, errlen);
  return rc ? rc : apply_checks(doc, node, where, s, err, errlen);
}

static int load_classes(const struct rp_cfg_doc *doc, rp_cfg_node map, struct rp_policy *p,
                        char *err, size_t errlen) {
  size_t n = rp_cfg_map_len(doc, map);
  if (map != 0 && (rp_cfg_kind(doc, map) != RP_CFG_MAPPING || n > N(p->classes))) {
    rp_cfg_error(doc, map, "classes", err, errlen, "expected a mapping of at most %zu classes",
                 N(p->classes));
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node node;
    const char *name = rp_cfg_map_key(doc, map, i, &node);
    char where[64];
    /* A key that is a list or a mapping has no text (strlen(NULL) crashed
     * the load, and a SIGHUP reload); an empty name (`: {}`) or one given
     * twice left a class no request can select (found by fuzzing). */
    if (name == NULL || name[0] == '\0') {
      rp_cfg_error(doc, map, "classes", err, errlen, "class names must be non-empty plain text");
      return -EINVAL;
    }
    snprintf(where, sizeof(where), "classes.%s", name);
    if (strlen(name) >= sizeof(p->class_names[0])) {
      rp_cfg_error(doc, node, where, err, errlen, "class names are under 32 characters");
      return -EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(p->class_names[j], name) == 0) {
        rp_cfg_error(doc, node, where, err, errlen, "class '%s' is defined twice", name);
        return -EINVAL;
      }
    }
    strcpy(p->class_names[i], name);
    p->classes[i] = p->defaults;
    int rc = apply_set(doc, node, where, &p->classes[i], err, errlen);
    if (rc != 0)
      return rc;
  }
  p->nclasses = n;
  return 0;
}

static const struct rp_policy_set *find_class(const struct rp_policy *p, const char *name) {
  for (size_t i = 0; i < p->nclasses; i++)
    if (strcmp(p->class_names[i], name) == 0)
      return &p->classes[i];
  return NULL;
}

static int load_rack(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                     struct rp_policy *p, struct rp_rack_meta *r, char *err, size_t errlen) {
  memset(r, 0, sizeof(*r));
  r->breaker_kw = r->cdu_capacity_kw = NAN;
  r->elec.feed_kw = r->elec.phase_amps = r->elec.branch_amps = NAN;
  r->elec.volts = 230;
  r->derating = 0.8;
  /* The class decides the starting limits, so read it first. */
  const char *cls = rp_cfg_scalar(doc, rp_cfg_get(doc, node, "class"));
  const struct rp_policy_set *base = &p->defaults;
  if (cls != NULL && (base = find_class(p, cls)) == NULL) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "class"), where, err, errlen,
                 "class '%s' is not defined in classes", cls);
    return -EINVAL;
  }
  r->set = *base;
  int rc =
      rp_cfg_apply(doc, node, where, rack_fields, N(rack_fields), check_sections, r, err, errlen);
  if (rc == 0)
    rc = apply_checks(doc, node, where, &r->set, err, errlen);
  if (rc == 0)
    rc = rp_policy_load_rack_electrical(doc, node, where, r, err, errlen);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < p->nracks; i++) {
    if (strcmp(p->racks[i].id, r->id) == 0) {
      rp_cfg_error(doc, node, where, err, errlen, "rack '%s' is listed twice", r->id);
      return -EINVAL;
    }
  }
  return 0;
}

static int load_racks(const struct rp_cfg_doc *doc, rp_cfg_node list, struct rp_policy *p,
                      char *err, size_t errlen) {
  size_t n = rp_cfg_seq_len(doc, list);
  if (list != 0 && rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE) {
    rp_cfg_error(doc, list, "racks", err, errlen, "expected a list of racks");
    return -EINVAL;
  }
  if (n > 100000) {
    rp_cfg_error(doc, list, "racks", err, errlen, "more than 100000 racks");
    return -EINVAL;
  }
  p->racks = calloc(n + 1, sizeof(*p->racks));
  if (p->racks == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    char where[32];
    snprintf(where, sizeof(where), "racks[%zu]", i);
    int rc =
        load_rack(doc, rp_cfg_seq_item(doc, list, i), where, p, &p->racks[p->nracks], err, errlen);
    if (rc != 0)
      return rc;
    p->nracks++;
  }
  return 0;
}

int rp_policy_load(const char *path, struct rp_policy **out, char *err, size_t errlen) {
  static const char *const sections[] = {"defaults", "classes", "racks", "ladder", "slo",
                                         "rows",     "pools",   "loops", "tariff", NULL};
  static const struct rp_cfg_field top_fields[] = {
      RP_CFG_STR("version", struct rp_policy, version, NULL, 1,
                 "policy version, named in every decision"),
  };
  struct rp_cfg_doc *doc;
  int rc = rp_cfg_load(path, &doc, err, errlen);
  if (rc != 0)
    return rc;
  struct rp_policy *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    rp_cfg_free(doc);
    return -ENOMEM;
  }
  snprintf(p->path, sizeof(p->path), "%s", path);
  builtin_set(&p->defaults);
  rp_cfg_node root = rp_cfg_root(doc);
  rc = rp_cfg_apply(doc, root, "policy", top_fields, N(top_fields), sections, p, err, errlen);
  if (rc == 0)
    rc = apply_set(doc, rp_cfg_get(doc, root, "defaults"), "defaults", &p->defaults, err, errlen);
  if (rc == 0)
    rc = load_classes(doc, rp_cfg_get(doc, root, "classes"), p, err, errlen);
  if (rc == 0)
    rc = load_racks(doc, rp_cfg_get(doc, root, "racks"), p, err, errlen);
  rp_ladder_policy_default(&p->ladder);
  if (rc == 0)
    rc = rp_ladder_parse(doc, rp_cfg_get(doc, root, "ladder"), &p->ladder, err, errlen);
  if (rc == 0)
    rc = rp_slo_parse(doc, rp_cfg_get(doc, root, "slo"), &p->slo, err, errlen);
  if (rc == 0)
    rc = rp_policy_load_topology(doc, root, p, err, errlen);
  rp_cfg_free(doc);
  if (rc != 0) {
    rp_policy_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int rp_policy_builtin(const char *version, int64_t max_staleness_ms, double supply_temp_max,
                      const char *supply_series, struct rp_policy **out) {
  struct rp_policy *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  snprintf(p->version, sizeof(p->version), "%s", version);
  p->tariff.flat = NAN;
  builtin_set(&p->defaults);
  rp_ladder_policy_default(&p->ladder);
  p->defaults.max_staleness_ms = max_staleness_ms;
  p->defaults.check[RP_CHECK_SUPPLY_TEMP].max = supply_temp_max;
  snprintf(p->defaults.check[RP_CHECK_SUPPLY_TEMP].series, sizeof(p->defaults.check[0].series),
           "%s", supply_series);
  *out = p;
  return 0;
}

void rp_policy_free(struct rp_policy *p) {
  if (p == NULL)
    return;
  free(p->racks);
  free(p->rows);
  free(p->pools);
  free(p->loops);
  free(p);
}

const struct rp_policy_set *rp_policy_for(const struct rp_policy *p, const char *rack,
                                          const char *class_name,
                                          const struct rp_rack_meta **meta) {
  *meta = NULL;
  for (size_t i = 0; i < p->nracks; i++)
    if (strcmp(p->racks[i].id, rack) == 0)
      *meta = &p->racks[i];
  if (class_name != NULL && class_name[0] != '\0')
    return find_class(p, class_name);
  return *meta != NULL ? &(*meta)->set : &p->defaults;
}

bool rp_policy_set_as_strict(const struct rp_policy_set *cand, const struct rp_policy_set *own,
                             char *why, size_t whylen) {
  if (cand->max_staleness_ms > own->max_staleness_ms) {
    snprintf(why, whylen, "max_staleness %lld ms > %lld ms", (long long)cand->max_staleness_ms,
             (long long)own->max_staleness_ms);
    return false;
  }
  if (cand->power_margin_kw < own->power_margin_kw) {
    snprintf(why, whylen, "power_margin_kw %g < %g", cand->power_margin_kw, own->power_margin_kw);
    return false;
  }
  if (cand->heat_fraction < own->heat_fraction) {
    snprintf(why, whylen, "heat_fraction %g < %g", cand->heat_fraction, own->heat_fraction);
    return false;
  }
  for (int id = 0; id < RP_CHECK_COUNT; id++) {
    const struct rp_check_limits *c = &cand->check[id], *o = &own->check[id];
    const char *name = rp_check_names[id];
    if (!o->enabled)
      continue;
    if (!c->enabled) {
      snprintf(why, whylen, "%s disabled", name);
      return false;
    }
    if (o->fail_closed && !c->fail_closed) {
      snprintf(why, whylen, "%s does not fail closed", name);
      return false;
    }
    if (strcmp(c->series, o->series) != 0 || c->stat != o->stat || c->window_ms != o->window_ms ||
        c->across != o->across) {
      snprintf(why, whylen, "%s reads %s %s, not %s %s", name, stat_names[c->stat], c->series,
               stat_names[o->stat], o->series);
      return false;
    }
    if (isfinite(o->max) && !(c->max <= o->max)) { /* NaN: unbounded */
      snprintf(why, whylen, "%s max %g > %g", name, c->max, o->max);
      return false;
    }
    if (isfinite(o->min) && !(c->min >= o->min)) {
      snprintf(why, whylen, "%s min %g < %g", name, c->min, o->min);
      return false;
    }
    if (c->hysteresis < o->hysteresis) {
      snprintf(why, whylen, "%s hysteresis %g < %g", name, c->hysteresis, o->hysteresis);
      return false;
    }
    bool later = o->persist_for_ms > 0
                     ? c->persist_for_ms <= 0 || c->persist_for_ms > o->persist_for_ms
                     : c->persist_for_ms > 0 || c->persist > o->persist;
    if (later) {
      snprintf(why, whylen, "%s trips later (persist %lld, persist_for %lld ms vs %lld, %lld ms)",
               name, (long long)c->persist, (long long)c->persist_for_ms, (long long)o->persist,
               (long long)o->persist_for_ms);
      return false;
    }
  }
  return true;
}
