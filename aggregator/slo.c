/* Thermal SLOs (see slo.h): per rack and objective, time above a threshold
 * in a ring of 60 buckets over the period, the burn rate over a shorter
 * window of the same buckets, and the recovery time of every burst. */
#include "slo.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/frame.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NBUCKETS 60
#define MAX_STEP_MS 10000 /* a gap between passes longer than this counts this much */

typedef struct rp_slo_objective O;
static const struct rp_cfg_field obj_fields[] = {
    RP_CFG_STR("name", O, name, NULL, 1, "the objective's name"),
    RP_CFG_STR("class", O, class_name, NULL, 0, "racks of this class (default: every rack)"),
    RP_CFG_STR("check", O, check, NULL, 1, "the gate check whose observed value it follows"),
    RP_CFG_NUM("above", RP_CFG_DOUBLE, O, above, NULL, -1e9, 1e9,
               "the threshold: time above it spends the budget"),
    RP_CFG_NUM("period", RP_CFG_DURATION, O, period_ms, "1h", 60, 86400 * 31,
               "the period the budget covers"),
    RP_CFG_NUM("budget", RP_CFG_DURATION, O, budget_ms, NULL, 0.001, 86400 * 31,
               "time above allowed within the period"),
    RP_CFG_NUM("recovery", RP_CFG_DURATION, O, recovery_ms, "10m", 0.001, 86400,
               "a burst must be back below the threshold within this"),
    RP_CFG_NUM("burn_window", RP_CFG_DURATION, O, burn_window_ms, "5m", 1, 86400 * 31,
               "window of the burn rate"),
};

int rp_slo_parse(const struct rp_cfg_doc *doc, rp_cfg_node node, struct rp_slo_policy *sp,
                 char *err, size_t errlen) {
  memset(sp, 0, sizeof(*sp));
  if (node == 0)
    return 0;
  size_t n = rp_cfg_seq_len(doc, node);
  if (rp_cfg_kind(doc, node) != RP_CFG_SEQUENCE || n > RP_SLO_MAX) {
    rp_cfg_error(doc, node, "slo", err, errlen, "expected a list of at most %d objectives",
                 RP_SLO_MAX);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    char where[32];
    snprintf(where, sizeof(where), "slo[%zu]", i);
    rp_cfg_node item = rp_cfg_seq_item(doc, node, i);
    O o = {.above = NAN};
    int rc = rp_cfg_apply(doc, item, where, obj_fields, N(obj_fields), NULL, &o, err, errlen);
    if (rc != 0)
      return rc;
    if (isnan(o.above)) {
      rp_cfg_error(doc, item, where, err, errlen, "above: the threshold is required");
      return -EINVAL;
    }
    if (o.budget_ms > o.period_ms || o.burn_window_ms > o.period_ms) {
      rp_cfg_error(doc, item, where, err, errlen, "budget and burn_window must fit in period");
      return -EINVAL;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(sp->obj[j].name, o.name) == 0) {
        rp_cfg_error(doc, item, where, err, errlen, "objective '%s' is defined twice", o.name);
        return -EINVAL;
      }
    sp->obj[sp->n++] = o;
  }
  return 0;
}

/* One rack under one objective. */
struct entry {
  char rack[RP_ID_MAX + 1];
  struct rp_slo_objective o; /* as configured when last observed */
  int64_t bucket_ms;
  int64_t above_ms[NBUCKETS];
  int64_t epoch[NBUCKETS]; /* which bucket (time / bucket_ms) each slot holds */
  int64_t last_ms;         /* last observation */
  bool last_above, have_last;
  bool in_burst;
  int64_t burst_start_ms;
  int64_t last_recovery_ms, worst_recovery_ms; /* -1: none yet */
  int64_t worst_at_ms;                         /* when the worst burst ended */
  uint64_t bursts, late_recoveries;
};

struct rp_slo {
  pthread_mutex_t lock;
  struct rp_slo_policy policy;
  struct entry *e;
  size_t n, cap;
  json_t *index; /* "rack\tobjective" -> position in e */
};

int rp_slo_new(struct rp_slo **out) {
  struct rp_slo *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  if ((s->index = json_object()) == NULL) {
    free(s);
    return -ENOMEM;
  }
  pthread_mutex_init(&s->lock, NULL);
  *out = s;
  return 0;
}

