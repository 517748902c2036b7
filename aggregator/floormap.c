/* The floor map behind the incident-map page (web.c): every rack of the
 * policy and every rack that reported, each with its row and cooling loop,
 * the gate's decision for 0 kW (neither audited nor counted in the gate's
 * metrics: a view, not a request for work), its power and thermal headroom with their limits, supply
 * temperature and its slope, the time left to the supply limit at that
 * slope, ΔT, its flags, its failing checks and its missing evidence (checks
 * without a value, devices down or silent, no frame at all). One request
 * answers the whole floor; `rack` narrows it to one rack and adds that
 * rack's checks with values and limits for the detail view. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "gate.h"
#include "rackpulse/clock.h"

struct floor_rack {
  char id[RP_ID_MAX + 1];
  char row[32], loop[32], pool[64], class_name[32];
  double cdu_capacity_kw;
  int64_t max_staleness_ms;
};

struct floor_list {
  const char *only; /* NULL: every rack */
  struct floor_rack *r;
  size_t n, cap;
};

static struct floor_rack *floor_add(struct floor_list *l, const char *id) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->r[i].id, id) == 0)
      return NULL;
  if (l->only != NULL && strcmp(l->only, id) != 0)
    return NULL;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    struct floor_rack *grown = realloc(l->r, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    l->r = grown;
    l->cap = cap;
  }
  struct floor_rack *f = &l->r[l->n++];
  memset(f, 0, sizeof(*f));
  snprintf(f->id, sizeof(f->id), "%s", id);
  f->cdu_capacity_kw = NAN;
  return f;
}

static void from_policy(void *ctx, const struct rp_policy *p) {
  struct floor_list *l = ctx;
  for (size_t i = 0; i < p->nracks; i++) {
    const struct rp_rack_meta *m = &p->racks[i];
    struct floor_rack *f = floor_add(l, m->id);
    if (f == NULL)
      continue;
    snprintf(f->row, sizeof(f->row), "%s", m->row);
    snprintf(f->loop, sizeof(f->loop), "%s", m->loop);
    snprintf(f->pool, sizeof(f->pool), "%s", m->pool);
    snprintf(f->class_name, sizeof(f->class_name), "%s", m->class_name);
    f->cdu_capacity_kw = m->cdu_capacity_kw;
    f->max_staleness_ms = m->set.max_staleness_ms;
  }
}

static void staleness_default(void *ctx, const struct rp_policy *p) {
  *(int64_t *)ctx = p->defaults.max_staleness_ms;
}

