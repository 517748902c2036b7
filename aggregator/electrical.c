/* The gate's topology checks (see electrical.h): feeds, phases and branch
 * breakers of the rack's PDUs, and the row, pool and cooling-loop totals.
 *
 * How the request lands: its kW (plus what reservations commit but do
 * not draw yet) spreads evenly over the feeds (dual-corded servers share
 * their load across both), and over the phases and branches of a feed in
 * the proportions the rack draws now (evenly while it is idle): the
 * circuit that leaves the least room for its share decides. With N+N, when one feed
 * fails its load moves to the same phase and branch of the other: the
 * check then compares the sum of both feeds' currents, phase by phase and
 * branch by branch, with one feed's rating. kW become A at the rack's
 * `volts` (phase to neutral) and a power factor of 1. */
#include "electrical.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "members.h"
#include "reservations.h"

#define MAX_LABELS 48

/* Values of one series of one device, by label value (phase 1, 2, 3). */
struct labelled {
  char label[MAX_LABELS][24];
  double v[MAX_LABELS];
  size_t n;
};

struct feed_read {
  const char *device;
  int64_t now, max_age;
  struct labelled phase, branch;
  double power_kw;
  size_t npower;
  char bad[224]; /* the first reading that is stale or in error */
};

/* The series name of `key` ("name{labels}@device"), its labels part (or
 * "") and its device (or NULL). */
static bool key_is(const char *key, const char *name) {
  size_t n = strlen(name);
  return strncmp(key, name, n) == 0 && (key[n] == '{' || key[n] == '@');
}

static const char *key_device(const char *key) {
  const char *at = strrchr(key, '@');
  return at ? at + 1 : NULL;
}

static bool label_value(const char *key, const char *label, char *out, size_t len) {
  char pat[32];
  snprintf(pat, sizeof(pat), "%s=", label);
  const char *open = strchr(key, '{'), *at = strrchr(key, '@');
  const char *p = open ? strstr(open, pat) : NULL;
  if (p == NULL || (at && p > at) || (p[-1] != '{' && p[-1] != ','))
    return false;
  p += strlen(pat);
  const char *end = strpbrk(p, ",}");
  if (end == NULL)
    return false;
  snprintf(out, len, "%.*s", (int)(end - p), p);
  return true;
}

static void labelled_add(struct labelled *s, const char *label, double v) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->label[i], label) == 0) {
      s->v[i] += v;
      return;
    }
  if (s->n == MAX_LABELS)
    return;
  snprintf(s->label[s->n], sizeof(s->label[0]), "%s", label);
  s->v[s->n++] = v;
}

/* A reading usable as evidence, in kW or A; false with `bad` set (once)
 * when it is stale, in error or in another unit. */
static bool usable(const char *key, const struct store_latest *l, int64_t now, int64_t max_age,
                   const char *want_unit, double *v, char *bad, size_t badlen) {
  const char *why = NULL;
  char text[96];
  if (l->status != 0) {
    snprintf(text, sizeof(text), "in error (%s)", l->detail[0] ? l->detail : "status");
    why = text;
  } else if (!isfinite(l->value)) {
    why = "not a number";
  } else if (rp_member_age_ms(now, l->ts_ms, l->received_ms) > max_age) {
    snprintf(text, sizeof(text), "stale (%.1f s old)",
             (double)rp_member_age_ms(now, l->ts_ms, l->received_ms) / 1000.0);
    why = text;
  } else if (strcmp(rp_unit_normalize(l->unit, l->value, v), want_unit) != 0) {
    snprintf(text, sizeof(text), "in '%s', not %s", l->unit, want_unit);
    why = text;
  }
  if (why != NULL && bad[0] == '\0')
    snprintf(bad, badlen, "%s: %s", key, why);
  return why == NULL;
}