void rp_slo_free(struct rp_slo *s) {
  if (s == NULL)
    return;
  pthread_mutex_destroy(&s->lock);
  json_decref(s->index);
  free(s->e);
  free(s);
}

void rp_slo_configure(struct rp_slo *s, const struct rp_slo_policy *sp) {
  pthread_mutex_lock(&s->lock);
  s->policy = *sp;
  pthread_mutex_unlock(&s->lock);
}

static struct entry *entry_of(struct rp_slo *s, const char *rack,
                              const struct rp_slo_objective *o) {
  char key[RP_ID_MAX + 40];
  snprintf(key, sizeof(key), "%s\t%s", rack, o->name);
  json_t *at = json_object_get(s->index, key);
  if (at != NULL)
    return &s->e[json_integer_value(at)];
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct entry *grown = realloc(s->e, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    s->e = grown;
    s->cap = cap;
  }
  json_object_set_new(s->index, key, json_integer((json_int_t)s->n));
  struct entry *e = &s->e[s->n++];
  memset(e, 0, sizeof(*e));
  snprintf(e->rack, sizeof(e->rack), "%s", rack);
  e->last_recovery_ms = e->worst_recovery_ms = -1;
  return e;
}

/* The slot of time t, emptied when it last held an older bucket. */
static int64_t *slot(struct entry *e, int64_t t) {
  int64_t b = t / e->bucket_ms;
  size_t i = (size_t)(b % NBUCKETS);
  if (e->epoch[i] != b) {
    e->epoch[i] = b;
    e->above_ms[i] = 0;
  }
  return &e->above_ms[i];
}

/* Time above within the last `window` ms before now (whole buckets). */
static int64_t above_within(const struct entry *e, int64_t now, int64_t window) {
  int64_t newest = now / e->bucket_ms, oldest = (now - window) / e->bucket_ms, sum = 0;
  for (size_t i = 0; i < NBUCKETS; i++)
    if (e->epoch[i] > oldest && e->epoch[i] <= newest)
      sum += e->above_ms[i];
  return sum;
}

static void observe_one(struct entry *e, const struct rp_slo_objective *o, double v, int64_t now) {
  if (e->bucket_ms != o->period_ms / NBUCKETS) { /* new, or the period changed */
    memset(e->above_ms, 0, sizeof(e->above_ms));
    memset(e->epoch, 0, sizeof(e->epoch));
    e->bucket_ms = o->period_ms / NBUCKETS > 0 ? o->period_ms / NBUCKETS : 1;
  }
  e->o = *o;
  if (e->have_last && e->last_above && now > e->last_ms) {
    int64_t dt = now - e->last_ms;
    *slot(e, now) += dt < MAX_STEP_MS ? dt : MAX_STEP_MS;
  }
  bool above = isfinite(v) && v > o->above;
  if (above && !e->in_burst) {
    e->in_burst = true;
    e->burst_start_ms = now;
    e->bursts++;
  } else if (!above && isfinite(v) && e->in_burst) {
    e->in_burst = false;
    e->last_recovery_ms = now - e->burst_start_ms;
    if (e->last_recovery_ms > e->worst_recovery_ms) {
      e->worst_recovery_ms = e->last_recovery_ms;
      e->worst_at_ms = now;
    }
    if (e->last_recovery_ms > o->recovery_ms)
      e->late_recoveries++;
  }
  e->have_last = isfinite(v);
  e->last_above = above;
  e->last_ms = now;
}

void rp_slo_observe(struct rp_slo *s, const char *rack, const json_t *decision, int64_t now_ms) {
  if (s == NULL)
    return;
  const char *cls = json_string_value(json_object_get(decision, "class"));
  pthread_mutex_lock(&s->lock);
  for (size_t k = 0; k < s->policy.n; k++) {
    const struct rp_slo_objective *o = &s->policy.obj[k];
    if (o->class_name[0] != '\0' && (cls == NULL || strcmp(cls, o->class_name) != 0))
      continue;
    double v = NAN;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(decision, "checks"), i, c) {
      const char *name = json_string_value(json_object_get(c, "name"));
      json_t *obs = json_object_get(c, "observed");
      if (name != NULL && strcmp(name, o->check) == 0 && json_is_number(obs))
        v = json_number_value(obs);
    }
    struct entry *e = entry_of(s, rack, o);
    if (e != NULL)
      observe_one(e, o, v, now_ms);
  }
  pthread_mutex_unlock(&s->lock);
}

