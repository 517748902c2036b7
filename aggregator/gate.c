/* The deploy gate (see gate.h). A check reads its value from the rack's
 * state in LMDB (latest values or the agents' window statistics), combines
 * devices (max, min or sum), compares it with its band, and runs it through
 * a small state machine that gives persistence and hysteresis. */
#include "gate.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "electrical.h"
#include "gate_inputs.h"
#include "members.h"
#include "reservations.h"

/* Per rack and check: the trip state machine. */
struct check_state {
  bool tripped;
  int64_t bad_since_ms;   /* first sample of the current out-of-band run, 0 = none */
  int64_t bad_count;      /* samples in that run */
  int64_t last_sample_ms; /* newest sample already counted */
};

/* Trip state of one rack under one set of limits: the rack's own (class
 * "") or a class a request asked for by name. Each is allocated on its own
 * and never moves or goes away before the gate does, so an evaluation may
 * keep its pointer after state_lock is released; its fields are only read
 * or written with state_lock held. */
struct rack_state {
  char rack[RP_ID_MAX + 1];
  char class_name[RP_ID_MAX + 1];
  struct check_state check[RP_CHECK_COUNT];
};

/* Names a denial is counted under: telemetry_fresh, flags, then the checks
 * (power and thermal under their answer names). */
static const char *const denial_names[] = {
    "telemetry_fresh",  "flags",      "supply_temp", "supply_slope",  "inlet_slope",
    "delta_t",          "flow",       "alarms",      "heat_balance",  "power_headroom",
    "thermal_headroom", "clock_skew", "feed_power",  "phase_current", "branch_current",
    "row_power",        "pool_power", "loop_thermal"};
#define NDENIALS (sizeof(denial_names) / sizeof(denial_names[0]))

struct rp_gate {
  _Atomic uint64_t allowed, denied;
  _Atomic uint64_t denials[NDENIALS];
  pthread_rwlock_t policy_lock;
  struct rp_policy *policy;
  pthread_mutex_t state_lock;
  struct rack_state **states; /* sorted by rack id, then class */
  size_t nstates, cap_states;
};

int rp_gate_new(struct rp_policy *policy, struct rp_gate **out) {
  struct rp_gate *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return -ENOMEM;
  g->policy = policy;
  pthread_rwlock_init(&g->policy_lock, NULL);
  pthread_mutex_init(&g->state_lock, NULL);
  *out = g;
  return 0;
}

void rp_gate_free(struct rp_gate *g) {
  if (g == NULL)
    return;
  rp_policy_free(g->policy);
  pthread_rwlock_destroy(&g->policy_lock);
  pthread_mutex_destroy(&g->state_lock);
  for (size_t i = 0; i < g->nstates; i++)
    free(g->states[i]);
  free(g->states);
  free(g);
}

int rp_gate_reload(struct rp_gate *g, const char *path, char *err, size_t errlen) {
  struct rp_policy *next;
  int rc = rp_policy_load(path, &next, err, errlen);
  if (rc != 0)
    return rc;
  pthread_rwlock_wrlock(&g->policy_lock);
  struct rp_policy *old = g->policy;
  g->policy = next;
  pthread_rwlock_unlock(&g->policy_lock);
  rp_policy_free(old);
  return 0;
}

void rp_gate_policy_version(struct rp_gate *g, char *out, size_t len) {
  pthread_rwlock_rdlock(&g->policy_lock);
  snprintf(out, len, "%s", g->policy->version);
  pthread_rwlock_unlock(&g->policy_lock);
}

void rp_gate_with_policy(struct rp_gate *g, void (*fn)(void *ctx, const struct rp_policy *p),
                         void *ctx) {
  pthread_rwlock_rdlock(&g->policy_lock);
  fn(ctx, g->policy);
  pthread_rwlock_unlock(&g->policy_lock);
}

static int state_cmp(const struct rack_state *st, const char *rack, const char *class_name) {
  int c = strcmp(st->rack, rack);
  return c != 0 ? c : strcmp(st->class_name, class_name);
}

