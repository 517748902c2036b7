/* Placement: rank racks for a workload of N kW. Every candidate rack (the
 * racks that reported, or those of a pool) goes through the gate; racks
 * the gate denies are excluded with the failing checks as the reason. Each
 * rack, ranked or excluded, carries its gate decision's id (a rack whose
 * evaluation failed has none, only its error). The others are ranked by a
 * score in [0, 1], the weighted sum of
 *
 *   0.40  power      headroom left after the workload ÷ derated limit
 *   0.25  supply     (supply limit − supply temperature) ÷ supply limit
 *   0.15  slope      1 − |supply slope| ÷ slope limit
 *   0.10  flow       1 − 10 × coefficient of variation of the flow (window)
 *   0.10  neighbours 1 − mean power utilization of the other racks in its row
 *
 * each term clipped to [0, 1]; a term without data counts 0.5 (neutral)
 * and says so in the rack's reasons. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "gate.h"

struct candidates {
  const char *pool;
  char (*ids)[RP_ID_MAX + 1];
  char (*rows)[32];
  size_t n, cap;
};

static void add_candidate(struct candidates *c, const char *id, const char *row) {
  if (c->n == c->cap)
    return;
  snprintf(c->ids[c->n], RP_ID_MAX + 1, "%s", id);
  snprintf(c->rows[c->n], 32, "%s", row ? row : "");
  c->n++;
}

static void from_policy(void *ctx, const struct rp_policy *p) {
  struct candidates *c = ctx;
  for (size_t i = 0; i < p->nracks; i++)
    if (c->pool == NULL || strcmp(p->racks[i].pool, c->pool) == 0)
      add_candidate(c, p->racks[i].id, p->racks[i].row);
}

static void from_store(void *ctx, const char *rack, const struct store_rack *rk) {
  (void)rk;
  struct candidates *c = ctx;
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->ids[i], rack) == 0)
      return;
  add_candidate(c, rack, NULL);
}

static const json_t *find_check(const json_t *d, const char *name) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i, c) {
    const char *n = json_string_value(json_object_get(c, "name"));
    if (n != NULL && strcmp(n, name) == 0)
      return c;
  }
  return NULL;
}

static double clip01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* A score term: its value, or 0.5 with a note when the check gave none. */
static double term(const json_t *check, double (*f)(const json_t *), const char *what,
                   json_t *reasons) {
  const json_t *obs = check ? json_object_get(check, "observed") : NULL;
  if (!json_is_number(obs)) {
    json_array_append_new(reasons, json_sprintf("%s: no data, counted neutral", what));
    return 0.5;
  }
  return clip01(f(check));
}

static double power_term(const json_t *c) {
  double headroom = json_number_value(json_object_get(c, "observed"));
  double asked = json_number_value(json_object_get(c, "limit"));
  double limit = json_number_value(json_object_get(c, "derated_limit_kw"));
  return limit > 0 ? (headroom - asked) / limit : 0;
}

static double supply_term(const json_t *c) {
  double v = json_number_value(json_object_get(c, "observed"));
  double limit = json_number_value(json_object_get(c, "limit"));
  return limit > 0 ? (limit - v) / limit : 0;
}

static double slope_term(const json_t *c) {
  double v = json_number_value(json_object_get(c, "observed"));
  double limit = json_number_value(json_object_get(c, "limit"));
  return limit > 0 ? 1 - fabs(v) / limit : 0;
}

/* Flow stability from the agents' 300 s window of cdu.flow. */
static double flow_term(struct store *s, const char *rack, json_t *reasons) {
  struct store_read *r;
  struct store_stats st;
  double out = 0.5;
  if (store_read_begin(s, &r) != 0)
    return out;
  if (store_read_stats_by_name(r, rack, "cdu.flow", 300, &st) == 0 && st.mean > 0 && st.count >= 2)
    out = clip01(1 - 10 * st.stddev / st.mean);
  else
    json_array_append_new(reasons, json_string("flow: no 300 s window, counted neutral"));
  store_read_end(r);
  return out;
}