/* An entry's figures at now. */
struct figures {
  double above_s, budget_remaining, burn_rate, burst_s;
  bool met, recovered_in_time;
};

static struct figures figures_of(const struct entry *e, int64_t now) {
  struct figures f = {0};
  const struct rp_slo_objective *o = &e->o;
  int64_t above = above_within(e, now, o->period_ms);
  int64_t recent = above_within(e, now, o->burn_window_ms);
  f.above_s = (double)above / 1000.0;
  f.budget_remaining = 1.0 - (double)above / (double)o->budget_ms;
  double allowed = (double)o->budget_ms / (double)o->period_ms;
  f.burn_rate = ((double)recent / (double)o->burn_window_ms) / allowed;
  f.burst_s = e->in_burst ? (double)(now - e->burst_start_ms) / 1000.0 : 0;
  bool worst_in_period = e->worst_recovery_ms >= 0 && now - e->worst_at_ms <= o->period_ms;
  f.recovered_in_time = !(worst_in_period && e->worst_recovery_ms > o->recovery_ms) &&
                        !(e->in_burst && now - e->burst_start_ms > o->recovery_ms);
  f.met = above <= o->budget_ms && f.recovered_in_time;
  return f;
}

static json_t *seconds_or_null(int64_t ms) {
  return ms >= 0 ? json_real((double)ms / 1000.0) : json_null();
}

json_t *rp_slo_json(struct rp_slo *s, int64_t now_ms) {
  json_t *list = json_array();
  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < s->n; i++) {
    const struct entry *e = &s->e[i];
    const struct rp_slo_objective *o = &e->o;
    struct figures f = figures_of(e, now_ms);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:f, s:o, s:o, s:f, s:I, s:I, "
        "s:b}",
        "rack", e->rack, "objective", o->name, "class", o->class_name, "check", o->check, "above",
        o->above, "period_s", (double)o->period_ms / 1000.0, "budget_s",
        (double)o->budget_ms / 1000.0, "time_above_s", f.above_s, "budget_remaining",
        f.budget_remaining, "burn_rate", f.burn_rate, "in_burst", (int)e->in_burst, "burst_s",
        f.burst_s, "last_recovery_s", seconds_or_null(e->last_recovery_ms), "worst_recovery_s",
        seconds_or_null(e->worst_recovery_ms), "recovery_limit_s", (double)o->recovery_ms / 1000.0,
        "bursts", (json_int_t)e->bursts, "late_recoveries", (json_int_t)e->late_recoveries, "met",
        (int)f.met);
    if (j != NULL)
      json_array_append_new(list, j);
  }
  pthread_mutex_unlock(&s->lock);
  return json_pack("{s:o, s:I}", "objectives", list, "at_ms", (json_int_t)now_ms);
}

void rp_slo_metrics(struct rp_slo *s, FILE *out, int64_t now_ms) {
  if (s == NULL)
    return;
  static const char *const help[][2] = {
      {"rackpulse_slo_time_above_seconds", "Time above the objective's threshold in its period."},
      {"rackpulse_slo_budget_remaining_ratio",
       "Share of the objective's error budget left (negative: overspent)."},
      {"rackpulse_slo_burn_rate", "Error-budget burn rate over the objective's burn window."},
      {"rackpulse_slo_worst_recovery_seconds",
       "Slowest recovery of a burst back below the threshold (-1: none yet)."},
      {"rackpulse_slo_met", "1 while the objective is met."}};
  pthread_mutex_lock(&s->lock);
  /* Nothing at all without objectives: /metrics stays as it was. */
  for (size_t m = 0; m < N(help) && s->n > 0; m++) {
    fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", help[m][0], help[m][1], help[m][0]);
    for (size_t i = 0; i < s->n; i++) {
      const struct entry *e = &s->e[i];
      struct figures f = figures_of(e, now_ms);
      double v = m == 0   ? f.above_s
                 : m == 1 ? f.budget_remaining
                 : m == 2 ? f.burn_rate
                 : m == 3 ? (e->worst_recovery_ms >= 0 ? (double)e->worst_recovery_ms / 1000.0 : -1)
                          : (double)f.met;
      fprintf(out, "%s{rack=\"%s\",objective=\"%s\"} %.6g\n", help[m][0], e->rack, e->o.name, v);
    }
  }
  pthread_mutex_unlock(&s->lock);
}