/* The state of `rack` under `class_name` ("" for the rack's own limits),
 * created on first use. Call with state_lock held. The array of pointers
 * may move as racks are added; the states it points to never do. */
static struct rack_state *rack_state(struct rp_gate *g, const char *rack, const char *class_name) {
  size_t lo = 0, hi = g->nstates;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = state_cmp(g->states[mid], rack, class_name);
    if (c == 0)
      return g->states[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (g->nstates == g->cap_states) {
    size_t cap = g->cap_states ? g->cap_states * 2 : 64;
    struct rack_state **grown = realloc(g->states, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    g->states = grown;
    g->cap_states = cap;
  }
  struct rack_state *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return NULL;
  snprintf(st->rack, sizeof(st->rack), "%s", rack);
  snprintf(st->class_name, sizeof(st->class_name), "%s", class_name);
  memmove(&g->states[lo + 1], &g->states[lo], (g->nstates - lo) * sizeof(*g->states));
  g->states[lo] = st;
  g->nstates++;
  return st;
}

/* ---- the trip state machine ---- */

/* Advances `st` with a sample at ts (counted once per sample). Returns
 * whether the check is tripped now. */
static bool advance(struct check_state *st, const struct rp_check_limits *l, bool out_of_band,
                    bool clear_ok, int64_t ts) {
  bool new_sample = ts > st->last_sample_ms;
  if (new_sample)
    st->last_sample_ms = ts;
  if (out_of_band) {
    if (st->bad_since_ms == 0) {
      st->bad_since_ms = ts;
      st->bad_count = 0;
    }
    if (new_sample || st->bad_count == 0)
      st->bad_count++;
    bool long_enough = l->persist_for_ms > 0 ? ts - st->bad_since_ms >= l->persist_for_ms
                                             : st->bad_count >= l->persist;
    if (long_enough)
      st->tripped = true;
  } else {
    st->bad_since_ms = 0;
    st->bad_count = 0;
    if (st->tripped && clear_ok)
      st->tripped = false;
  }
  return st->tripped;
}

/* ---- the checks ---- */

struct eval {
  struct rp_gate *g;
  struct store_read *r;
  struct rp_ledger *ledger;
  const struct rp_gate_request *q;
  const struct rp_policy_set *set;
  const struct rp_rack_meta *meta;
  struct rack_state *state;         /* NULL when state could not be kept */
  struct gate_retired_list retired; /* devices retired from the rack's inputs */
  int64_t now_ms;
  json_t *checks;
  bool allow;
  bool have_commitment;            /* commitment read (power or thermal) */
  struct rp_commitment commitment; /* other owners' reservations, read once */
  const json_t *reservations;      /* every reservation, read once (NULL: not yet) */
  json_t *own_reservations;        /* ... when the gate read them itself */
};

/* What other owners' reservations commit over the request's window (read
 * once per evaluation; detail owned by the eval until taken). */
static const struct rp_commitment *commitment(struct eval *e) {
  if (!e->have_commitment) {
    int64_t from = e->q->window_to_ms ? e->q->window_from_ms : e->now_ms;
    int64_t to = e->q->window_to_ms ? e->q->window_to_ms : e->now_ms + e->q->duration_ms;
    if (e->reservations == NULL)
      e->reservations = e->q->reservations != NULL
                            ? e->q->reservations
                            : (e->own_reservations = rp_ledger_res_list(e->ledger));
    rp_reservations_commitment_in(e->reservations, e->r, e->q->rack, e->q->owner, from, to,
                                  e->now_ms, e->set->max_staleness_ms, &e->commitment);
    e->have_commitment = true;
  }
  return &e->commitment;
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void report(struct eval *e, const char *name, double observed, double min, double max,
                   const char *unit, bool pass, const char *reason) {
  json_t *c = json_pack("{s:s, s:o, s:s, s:b}", "name", name, "observed", num_or_null(observed),
                        "unit", unit ? unit : "", "pass", (int)pass);
  if (!isnan(min))
    json_object_set_new(c, "min", json_real(min));
  if (!isnan(max))
    json_object_set_new(c, "limit", json_real(max));
  else if (!isnan(min))
    json_object_set_new(c, "limit", json_real(min));
  if (reason != NULL && reason[0] != '\0')
    json_object_set_new(c, "reason", json_string(reason));
  json_array_append_new(e->checks, c);
  e->allow &= pass;
}

/* A check without a value. fail_closed off lets it pass only when no device
 * ever reported its series (a rack without such a device); a member that
 * has reported and is now stale, in error or absent always fails closed. */
static void missing(struct eval *e, enum rp_check_id id, const char *unit, const char *why,
                    bool had_members) {
  const struct rp_check_limits *l = &e->set->check[id];
  bool pass = !l->fail_closed && !had_members;
  char reason[288];
  snprintf(reason, sizeof(reason), "%s (%s)", why,
           !pass ? "fails closed" : "fail_closed is off: passes");
  /* Named as when it has a value (power and thermal answer as headroom). */
  const char *name = id == RP_CHECK_POWER     ? "power_headroom"
                     : id == RP_CHECK_THERMAL ? "thermal_headroom"
                                              : rp_check_names[id];
  report(e, name, NAN, l->min, l->max, unit, pass, reason);
}

static const char *check_unit(enum rp_check_id id, const char *series_unit) {
  switch (id) {
  case RP_CHECK_SUPPLY_SLOPE:
  case RP_CHECK_INLET_SLOPE: return "Cel/min";
  case RP_CHECK_POWER:
  case RP_CHECK_THERMAL: return "kW";
  default: return series_unit;
  }
}

/* A value within [min, max], with persistence and hysteresis. */
static void band_check(struct eval *e, enum rp_check_id id) {
  const struct rp_check_limits *l = &e->set->check[id];
  struct gate_value v;
  gate_read_value(e->r, e->q->rack, &e->retired, l, e->now_ms, e->set->max_staleness_ms, &v);
  const char *unit = check_unit(id, v.unit);
  if (!v.have) {
    missing(e, id, unit, v.why, v.had_members);
    return;
  }
  bool low = !isnan(l->min) && v.v < l->min;
  bool high = !isnan(l->max) && v.v > l->max;
  bool clear_ok = (isnan(l->min) || v.v >= l->min + l->hysteresis) &&
                  (isnan(l->max) || v.v <= l->max - l->hysteresis);
  bool tripped = low || high;
  if (e->state != NULL) {
    pthread_mutex_lock(&e->g->state_lock);
    tripped = advance(&e->state->check[id], l, low || high, clear_ok, v.ts_ms);
    pthread_mutex_unlock(&e->g->state_lock);
  }
  char reason[192] = "";
  if (tripped && (low || high))
    snprintf(reason, sizeof(reason), "%s %s %s %g", l->series, gate_stat_label[l->stat],
             low ? "below" : "above", low ? l->min : l->max);
  else if (tripped)
    snprintf(reason, sizeof(reason), "back in band but not yet by the hysteresis of %g",
             l->hysteresis);
  else if (low || high)
    snprintf(reason, sizeof(reason), "out of band, not yet persistent (trips after %lld samples)",
             (long long)l->persist);
  report(e, rp_check_names[id], v.v, l->min, l->max, unit, !tripped, reason);
}

struct alarms {
  const struct gate_retired_list *retired;
  size_t name_len;
  const char *series;
  int64_t now_ms, max_age_ms;
  char active[192];
  size_t n, seen;
  char bad[224]; /* the first member that is stale or in error */
};

static void on_alarm(void *ctx, const char *key, const struct store_latest *l) {
  struct alarms *a = ctx;
  if (!gate_name_matches(key, a->series, a->name_len) || key[a->name_len] != '{' ||
      gate_is_retired(a->retired, key, l->received_ms, l->ts_ms))
    return;
  a->seen++;
  /* A silent or failing device may have a leak it cannot tell: it fails the
   * check like any other member (see members.h). */
  struct rp_members m = {.across = RP_ACROSS_MAX,
                         .now_ms = a->now_ms,
                         .max_age_ms = a->max_age_ms,
                         .series = a->series};
  rp_members_add(&m, key, l->status, l->detail, l->value, l->unit, l->ts_ms, l->received_ms);
  if (!rp_members_ok(&m)) {
    if (a->bad[0] == '\0')
      snprintf(a->bad, sizeof(a->bad), "%s", m.why);
    return;
  }
  if (!(l->value >= 1))
    return;
  const char *eq = strchr(key, '=');
  const char *end = eq ? strpbrk(eq, ",}") : NULL;
  if (eq == NULL || end == NULL)
    return;
  size_t used = strlen(a->active);
  snprintf(a->active + used, sizeof(a->active) - used, "%s%.*s", a->n ? ", " : "",
           (int)(end - eq - 1), eq + 1);
  a->n++;
}

static void alarms_check(struct eval *e) {
  const struct rp_check_limits *l = &e->set->check[RP_CHECK_ALARMS];
  struct alarms a = {.retired = &e->retired,
                     .name_len = strlen(l->series),
                     .series = l->series,
                     .now_ms = e->now_ms,
                     .max_age_ms = e->set->max_staleness_ms};
  store_read_each_latest(e->r, e->q->rack, on_alarm, &a);
  if (a.seen == 0) {
    missing(e, RP_CHECK_ALARMS, "", "no alarm bits reported", false);
    return;
  }
  char reason[288] = "";
  if (a.n > 0)
    snprintf(reason, sizeof(reason), "active: %s", a.active);
  if (a.bad[0] != '\0') {
    size_t used = strlen(reason);
    snprintf(reason + used, sizeof(reason) - used, "%s%s (fails closed)", used ? "; " : "", a.bad);
  }
  /* Without an active alarm, a silent member is missing evidence, not an
   * alarm: the check fails with no observed value, so it denies admission
   * but raises no automatic evacuate flag (events.c). A Kafka outage must
   * not flag every rack of a site for evacuation. */
  double observed = a.n == 0 && a.bad[0] != '\0' ? NAN : (double)a.n;
  report(e, "alarms", observed, NAN, 0, "count", a.n == 0 && a.bad[0] == '\0', reason);
}

/* Power headroom, every watt once (README "Power model"):
 *   committed = Σ max(reserved kW, measured draw) over other owners'
 *               reservations overlapping the window
 *             + unaccounted = max(0, rack draw − what those reservations are
 *               measured to draw now)
 *   headroom  = breaker × derating − committed − margin ≥ requested kW,
 * with rack draw = max(stat draw, current draw). A reservation's draw is
 * measured from its hosts/outlets (reservations.h); one not measured counts
 * in full on top of the rack draw. Missing rack readings fail closed. */
static void power_check(struct eval *e) {
  const struct rp_check_limits *l = &e->set->check[RP_CHECK_POWER];
  const struct rp_rack_meta *m = e->meta;
  if (m == NULL || isnan(m->breaker_kw)) {
    missing(e, RP_CHECK_POWER, "kW", "no breaker_kw for this rack in the policy", false);
    return;
  }
  struct gate_value stat, now;
  gate_read_value(e->r, e->q->rack, &e->retired, l, e->now_ms, e->set->max_staleness_ms, &stat);
  struct rp_check_limits latest = *l;
  latest.stat = RP_STAT_LATEST;
  gate_read_value(e->r, e->q->rack, &e->retired, &latest, e->now_ms, e->set->max_staleness_ms,
                  &now);
  if (!now.have) {
    missing(e, RP_CHECK_POWER, "kW", now.why, now.had_members);
    return;
  }
  if (l->stat != RP_STAT_LATEST && !stat.have) {
    missing(e, RP_CHECK_POWER, "kW", stat.why, stat.had_members || now.had_members);
    return;
  }
  /* Members are normalised to kW (members.h); anything else is not power. */
  if (strcmp(now.unit, "kW") != 0 || (stat.have && strcmp(stat.unit, "kW") != 0)) {
    char why[160];
    snprintf(why, sizeof(why), "%s is in '%s', not a unit of power", l->series,
             strcmp(now.unit, "kW") != 0 ? now.unit : stat.unit);
    missing(e, RP_CHECK_POWER, "kW", why, true);
    return;
  }
  double draw = now.v;
  if (stat.have && stat.v > draw)
    draw = stat.v;
  const struct rp_commitment c = *commitment(e);
  double unaccounted = draw - c.attributed_kw;
  if (!(unaccounted > 0))
    unaccounted = 0;
  double committed = c.committed_kw + unaccounted;
  double limit = m->breaker_kw * m->derating;
  double margin = e->set->power_margin_kw;
  double headroom = limit - committed - margin;
  bool pass = headroom >= e->q->kw;
  char reason[288];
  snprintf(reason, sizeof(reason),
           "breaker %.1f kW x derating %.2f - committed %.2f kW (reservations of others %.2f kW "
           "as max(reserved, measured) + unaccounted draw %.2f kW of %.2f kW measured) - "
           "margin %.1f kW; request %.2f kW",
           m->breaker_kw, m->derating, committed, c.committed_kw, unaccounted, draw, margin,
           e->q->kw);
  report(e, "power_headroom", headroom, e->q->kw, NAN, "kW", pass, reason);
  json_t *o = json_array_get(e->checks, json_array_size(e->checks) - 1);
  json_object_set_new(o, "breaker_kw", json_real(m->breaker_kw));
  json_object_set_new(o, "derating", json_real(m->derating));
  json_object_set_new(o, "derated_limit_kw", json_real(limit));
  json_object_set_new(o, "draw_kw", json_real(draw));
  json_object_set_new(o, "reserved_kw", json_real(c.reserved_kw));
  json_object_set_new(o, "reservations_committed_kw", json_real(c.committed_kw));
  json_object_set_new(o, "reservations_measured_kw", json_real(c.attributed_kw));
  json_object_set_new(o, "unaccounted_kw", json_real(unaccounted));
  json_object_set_new(o, "committed_kw", json_real(committed));
  json_object_set_new(o, "margin_kw", json_real(margin));
  json_object_set_new(o, "request_kw", json_real(e->q->kw));
  json_object_set(o, "reservations", c.detail);
}

/* Thermal headroom = CDU rated capacity − heat removed now − the heat of
 * other owners' reservations not yet drawn (heat_fraction × (committed −
 * measured)) ≥ heat_fraction × requested kW: work that will land on the
 * rack counts as heat before it runs. */
static void thermal_check(struct eval *e) {
  const struct rp_check_limits *l = &e->set->check[RP_CHECK_THERMAL];
  if (e->meta == NULL || isnan(e->meta->cdu_capacity_kw)) {
    missing(e, RP_CHECK_THERMAL, "kW", "no cdu_capacity_kw for this rack in the policy", false);
    return;
  }
  struct gate_value v;
  gate_read_value(e->r, e->q->rack, &e->retired, l, e->now_ms, e->set->max_staleness_ms, &v);
  if (!v.have) {
    missing(e, RP_CHECK_THERMAL, "kW", v.why, v.had_members);
    return;
  }
  if (strcmp(v.unit, "kW") != 0) {
    char why[160];
    snprintf(why, sizeof(why), "%s is in '%s', not kW", l->series, v.unit);
    missing(e, RP_CHECK_THERMAL, "kW", why, true);
    return;
  }
  const struct rp_commitment c = *commitment(e);
  double fraction = e->set->heat_fraction;
  double pending = c.committed_kw - c.attributed_kw;
  double reserved_heat = fraction * (pending > 0 ? pending : 0);
  double need = fraction * e->q->kw;
  double headroom = e->meta->cdu_capacity_kw - v.v - reserved_heat;
  char reason[256];
  snprintf(reason, sizeof(reason),
           "CDU capacity %.1f kW - heat removed %.2f kW - heat of reservations not yet drawn "
           "%.2f kW; request %.2f kW x heat_fraction %.2f = %.2f kW",
           e->meta->cdu_capacity_kw, v.v, reserved_heat, e->q->kw, fraction, need);
  report(e, "thermal_headroom", headroom, need, NAN, "kW", headroom >= need, reason);
  json_t *o = json_array_get(e->checks, json_array_size(e->checks) - 1);
  json_object_set_new(o, "cdu_capacity_kw", json_real(e->meta->cdu_capacity_kw));
  json_object_set_new(o, "heat_removed_kw", json_real(v.v));
  json_object_set_new(o, "reserved_heat_kw", json_real(reserved_heat));
  json_object_set_new(o, "heat_fraction", json_real(fraction));
  json_object_set_new(o, "request_heat_kw", json_real(need));
}

/* The rack's feeds, phases, branches and its row, pool and loop totals
 * (electrical.c), with the same reservations as the power check. */
static void topology_checks(struct eval *e) {
  const struct rp_commitment *c = commitment(e);
  const struct rp_elec_request q = {
      .r = e->r,
      .reservations = e->reservations,
      .policy = e->g->policy,
      .meta = e->meta,
      .owner = e->q->owner,
      .kw = e->q->kw,
      .pending_kw = c->committed_kw > c->attributed_kw ? c->committed_kw - c->attributed_kw : 0,
      .heat_fraction = e->set->heat_fraction,
      .power_series = e->set->check[RP_CHECK_POWER].series,
      .heat_series = e->set->check[RP_CHECK_THERMAL].series,
      .from_ms = e->q->window_to_ms ? e->q->window_from_ms : e->now_ms,
      .to_ms = e->q->window_to_ms ? e->q->window_to_ms : e->now_ms + e->q->duration_ms,
      .now_ms = e->now_ms,
      .max_age_ms = e->set->max_staleness_ms};
  e->allow &= rp_electrical_checks(&q, e->checks);
}

/* Operator or automatic flags that stop admissions on the rack. */
/* The retirements of the rack the site's ledger holds (a member that took
 * the rack over has them from the ledger topic, not in its store). */
static void ledger_retired(struct eval *e) {
  json_t *all = rp_ledger_retired_list(e->ledger, e->q->rack), *t;
  size_t i;
  json_array_foreach(all, i, t) {
    const char *device = json_string_value(json_object_get(t, "device"));
    if (device != NULL)
      gate_add_site_retired(&e->retired, device,
                            json_integer_value(json_object_get(t, "retired_ms")));
  }
  json_decref(all);
}

static void flags_check(struct eval *e) {
  json_t *flags = rp_ledger_flag_list(e->ledger, e->q->rack);
  char active[192] = "";
  size_t n = 0, i;
  json_t *f;
  json_array_foreach(flags, i, f) {
    const char *name = json_string_value(json_object_get(f, "flag"));
    if (name == NULL || strcmp(name, "scale-back") == 0 ||
        json_integer_value(json_object_get(f, "expires_ms")) <= e->now_ms)
      continue;
    size_t used = strlen(active);
    snprintf(active + used, sizeof(active) - used, "%s%s (by %s)", n ? ", " : "", name,
             json_string_value(json_object_get(f, "owner")));
    n++;
  }
  json_decref(flags);
  char reason[224] = "";
  if (n > 0)
    snprintf(reason, sizeof(reason), "set: %s", active);
  report(e, "flags", (double)n, NAN, 0, "count", n == 0, reason);
}

/* The rack's newest frame, aged by both its time and its receive time. */
static void fresh_check(struct eval *e, const struct store_rack *rk) {
  double age_s = (double)rp_member_age_ms(e->now_ms, rk->last_frame_ms, rk->received_ms) / 1000.0;
  double limit_s = (double)e->set->max_staleness_ms / 1000.0;
  bool pass = age_s <= limit_s;
  report(e, "telemetry_fresh", age_s, NAN, limit_s, "s", pass,
         pass ? NULL : "no frame from the rack within the limit (fails closed)");
}

/* Clock skew of the rack's agents: the frame time of each device's last
 * report against the aggregator's receive time of it. Devices heard within
 * the staleness limit only (a dead agent is stale already). */
struct skew {
  int64_t now_ms, max_age_ms, tolerance_ms;
  int64_t worst_ms; /* signed skew with the largest magnitude */
  bool any;
  char agent[RP_ID_MAX + 1];
};

static void on_device_skew(void *ctx, const char *device, const struct store_device *d) {
  (void)device;
  struct skew *k = ctx;
  if (d->received_ms <= 0 || k->now_ms - d->received_ms > k->max_age_ms)
    return;
  int64_t skew = rp_clock_skew_ms(d->reported_ms, d->received_ms);
  if (!k->any || llabs(skew) > llabs(k->worst_ms)) {
    k->worst_ms = skew;
    snprintf(k->agent, sizeof(k->agent), "%s", d->agent);
  }
  k->any = true;
}

static void skew_check(struct eval *e, const struct store_rack *rk) {
  struct skew k = {.now_ms = e->now_ms,
                   .max_age_ms = e->set->max_staleness_ms,
                   .tolerance_ms = e->set->clock_skew_ms};
  store_read_each_device(e->r, e->q->rack, on_device_skew, &k);
  if (rk->received_ms > 0 && e->now_ms - rk->received_ms <= k.max_age_ms) {
    int64_t skew = rp_clock_skew_ms(rk->last_frame_ms, rk->received_ms);
    if (!k.any || llabs(skew) > llabs(k.worst_ms)) {
      k.worst_ms = skew;
      snprintf(k.agent, sizeof(k.agent), "%s", rk->agent);
    }
    k.any = true;
  }
  double limit_s = (double)k.tolerance_ms / 1000.0;
  bool bad = k.any && rp_clock_skew_bad(k.worst_ms, k.tolerance_ms);
  char reason[288] = "";
  if (bad && k.worst_ms > 0)
    snprintf(reason, sizeof(reason),
             "agent %s's clock is %.1f s ahead of the aggregator's receive time (tolerance "
             "%.1f s; fails closed)",
             k.agent, (double)k.worst_ms / 1000.0, limit_s);
  else if (bad) /* a clock behind and a slow delivery look alike */
    snprintf(reason, sizeof(reason),
             "agent %s's frames are received %.1f s after their time: its clock is behind, or "
             "delivery is late (tolerance %.1f s; fails closed)",
             k.agent, -(double)k.worst_ms / 1000.0, limit_s);
  report(e, "clock_skew", (double)k.worst_ms / 1000.0, NAN, limit_s, "s", !bad, reason);
}

/* A random 128-bit decision id in hex (getrandom; time and a counter as a
 * fallback). */
static void decision_id(char out[33]) {
  static _Atomic uint64_t counter;
  uint8_t b[16];
  if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
    uint64_t n[2] = {(uint64_t)rp_now_ms(), atomic_fetch_add(&counter, 1)};
    memcpy(b, n, sizeof(b));
  }
  for (int i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

json_t *rp_gate_evaluate(struct rp_gate *g, struct store *s, struct rp_ledger *ledger,
                         const struct rp_gate_request *q, int64_t now_ms, int *http_status,
                         char *err, size_t errlen) {
  struct store_read *r;
  if (store_read_begin(s, &r) != 0) {
    *http_status = 503;
    snprintf(err, errlen, "store unavailable");
    return NULL;
  }
  struct store_rack rk;
  if (store_read_rack(r, q->rack, &rk) != 0) {
    store_read_end(r);
    *http_status = 404;
    snprintf(err, errlen, "unknown rack: no frame from it has been received");
    return NULL;
  }
  pthread_rwlock_rdlock(&g->policy_lock);
  struct eval e = {.g = g, .r = r, .ledger = ledger, .q = q, .now_ms = now_ms, .allow = true};
  e.set = rp_policy_for(g->policy, q->rack, q->class_name, &e.meta);
  if (e.set == NULL) {
    pthread_rwlock_unlock(&g->policy_lock);
    store_read_end(r);
    *http_status = 400;
    snprintf(err, errlen, "class '%s' is not defined in policy %s", q->class_name,
             g->policy->version);
    return NULL;
  }
  /* An unauthenticated caller may tighten the rack's limits with a class,
   * never loosen them. */
  const char *cls = q->class_name != NULL ? q->class_name : "";
  char looser[160];
  if (cls[0] != '\0' && !q->trusted &&
      !rp_policy_set_as_strict(e.set, e.meta != NULL ? &e.meta->set : &g->policy->defaults, looser,
                               sizeof(looser))) {
    pthread_rwlock_unlock(&g->policy_lock);
    store_read_end(r);
    *http_status = 403;
    snprintf(err, errlen,
             "class '%s' is looser than rack %s's own limits (%s); only an authenticated "
             "caller may ask for it",
             cls, q->rack, looser);
    return NULL;
  }
  /* Trip state per rack and class: asking under another class neither
   * resets nor advances the rack's own persistence and hysteresis. */
  pthread_mutex_lock(&g->state_lock);
  e.state = rack_state(g, q->rack, cls);
  pthread_mutex_unlock(&g->state_lock);
  store_read_each_retired(r, q->rack, gate_on_retired, &e.retired);
  ledger_retired(&e);
  e.checks = json_array();
  fresh_check(&e, &rk);
  skew_check(&e, &rk);
  flags_check(&e);
  for (int id = 0; id < RP_CHECK_COUNT; id++) {
    if (!e.set->check[id].enabled)
      continue;
    if (id == RP_CHECK_ALARMS)
      alarms_check(&e);
    else if (id == RP_CHECK_POWER)
      power_check(&e);
    else if (id == RP_CHECK_THERMAL)
      thermal_check(&e);
    else
      band_check(&e, (enum rp_check_id)id);
  }
  if (e.meta != NULL)
    topology_checks(&e);
  if (q->uncounted) {
    /* a view of the floor, not a decision anyone asked for */
  } else if (e.allow) {
    atomic_fetch_add(&g->allowed, 1);
  } else {
    atomic_fetch_add(&g->denied, 1);
    size_t i;
    json_t *c;
    json_array_foreach(e.checks, i, c) {
      const char *name = json_string_value(json_object_get(c, "name"));
      for (size_t k = 0; k < NDENIALS && !json_is_true(json_object_get(c, "pass")); k++)
        if (name != NULL && strcmp(name, denial_names[k]) == 0)
          atomic_fetch_add(&g->denials[k], 1);
    }
  }
  char id[33];
  decision_id(id);
  json_t *d =
      json_pack("{s:s, s:s, s:f, s:I, s:o, s:s, s:s, s:I}", "rack", q->rack, "decision",
                e.allow ? "allow" : "deny", "kw", q->kw, "duration_s",
                (json_int_t)(q->duration_ms / 1000), "checks", e.checks, "policy_version",
                g->policy->version, "decision_id", id, "evaluated_at_ms", (json_int_t)now_ms);
  if (q->class_name != NULL && q->class_name[0] != '\0')
    json_object_set_new(d, "class", json_string(q->class_name));
  else if (e.meta != NULL && e.meta->class_name[0] != '\0')
    json_object_set_new(d, "class", json_string(e.meta->class_name));
  pthread_rwlock_unlock(&g->policy_lock);
  store_read_end(r);
  free(e.retired.d);
  if (e.have_commitment)
    json_decref(e.commitment.detail);
  json_decref(e.own_reservations);
  return d;
}

void rp_gate_metrics(struct rp_gate *g, FILE *out) {
  fprintf(out,
          "# HELP rackpulse_gate_decisions_total Gate decisions by outcome.\n"
          "# TYPE rackpulse_gate_decisions_total counter\n"
          "rackpulse_gate_decisions_total{decision=\"allow\"} %llu\n"
          "rackpulse_gate_decisions_total{decision=\"deny\"} %llu\n"
          "# HELP rackpulse_gate_denials_total Denials by failing check (a denial may "
          "count under several).\n"
          "# TYPE rackpulse_gate_denials_total counter\n",
          (unsigned long long)atomic_load(&g->allowed),
          (unsigned long long)atomic_load(&g->denied));
  for (size_t k = 0; k < NDENIALS; k++)
    fprintf(out, "rackpulse_gate_denials_total{check=\"%s\"} %llu\n", denial_names[k],
            (unsigned long long)atomic_load(&g->denials[k]));
}