json_t *rp_placement(struct rp_aggregator *a, double kw, size_t count, const char *pool,
                     const char *class_name, int64_t now_ms) {
  enum { MAX_RACKS = 10000 };
  struct candidates c = {.pool = pool,
                         .ids = calloc(MAX_RACKS, RP_ID_MAX + 1),
                         .rows = calloc(MAX_RACKS, 32),
                         .cap = MAX_RACKS};
  if (c.ids == NULL || c.rows == NULL) {
    free(c.ids);
    free(c.rows);
    return NULL;
  }
  rp_gate_with_policy(a->gate, from_policy, &c);
  if (pool == NULL) {
    struct store_read *r;
    if (store_read_begin(a->store, &r) == 0) {
      store_read_each_rack(r, from_store, &c);
      store_read_end(r);
    }
  }
  /* In a cluster a member ranks only the racks it answers for (its store
   * is not fed for the others); fanout.c merges the members' rankings. */
  size_t kept = 0;
  for (size_t i = 0; i < c.n; i++) {
    if (!rp_cluster_answers(a->cluster, c.ids[i]))
      continue;
    if (kept != i) {
      memcpy(c.ids[kept], c.ids[i], sizeof(c.ids[0]));
      memcpy(c.rows[kept], c.rows[i], sizeof(c.rows[0]));
    }
    kept++;
  }
  c.n = kept;
  /* Every rack's decision first: neighbours need the others' utilization. */
  json_t *decisions = json_array();
  double *util = calloc(c.n + 1, sizeof(double));
  for (size_t i = 0; i < c.n; i++) {
    struct rp_gate_request q = {
        .rack = c.ids[i], .kw = kw, .class_name = class_name, .duration_ms = 0};
    int status;
    char err[256];
    json_t *d =
        rp_gate_evaluate(a->gate, a->store, a->ledger, &q, now_ms, &status, err, sizeof(err));
    if (d == NULL)
      d = json_pack("{s:s, s:s, s:s}", "rack", c.ids[i], "decision", "deny", "error", err);
    const json_t *p = find_check(d, "power_headroom");
    double draw = p ? json_number_value(json_object_get(p, "draw_kw")) : NAN;
    double limit = p ? json_number_value(json_object_get(p, "derated_limit_kw")) : NAN;
    util[i] = limit > 0 ? draw / limit : NAN;
    json_array_append_new(decisions, d);
  }
  json_t *ranked = json_array(), *excluded = json_array();
  for (size_t i = 0; i < c.n; i++) {
    json_t *d = json_array_get(decisions, i);
    const char *decision = json_string_value(json_object_get(d, "decision"));
    if (decision == NULL || strcmp(decision, "allow") != 0) {
      json_t *why = json_array();
      size_t k;
      json_t *chk;
      json_array_foreach(json_object_get(d, "checks"), k, chk) {
        if (json_is_true(json_object_get(chk, "pass")))
          continue;
        const char *reason = json_string_value(json_object_get(chk, "reason"));
        json_array_append_new(why, json_sprintf("%s: %s",
                                                json_string_value(json_object_get(chk, "name")),
                                                reason ? reason : "failed"));
      }
      if (json_object_get(d, "error"))
        json_array_append(why, json_object_get(d, "error"));
      json_t *ex = json_pack("{s:s, s:o}", "rack", c.ids[i], "reasons", why);
      if (json_is_string(json_object_get(d, "decision_id"))) /* none: the gate gave an error */
        json_object_set(ex, "decision_id", json_object_get(d, "decision_id"));
      json_array_append_new(excluded, ex);
      continue;
    }
    json_t *reasons = json_array();
    double power = term(find_check(d, "power_headroom"), power_term, "power", reasons);
    double supply = term(find_check(d, "supply_temp"), supply_term, "supply_temp", reasons);
    double slope = term(find_check(d, "supply_slope"), slope_term, "supply_slope", reasons);
    double flow = flow_term(a->store, c.ids[i], reasons);
    double sum = 0;
    size_t n = 0;
    for (size_t j = 0; j < c.n; j++)
      if (j != i && c.rows[i][0] && strcmp(c.rows[i], c.rows[j]) == 0 && isfinite(util[j])) {
        sum += util[j];
        n++;
      }
    double neighbours = n ? clip01(1 - sum / (double)n) : 0.5;
    if (n == 0)
      json_array_append_new(reasons, json_string("neighbours: none with power data, neutral"));
    double score = 0.40 * power + 0.25 * supply + 0.15 * slope + 0.10 * flow + 0.10 * neighbours;
    json_t *terms = json_pack("{s:f, s:f, s:f, s:f, s:f}", "power", power, "supply_temp", supply,
                              "slope", slope, "flow", flow, "neighbours", neighbours);
    json_array_append_new(ranked,
                          json_pack("{s:s, s:f, s:o, s:o, s:s}", "rack", c.ids[i], "score", score,
                                    "terms", terms, "reasons", reasons, "decision_id",
                                    json_string_value(json_object_get(d, "decision_id"))));
  }
  /* Best first (insertion sort: candidate lists are small). */
  for (size_t i = 1; i < json_array_size(ranked); i++) {
    for (size_t j = i; j > 0; j--) {
      json_t *x = json_array_get(ranked, j - 1), *y = json_array_get(ranked, j);
      if (json_number_value(json_object_get(x, "score")) >=
          json_number_value(json_object_get(y, "score")))
        break;
      json_incref(x);
      json_array_set(ranked, j - 1, y);
      json_array_set_new(ranked, j, x);
    }
  }
  while (json_array_size(ranked) > count)
    json_array_remove(ranked, json_array_size(ranked) - 1);
  free(util);
  free(c.ids);
  free(c.rows);
  json_decref(decisions);
  char version[64];
  rp_gate_policy_version(a->gate, version, sizeof(version));
  return json_pack("{s:f, s:I, s:o, s:o, s:s}", "kw", kw, "count", (json_int_t)count, "racks",
                   ranked, "excluded", excluded, "policy_version", version);
}
