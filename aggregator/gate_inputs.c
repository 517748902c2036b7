/* Reading a gate check's input from the rack's state (see gate_inputs.h):
 * the latest values or the agents' window statistics of every member of
 * the series, retired devices left out, combined by members.c. */
#include "gate_inputs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "members.h"

const char *const gate_stat_label[] = {"latest", "p50", "p95", "p99",
                                       "mean",   "min", "max", "slope"};

/* A member known from the latest values: for statistics, every device that
 * reports the series must also bring its statistics. */
struct member_ref {
  char key[RP_SERIES_KEY_MAX + 1];
  char unit[24];
  bool seen;
};

static void add_retired(struct gate_retired_list *rl, const char *device, int64_t retired_ms,
                        bool by_sample) {
  if (rl->n == rl->cap) {
    size_t cap = rl->cap ? rl->cap * 2 : 4;
    struct retired *grown = realloc(rl->d, cap * sizeof(*grown));
    if (grown == NULL)
      return; /* the device stays a member: fails closed */
    rl->d = grown;
    rl->cap = cap;
  }
  snprintf(rl->d[rl->n].device, sizeof(rl->d[rl->n].device), "%s", device);
  rl->d[rl->n].by_sample = by_sample;
  rl->d[rl->n++].retired_ms = retired_ms;
}

void gate_on_retired(void *ctx, const char *device, const struct store_retired *t) {
  add_retired(ctx, device, t->retired_ms, false);
}

void gate_add_site_retired(struct gate_retired_list *rl, const char *device, int64_t retired_ms) {
  add_retired(rl, device, retired_ms, true);
}

/* Whether a member (series key) is of a retired device and has nothing
 * newer than its retirement; `data_ms` is its newest data on the
 * aggregator's clock. */
bool gate_is_retired(const struct gate_retired_list *rl, const char *key, int64_t data_ms,
                     int64_t sample_ms) {
  if (rl == NULL || rl->n == 0)
    return false;
  char device[RP_ID_MAX + 1];
  rp_member_device(key, device, sizeof(device));
  for (size_t i = 0; i < rl->n; i++)
    if (strcmp(rl->d[i].device, device) == 0)
      return (rl->d[i].by_sample ? sample_ms : data_ms) <= rl->d[i].retired_ms;
  return false;
}

struct collect {
  const struct gate_retired_list *retired;
  const struct rp_check_limits *l;
  size_t name_len;
  struct rp_members *m;
  struct member_ref *refs; /* stats only: the members' units */
  size_t nrefs, cap_refs;
  bool oom;
};

bool gate_name_matches(const char *key, const char *name, size_t len) {
  return strncmp(key, name, len) == 0 && (key[len] == '{' || key[len] == '@' || key[len] == '|');
}

static void on_latest(void *ctx, const char *key, const struct store_latest *l) {
  struct collect *c = ctx;
  if (!gate_name_matches(key, c->l->series, c->name_len) ||
      gate_is_retired(c->retired, key, l->received_ms, l->ts_ms))
    return;
  rp_members_add(c->m, key, l->status, l->detail, l->value, l->unit, l->ts_ms, l->received_ms);
}

/* Remembers a member's unit for its statistics. */
static void on_latest_ref(void *ctx, const char *key, const struct store_latest *l) {
  struct collect *c = ctx;
  if (!gate_name_matches(key, c->l->series, c->name_len) || c->oom ||
      gate_is_retired(c->retired, key, l->received_ms, l->ts_ms))
    return;
  if (c->nrefs == c->cap_refs) {
    size_t cap = c->cap_refs ? c->cap_refs * 2 : 8;
    struct member_ref *grown = realloc(c->refs, cap * sizeof(*grown));
    if (grown == NULL) {
      c->oom = true;
      return;
    }
    c->refs = grown;
    c->cap_refs = cap;
  }
  struct member_ref *r = &c->refs[c->nrefs++];
  snprintf(r->key, sizeof(r->key), "%s", key);
  snprintf(r->unit, sizeof(r->unit), "%s", l->unit);
  r->seen = false;
}