static void on_feed(void *ctx, const char *key, const struct store_latest *l) {
  struct feed_read *f = ctx;
  const char *dev = key_device(key);
  if (dev == NULL || strcmp(dev, f->device) != 0)
    return;
  char label[24];
  double v;
  if (key_is(key, "pdu.phase.current") && label_value(key, "phase", label, sizeof(label))) {
    if (usable(key, l, f->now, f->max_age, "A", &v, f->bad, sizeof(f->bad)))
      labelled_add(&f->phase, label, v);
  } else if (key_is(key, "pdu.breaker.current") &&
             label_value(key, "breaker", label, sizeof(label))) {
    if (usable(key, l, f->now, f->max_age, "A", &v, f->bad, sizeof(f->bad)))
      labelled_add(&f->branch, label, v);
  } else if (key_is(key, "pdu.power")) {
    if (usable(key, l, f->now, f->max_age, "kW", &v, f->bad, sizeof(f->bad))) {
      f->power_kw += v;
      f->npower++;
    }
  }
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* Appends a check; observed is the headroom in the request's kW. */
static bool add_check(json_t *checks, const char *name, double headroom, double request,
                      const char *reason, json_t *terms) {
  bool pass = isfinite(headroom) && headroom >= request;
  json_t *c = json_pack("{s:s, s:o, s:f, s:f, s:s, s:b, s:s, s:o}", "name", name, "observed",
                        jnum(headroom), "min", request, "limit", request, "unit", "kW", "pass",
                        (int)pass, "reason", reason, "request_headroom_kw", jnum(headroom));
  if (c == NULL) {
    json_decref(terms);
    return false;
  }
  if (terms != NULL)
    json_object_update(c, terms);
  json_decref(terms);
  json_array_append_new(checks, c);
  return pass;
}

static bool fail_closed(json_t *checks, const char *name, const char *why) {
  char reason[320];
  snprintf(reason, sizeof(reason), "%s (fails closed)", why);
  return add_check(checks, name, NAN, 0, reason, NULL);
}

/* Reads the feeds' PDUs. Returns the number of feeds, or -1 with why. */
static int read_feeds(const struct rp_elec_request *q, struct feed_read f[2], char *why,
                      size_t len) {
  int n = 0;
  for (int i = 0; i < 2 && q->meta->elec.feed[i][0] != '\0'; i++, n++) {
    memset(&f[i], 0, sizeof(f[i]));
    f[i].device = q->meta->elec.feed[i];
    f[i].now = q->now_ms;
    f[i].max_age = q->max_age_ms;
    store_read_each_latest(q->r, q->meta->id, on_feed, &f[i]);
    if (f[i].bad[0] != '\0') {
      snprintf(why, len, "feed %c (%s): %s", 'A' + i, f[i].device, f[i].bad);
      return -1;
    }
  }
  return n;
}

/* Feed power: per feed, or with N+N the whole rack on one feed. */
static bool feed_check(const struct rp_elec_request *q, const struct feed_read *f, int nfeeds,
                       json_t *checks) {
  const struct rp_rack_electrical *e = &q->meta->elec;
  for (int i = 0; i < nfeeds; i++)
    if (f[i].npower == 0) {
      char why[160];
      snprintf(why, sizeof(why), "feed %c (%s): no pdu.power reading", 'A' + i, f[i].device);
      return fail_closed(checks, "feed_power", why);
    }
  double limit = e->feed_kw * q->meta->derating, total = 0, worst = -INFINITY;
  for (int i = 0; i < nfeeds; i++) {
    total += f[i].power_kw;
    worst = f[i].power_kw > worst ? f[i].power_kw : worst;
  }
  /* N+N: one feed carries everything; otherwise new load splits evenly and
   * the most loaded feed decides. */
  double headroom =
      e->redundant ? limit - total - q->pending_kw : (limit - worst) * nfeeds - q->pending_kw;
  char reason[320];
  snprintf(reason, sizeof(reason),
           "%s: feed %.1f kW x derating %.2f - feeds' draw %.2f kW%s - reservations pending "
           "%.2f kW; request %.2f kW",
           e->redundant ? "N+N (one feed carries the rack)" : "per feed", e->feed_kw,
           q->meta->derating, e->redundant ? total : worst,
           e->redundant ? "" : " (most loaded feed, x feeds)", q->pending_kw, q->kw);
  json_t *draws = json_array();
  for (int i = 0; i < nfeeds; i++)
    json_array_append_new(draws, json_pack("{s:s, s:f}", "pdu", f[i].device, "kw", f[i].power_kw));
  return add_check(checks, "feed_power", headroom, q->kw, reason,
                   json_pack("{s:f, s:f, s:b, s:o, s:f}", "feed_kw", e->feed_kw, "derated_limit_kw",
                             limit, "redundant", (int)e->redundant, "feeds", draws, "pending_kw",
                             q->pending_kw));
}

/* Phase or branch current: the worst label (with N+N, the sum of both
 * feeds' same label) against rating × derating. */
static bool current_check(const struct rp_elec_request *q, const struct feed_read *f, int nfeeds,
                          bool branch, json_t *checks) {
  const struct rp_rack_electrical *e = &q->meta->elec;
  const char *name = branch ? "branch_current" : "phase_current";
  const char *what = branch ? "pdu.breaker.current" : "pdu.phase.current";
  struct labelled sum = {0};
  for (int i = 0; i < nfeeds; i++) {
    const struct labelled *s = branch ? &f[i].branch : &f[i].phase;
    if (s->n == 0) {
      char why[160];
      snprintf(why, sizeof(why), "feed %c (%s): no %s reading", 'A' + i, f[i].device, what);
      return fail_closed(checks, name, why);
    }
    for (size_t k = 0; k < s->n; k++) {
      /* N+N adds both feeds' currents; otherwise the worst feed counts. */
      size_t j;
      for (j = 0; j < sum.n && strcmp(sum.label[j], s->label[k]) != 0; j++)
        ;
      if (e->redundant || j == sum.n)
        labelled_add(&sum, s->label[k], s->v[k]);
      else if (s->v[k] > sum.v[j])
        sum.v[j] = s->v[k];
    }
  }
  double rating = branch ? e->branch_amps : e->phase_amps;
  double limit_a = rating * q->meta->derating;
  /* New load lands on the circuits in the proportions the rack draws now
   * (evenly while it draws under 0.1 A a circuit); kW that fit on circuit l:
   * its spare amps x V ÷ its share, the least over the circuits. Without
   * N+N each feed takes its share of the new load. */
  double total = 0;
  for (size_t j = 0; j < sum.n; j++)
    total += sum.v[j];
  bool even = total < 0.1 * (double)sum.n;
  double feeds = e->redundant ? 1 : nfeeds, best = INFINITY;
  size_t worst = 0;
  for (size_t j = 0; j < sum.n; j++) {
    double share = even ? 1.0 / (double)sum.n : sum.v[j] / total;
    if (share <= 0)
      continue;
    double fit = (limit_a - sum.v[j]) * e->volts * feeds / (1000.0 * share);
    if (fit < best) {
      best = fit;
      worst = j;
    }
  }
  double share = even ? 1.0 / (double)sum.n : sum.v[worst] / total;
  double headroom = best - q->pending_kw;
  char reason[320];
  snprintf(reason, sizeof(reason),
           "%s %s%s: %.2f A%s of %.1f A x derating %.2f, %.1f %% of new load (%s) x %.0f V%s - "
           "reservations pending %.2f kW; request %.2f kW",
           branch ? "branch" : "phase", sum.label[worst], e->redundant ? " (N+N: both feeds)" : "",
           sum.v[worst], e->redundant ? " on one feed" : "", rating, q->meta->derating, 100 * share,
           even ? "even: the rack is idle" : "as the rack draws now", e->volts,
           e->redundant ? "" : " x feeds", q->pending_kw, q->kw);
  json_t *amps = json_object();
  for (size_t j = 0; j < sum.n; j++)
    json_object_set_new(amps, sum.label[j], json_real(sum.v[j]));
  return add_check(checks, name, headroom, q->kw, reason,
                   json_pack("{s:f, s:f, s:s, s:f, s:f, s:o, s:f, s:f}", "rating_a", rating,
                             "limit_a", limit_a, "worst", sum.label[worst], "worst_a", sum.v[worst],
                             "worst_share", share, "amps", amps, "volts", e->volts, "pending_kw",
                             q->pending_kw));
}

/* ---- row, pool and loop totals ---- */

struct series_sum {
  const char *series;
  const char *rack; /* set: readings are the rack's own (PDUs); NULL: shared (the loop's CDU) */
  int64_t now, max_age;
  json_t *seen;   /* key -> value: one device read by several racks counts once */
  size_t matched; /* usable readings, a shared device once per rack */
  char bad[224];
};

static void on_series(void *ctx, const char *key, const struct store_latest *l) {
  struct series_sum *s = ctx;
  double v;
  if (!key_is(key, s->series))
    return;
  if (!usable(key, l, s->now, s->max_age, "kW", &v, s->bad, sizeof(s->bad)))
    return;
  s->matched++;
  char id[512];
  snprintf(id, sizeof(id), "%s/%s", s->rack ? s->rack : "", key);
  if (json_object_get(s->seen, id) == NULL)
    json_object_set_new(s->seen, id, json_real(v));
}

/* The group's load: Σ over its racks of the series and of the reservations
 * pending on them. A CDU several racks report (heat) counts once; PDUs are
 * each rack's own, whatever their names. Returns false with why. */
static bool group_load(const struct rp_elec_request *q, const char *group,
                       const char *(*member_of)(const struct rp_rack_meta *), const char *series,
                       double *measured, double *pending, size_t *nracks, char *why, size_t len) {
  bool shared = strcmp(series, q->heat_series) == 0;
  struct series_sum s = {.series = series, .now = q->now_ms, .max_age = q->max_age_ms};
  s.seen = json_object();
  *pending = 0;
  *nracks = 0;
  bool ok = true;
  for (size_t i = 0; i < q->policy->nracks && ok; i++) {
    const struct rp_rack_meta *m = &q->policy->racks[i];
    if (strcmp(member_of(m), group) != 0)
      continue;
    size_t before = s.matched;
    s.rack = shared ? NULL : m->id;
    store_read_each_latest(q->r, m->id, on_series, &s);
    if (s.bad[0] != '\0') {
      snprintf(why, len, "rack %s: %s", m->id, s.bad);
      ok = false;
    } else if (s.matched == before) {
      snprintf(why, len, "rack %s: no fresh %s reading", m->id, series);
      ok = false;
    }
    struct rp_commitment c;
    rp_reservations_commitment_in(q->reservations, q->r, m->id, q->owner, q->from_ms, q->to_ms,
                                  q->now_ms, q->max_age_ms, &c);
    if (c.committed_kw > c.attributed_kw)
      *pending += c.committed_kw - c.attributed_kw;
    json_decref(c.detail);
    (*nracks)++;
  }
  *measured = 0;
  const char *k;
  json_t *v;
  json_object_foreach(s.seen, k, v) { *measured += json_number_value(v); }
  json_decref(s.seen);
  return ok;
}

static const char *row_of(const struct rp_rack_meta *m) { return m->row; }
static const char *pool_of(const struct rp_rack_meta *m) { return m->pool; }
static const char *loop_of(const struct rp_rack_meta *m) { return m->loop; }

static bool total_check(const struct rp_elec_request *q, const char *name, const char *kind,
                        const struct rp_group_limit *g,
                        const char *(*member_of)(const struct rp_rack_meta *), json_t *checks) {
  double measured, pending;
  size_t nracks;
  char why[288];
  bool heat = strcmp(name, "loop_thermal") == 0;
  const char *series = heat ? q->heat_series : q->power_series;
  if (!group_load(q, g->name, member_of, series, &measured, &pending, &nracks, why, sizeof(why)))
    return fail_closed(checks, name, why);
  double f = heat ? q->heat_fraction : 1.0;
  double limit = heat ? g->cdu_capacity_kw : g->limit_kw * g->derating;
  double headroom = limit - measured - f * pending; /* in the check's kW (heat or power) */
  double request_headroom = f > 0 ? headroom / f : INFINITY;
  char reason[320];
  if (heat)
    snprintf(reason, sizeof(reason),
             "loop %s: CDU capacity %.1f kW - heat removed %.2f kW - heat of reservations "
             "pending on its %zu racks %.2f kW; request %.2f kW x heat_fraction %.2f",
             g->name, limit, measured, nracks, f * pending, q->kw, f);
  else
    snprintf(reason, sizeof(reason),
             "%s %s: %.1f kW x derating %.2f - draw of its %zu racks %.2f kW - reservations "
             "pending %.2f kW; request %.2f kW",
             kind, g->name, g->limit_kw, g->derating, nracks, measured, pending, q->kw);
  return add_check(checks, name, request_headroom, q->kw, reason,
                   json_pack("{s:s, s:f, s:f, s:f, s:I}", kind, g->name, "group_limit_kw", limit,
                             heat ? "heat_removed_kw" : "group_draw_kw", measured, "pending_kw",
                             pending, "racks", (json_int_t)nracks));
}

bool rp_electrical_checks(const struct rp_elec_request *q, json_t *checks) {
  const struct rp_rack_electrical *e = &q->meta->elec;
  bool ok = true;
  bool rated = !isnan(e->feed_kw) || !isnan(e->phase_amps) || !isnan(e->branch_amps);
  if (rated) {
    struct feed_read f[2];
    char why[288];
    int nfeeds = read_feeds(q, f, why, sizeof(why));
    if (!isnan(e->feed_kw))
      ok &= nfeeds < 0 ? fail_closed(checks, "feed_power", why) : feed_check(q, f, nfeeds, checks);
    if (!isnan(e->phase_amps))
      ok &= nfeeds < 0 ? fail_closed(checks, "phase_current", why)
                       : current_check(q, f, nfeeds, false, checks);
    if (!isnan(e->branch_amps))
      ok &= nfeeds < 0 ? fail_closed(checks, "branch_current", why)
                       : current_check(q, f, nfeeds, true, checks);
  }
  const struct rp_policy *p = q->policy;
  const struct rp_group_limit *g = rp_policy_group(p->rows, p->nrows, q->meta->row);
  if (g != NULL && !isnan(g->limit_kw))
    ok &= total_check(q, "row_power", "row", g, row_of, checks);
  g = rp_policy_group(p->pools, p->npools, q->meta->pool);
  if (g != NULL && !isnan(g->limit_kw))
    ok &= total_check(q, "pool_power", "pool", g, pool_of, checks);
  g = rp_policy_group(p->loops, p->nloops, q->meta->loop);
  if (g != NULL && !isnan(g->cdu_capacity_kw))
    ok &= total_check(q, "loop_thermal", "loop", g, loop_of, checks);
  return ok;
}