static void from_store(void *ctx, const char *rack, const struct store_rack *rk) {
  (void)rk;
  floor_add(ctx, rack);
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

/* A check's field as a JSON number, or null. */
static json_t *check_num(const json_t *d, const char *check, const char *field) {
  const json_t *c = find_check(d, check);
  const json_t *v = c ? json_object_get(c, field) : NULL;
  return json_is_number(v) ? json_real(json_number_value(v)) : json_null();
}

struct devices {
  json_t *missing;
  int64_t now_ms, max_age_ms;
};

/* A device that is down, or has not reported within the staleness limit. */
static void on_device(void *ctx, const char *device, const struct store_device *d) {
  struct devices *ds = ctx;
  int64_t age = ds->now_ms - (d->received_ms > 0 ? d->received_ms : d->reported_ms);
  if (!d->up)
    json_array_append_new(ds->missing,
                          json_sprintf("%s (%s): down: %s", device, d->kind,
                                       d->last_error[0] ? d->last_error : "no answer"));
  else if (ds->max_age_ms > 0 && age > ds->max_age_ms)
    json_array_append_new(ds->missing, json_sprintf("%s (%s): stale: no report for %.0f s", device,
                                                    d->kind, (double)age / 1000.0));
}

/* The slope of the supply temperature (°C/min): the supply_slope check's
 * value, else the agents' 300 s (then 60 s) window of the check's series. */
static double supply_slope(struct store_read *r, const char *rack, const json_t *d) {
  const json_t *c = find_check(d, "supply_slope");
  const json_t *v = c ? json_object_get(c, "observed") : NULL;
  if (json_is_number(v))
    return json_number_value(v);
  struct store_stats st;
  if (r != NULL && (store_read_stats_by_name(r, rack, "cdu.supply_temp", 300, &st) == 0 ||
                    store_read_stats_by_name(r, rack, "cdu.supply_temp", 60, &st) == 0))
    return st.has_slope ? st.slope_per_min : NAN;
  return NAN;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *rack_entry(struct rp_aggregator *a, struct store_read *r, const struct floor_rack *f,
                          bool with_checks, int64_t now_ms) {
  struct rp_gate_request q = {.rack = f->id, .kw = 0, .uncounted = true};
  int status;
  char err[256];
  json_t *d = rp_gate_evaluate(a->gate, a->store, a->ledger, &q, now_ms, &status, err, sizeof(err));
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "rack", f->id, "row", f->row, "loop", f->loop,
                        "pool", f->pool, "class", f->class_name);
  json_t *failing = json_array(), *missing = json_array(), *flags = json_array();
  struct store_rack rk;
  bool known = r != NULL && store_read_rack(r, f->id, &rk) == 0;
  json_object_set_new(
      o, "age_s", known ? json_real((double)(now_ms - rk.last_frame_ms) / 1000.0) : json_null());
  if (d == NULL) {
    json_object_set_new(o, "decision", json_string(status == 404 ? "unknown" : "error"));
    json_array_append_new(missing,
                          json_string(status == 404 ? "no frame from this rack yet" : err));
  } else {
    json_object_set_new(o, "decision", json_copy(json_object_get(d, "decision")));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(d, "checks"), i, c) {
      const char *name = json_string_value(json_object_get(c, "name"));
      const char *reason = json_string_value(json_object_get(c, "reason"));
      if (!json_is_true(json_object_get(c, "pass")))
        json_array_append_new(failing, json_pack("{s:s, s:s}", "check", name ? name : "?", "reason",
                                                 reason ? reason : "failed"));
      /* Evidence missing: a check that fails for want of a value (one that
       * passes without it, fail_closed off, is not an incident). */
      if (json_is_null(json_object_get(c, "observed")) && reason != NULL &&
          !json_is_true(json_object_get(c, "pass")))
        json_array_append_new(missing, json_sprintf("%s: %s", name ? name : "?", reason));
    }
  }
  struct devices ds = {.missing = missing, .now_ms = now_ms, .max_age_ms = f->max_staleness_ms};
  if (known)
    store_read_each_device(r, f->id, on_device, &ds);
  json_t *all = rp_ledger_flag_list(a->ledger, f->id), *fl;
  size_t i;
  json_array_foreach(all, i, fl) {
    if (json_integer_value(json_object_get(fl, "expires_ms")) > now_ms)
      json_array_append(flags, json_object_get(fl, "flag"));
  }
  json_decref(all);
  json_object_set_new(o, "power_headroom_kw",
                      d ? check_num(d, "power_headroom", "observed") : json_null());
  json_object_set_new(o, "power_limit_kw",
                      d ? check_num(d, "power_headroom", "derated_limit_kw") : json_null());
  json_object_set_new(o, "thermal_headroom_kw",
                      d ? check_num(d, "thermal_headroom", "observed") : json_null());
  json_object_set_new(o, "thermal_capacity_kw", num(f->cdu_capacity_kw));
  json_object_set_new(o, "supply_temp", d ? check_num(d, "supply_temp", "observed") : json_null());
  json_object_set_new(o, "supply_limit", d ? check_num(d, "supply_temp", "limit") : json_null());
  json_object_set_new(o, "delta_t", d ? check_num(d, "delta_t", "observed") : json_null());
  double slope = d ? supply_slope(r, f->id, d) : NAN;
  json_object_set_new(o, "supply_slope_per_min", num(slope));
  /* What may fail next: minutes to the supply limit at the current slope. */
  double supply = json_number_value(json_object_get(o, "supply_temp"));
  double limit = json_number_value(json_object_get(o, "supply_limit"));
  bool rising = json_is_number(json_object_get(o, "supply_temp")) &&
                json_is_number(json_object_get(o, "supply_limit")) && isfinite(slope) &&
                slope > 0 && supply < limit;
  json_object_set_new(o, "time_to_limit_min",
                      rising ? json_real((limit - supply) / slope) : json_null());
  json_object_set_new(o, "flags", flags);
  json_object_set_new(o, "failing", failing);
  json_object_set_new(o, "missing", missing);
  if (with_checks)
    json_object_set_new(o, "checks", d ? json_incref(json_object_get(d, "checks")) : json_array());
  json_decref(d);
  return o;
}

json_t *rp_floormap(struct rp_aggregator *a, const char *only, int64_t now_ms) {
  struct floor_list l = {.only = only};
  rp_gate_with_policy(a->gate, from_policy, &l);
  int64_t def_staleness = 0;
  rp_gate_with_policy(a->gate, staleness_default, &def_staleness);
  struct store_read *r = NULL;
  if (store_read_begin(a->store, &r) == 0)
    store_read_each_rack(r, from_store, &l);
  else
    r = NULL;
  json_t *racks = json_array();
  for (size_t i = 0; i < l.n; i++) {
    if (l.r[i].max_staleness_ms == 0)
      l.r[i].max_staleness_ms = def_staleness;
    json_array_append_new(racks, rack_entry(a, r, &l.r[i], only != NULL, now_ms));
  }
  if (r != NULL)
    store_read_end(r);
  free(l.r);
  char version[64];
  rp_gate_policy_version(a->gate, version, sizeof(version));
  return json_pack("{s:o, s:s, s:I}", "racks", racks, "policy_version", version, "generated_ms",
                   (json_int_t)now_ms);
}