static double pick_stat(const struct store_stats *st, enum rp_stat stat, bool *ok) {
  *ok = true;
  switch (stat) {
  case RP_STAT_P50: return st->p50;
  case RP_STAT_P95: return st->p95;
  case RP_STAT_P99: return st->p99;
  case RP_STAT_MEAN: return st->mean;
  case RP_STAT_MIN: return st->min;
  case RP_STAT_MAX: return st->max;
  case RP_STAT_SLOPE: *ok = st->has_slope; return st->slope_per_min;
  case RP_STAT_LATEST: break;
  }
  *ok = false;
  return NAN;
}

static void on_stats(void *ctx, const char *key, const struct store_stats *st) {
  struct collect *c = ctx;
  if (!gate_name_matches(key, c->l->series, c->name_len) ||
      (int64_t)st->window_s * 1000 != c->l->window_ms)
    return;
  /* The newest sample on the aggregator's clock (shifted by the frame's
   * skew): a dead device's statistics, still sent, stay retired. */
  int64_t newest =
      st->newest_ms > 0 ? st->newest_ms + (st->received_ms - st->ts_ms) : st->received_ms;
  if (gate_is_retired(c->retired, key, newest, st->newest_ms > 0 ? st->newest_ms : st->ts_ms))
    return;
  /* The member's unit, from its latest value ("series key|window"). */
  const char *unit = "";
  size_t klen = strcspn(key, "|");
  for (size_t i = 0; i < c->nrefs; i++) {
    if (strlen(c->refs[i].key) == klen && strncmp(c->refs[i].key, key, klen) == 0) {
      c->refs[i].seen = true;
      unit = c->refs[i].unit;
      break;
    }
  }
  bool ok;
  double v = pick_stat(st, c->l->stat, &ok);
  if (!ok || !isfinite(v) || st->count == 0) {
    char what[96];
    snprintf(what, sizeof(what), "no %s over the %u s window yet",
             c->l->stat == RP_STAT_SLOPE ? "slope" : "statistics", st->window_s);
    rp_members_fail(c->m, key, what);
    return;
  }
  /* Statistics are as fresh as their newest sample (agents that predate
   * newest_ms: the frame's time). */
  int64_t ts = st->newest_ms > 0 ? st->newest_ms : st->ts_ms;
  rp_members_add(c->m, key, 0, "", v, unit, ts, st->received_ms);
}

/* Reads a check's value: every member of the rack's series (latest, or the
 * statistic over the window), each fresh and valid, normalised and
 * combined. On no value, out->why says why, naming the device. */
void gate_read_value(struct store_read *r, const char *rack,
                     const struct gate_retired_list *retired, const struct rp_check_limits *l,
                     int64_t now_ms, int64_t max_age_ms, struct gate_value *out) {
  memset(out, 0, sizeof(*out));
  struct rp_members m = {
      .across = l->across, .now_ms = now_ms, .max_age_ms = max_age_ms, .series = l->series};
  struct collect c = {.retired = retired, .l = l, .name_len = strlen(l->series), .m = &m};
  if (l->stat == RP_STAT_LATEST) {
    store_read_each_latest(r, rack, on_latest, &c);
  } else {
    store_read_each_latest(r, rack, on_latest_ref, &c);
    store_read_each_stats(r, rack, on_stats, &c);
    char what[96];
    snprintf(what, sizeof(what), "no %s over the %lld s window reported", gate_stat_label[l->stat],
             (long long)(l->window_ms / 1000));
    for (size_t i = 0; i < c.nrefs; i++)
      if (!c.refs[i].seen)
        rp_members_fail(&m, c.refs[i].key, what); /* an expected member is absent */
    if (c.oom)
      rp_members_fail(&m, l->series, "out of memory reading the members");
    free(c.refs);
  }
  out->had_members = m.n > 0 || m.failed;
  out->have = rp_members_ok(&m);
  out->v = m.v;
  out->ts_ms = m.ts_ms;
  snprintf(out->unit, sizeof(out->unit), "%s", m.unit);
  snprintf(out->why, sizeof(out->why), "%s", m.why);
  if (!out->have && !m.failed && l->stat != RP_STAT_LATEST)
    snprintf(out->why, sizeof(out->why), "no %s of %s reported", gate_stat_label[l->stat],
             l->series);
}
