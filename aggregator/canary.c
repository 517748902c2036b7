/* Canary soaks judged against the rack's own baseline (see canary.h). */
#include "canary.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "ledger.h"
#include "override.h"
#include "rackpulse/cfg.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"
#include "store.h"

#define MAX_CANARIES 1000
#define TICK_MS 250

struct canary {
  char id[48], rack[RP_ID_MAX + 1], power_series[64], temp_series[64];
  double kw;
  int64_t start_ms, duration_ms, baseline_ms, max_stale_ms;
  double max_power_rise_pct, max_temp_rise, max_slope; /* NAN: not a limit */
  bool no_new_flags;
  json_t *flags_at_start; /* flag names */
  json_t *deploy;         /* correlation fields or NULL */
  char client[RP_CLIENT_NAME_MAX + 1];
  uint32_t baseline_window_s;
  double base_power, base_temp;
  /* progress */
  int64_t temp_seen_ts, power_seen_ts, temp_ok_ms, power_ok_ms;
  double power_now, temp_now, slope_now;
  double worst_power_rise, worst_temp_rise, worst_slope;
  json_t *new_flags;
  bool running, held;
  char limit[32], reason[256];
  double observed, limit_value;
  int64_t ended_ms;
};

struct rp_canaries {
  struct rp_aggregator *a;
  pthread_mutex_t lock;
  struct canary *v[MAX_CANARIES];
  size_t n;
  pthread_t thread;
  bool stop;
  pthread_cond_t wake;
};

static bool name_matches(const char *key, const char *name) {
  size_t n = strlen(name);
  return strncmp(key, name, n) == 0 &&
         (key[n] == '@' || key[n] == '{' || key[n] == '|' || key[n] == '\0');
}

/* Window statistics of the watched series: the window closest to `want_s`
 * (baseline), or the shortest (slope). */
struct stats_pick {
  const char *name;
  uint32_t want_s, window_s; /* window_s: the chosen one, 0 until found */
  bool shortest;
  int64_t fresh_after_ms;
  double sum_mean, max_mean, max_slope;
  unsigned devices;
};

static void on_stats(void *ctx, const char *key, const struct store_stats *st) {
  struct stats_pick *p = ctx;
  if (!name_matches(key, p->name) || st->count == 0 || st->received_ms < p->fresh_after_ms)
    return;
  uint32_t w = st->window_s;
  bool better = p->window_s == 0 || (p->shortest ? w < p->window_s
                                                 : labs((long)w - (long)p->want_s) <
                                                       labs((long)p->window_s - (long)p->want_s));
  if (better) {
    p->window_s = w;
    p->sum_mean = p->max_mean = p->max_slope = NAN;
    p->devices = 0;
  }
  if (w != p->window_s)
    return;
  p->devices++;
  p->sum_mean = isnan(p->sum_mean) ? st->mean : p->sum_mean + st->mean;
  p->max_mean = isnan(p->max_mean) || st->mean > p->max_mean ? st->mean : p->max_mean;
  if (st->has_slope && isfinite(st->slope_per_min))
    p->max_slope =
        isnan(p->max_slope) || st->slope_per_min > p->max_slope ? st->slope_per_min : p->max_slope;
}

/* Latest OK values of one series over the rack's devices. */
struct latest_pick {
  const char *name;
  double sum, max;
  int64_t newest_ts;
  unsigned ok;
};

static void on_latest(void *ctx, const char *key, const struct store_latest *l) {
  struct latest_pick *p = ctx;
  if (!name_matches(key, p->name) || l->status != 0 || !isfinite(l->value))
    return;
  p->sum = p->ok ? p->sum + l->value : l->value;
  p->max = p->ok == 0 || l->value > p->max ? l->value : p->max;
  p->newest_ts = l->ts_ms > p->newest_ts ? l->ts_ms : p->newest_ts;
  p->ok++;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *flag_names(struct rp_ledger *l, const char *rack) {
  json_t *all = rp_ledger_flag_list(l, rack), *names = json_array(), *f;
  size_t i;
  json_array_foreach(all, i, f) json_array_append(names, json_object_get(f, "flag"));
  json_decref(all);
  return names;
}

static json_t *to_json(const struct canary *c, int64_t now) {
  int64_t end = c->running ? now : c->ended_ms;
  double elapsed = (double)(end - c->start_ms) / 1000.0;
  json_t *limits =
      json_pack("{s:o, s:o, s:o, s:b, s:f}", "max_power_rise_pct", num(c->max_power_rise_pct),
                "max_temp_rise", num(c->max_temp_rise), "max_slope", num(c->max_slope),
                "no_new_flags", c->no_new_flags, "max_stale_s", (double)c->max_stale_ms / 1000.0);
  json_t *baseline = json_pack(
      "{s:i, s:f, s:o, s:o, s:s, s:s}", "window_s", (int)c->baseline_window_s, "requested_s",
      (double)c->baseline_ms / 1000.0, "power_kw", num(c->base_power), "supply_temp",
      num(c->base_temp), "power_series", c->power_series, "temp_series", c->temp_series);
  double power_rise = isfinite(c->base_power) && c->base_power > 0
                          ? (c->power_now - c->base_power) / c->base_power * 100
                          : NAN;
  json_t *observed = json_pack("{s:o, s:o, s:o, s:o, s:o, s:O}", "power_kw", num(c->power_now),
                               "power_rise_pct", num(power_rise), "supply_temp", num(c->temp_now),
                               "temp_rise", num(c->temp_now - c->base_temp), "slope_per_min",
                               num(c->slope_now), "new_flags", c->new_flags);
  json_t *worst =
      json_pack("{s:o, s:o, s:o}", "power_rise_pct", num(c->worst_power_rise), "temp_rise",
                num(c->worst_temp_rise), "slope_per_min", num(c->worst_slope));
  double progress = c->duration_ms > 0 ? elapsed * 1000.0 / (double)c->duration_ms : 1;
  json_t *j = json_pack("{s:s, s:s, s:f, s:s, s:s, s:I, s:f, s:f, s:f, s:o, s:o, s:o, s:o}", "id",
                        c->id, "rack", c->rack, "kw", c->kw, "state",
                        c->running ? "running"
                        : c->held  ? "held"
                                   : "failed",
                        "client", c->client, "started_ms", (json_int_t)c->start_ms, "duration_s",
                        (double)c->duration_ms / 1000.0, "elapsed_s", elapsed, "progress",
                        progress > 1 ? 1.0 : progress, "limits", limits, "baseline", baseline,
                        "observed", observed, "worst", worst);
  if (c->deploy != NULL)
    json_object_set(j, "deploy", c->deploy);
  if (!c->running) {
    json_t *v = json_pack("{s:s, s:I, s:s}", "verdict", c->held ? "held" : "failed", "at_ms",
                          (json_int_t)c->ended_ms, "reason", c->reason);
    if (!c->held) {
      json_object_set_new(v, "limit", json_string(c->limit));
      json_object_set_new(v, "observed", num(c->observed));
      json_object_set_new(v, "limit_value", num(c->limit_value));
    }
    json_object_set_new(j, "verdict", v);
  }
  return j;
}

static void canary_free(struct canary *c) {
  if (c == NULL)
    return;
  json_decref(c->flags_at_start);
  json_decref(c->new_flags);
  json_decref(c->deploy);
  free(c);
}

/* A limit of the body's "limits": a number, or "8%" for percentages. */
static int limit_value(const json_t *limits, const char *key, double *out, const char **why) {
  json_t *v = json_object_get(limits, key);
  *out = NAN;
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_number(v)) {
    *out = json_number_value(v);
  } else if (json_is_string(v)) {
    char *end;
    *out = strtod(json_string_value(v), &end);
    if (*end == '%')
      end++;
    if (*end != '\0')
      *out = NAN;
  }
  if (!isfinite(*out) || *out < 0 || *out > 1e6) {
    *why = "limits: max_power_rise_pct, max_temp_rise, max_slope: non-negative numbers";
    return -EINVAL;
  }
  return 0;
}

static int duration_field(const json_t *body, const char *key, const char *def, int64_t *ms,
                          const char **why, const char *msg) {
  const char *s = json_string_value(json_object_get(body, key));
  if (json_object_get(body, key) != NULL && s == NULL) {
    *why = msg;
    return -EINVAL;
  }
  if (rp_parse_duration_ms(s ? s : def, ms) != 0 || *ms <= 0 || *ms > 7 * 24 * 3600 * 1000LL) {
    *why = msg;
    return -EINVAL;
  }
  return 0;
}

/* Fills c from the request body; 0 or -EINVAL with why. */
static int parse_request(struct rp_aggregator *a, const json_t *body, struct canary *c,
                         const char **why) {
  const char *rack = json_string_value(json_object_get(body, "rack"));
  json_t *kw = json_object_get(body, "kw");
  json_t *limits = json_object_get(body, "limits");
  if (rack == NULL || !rp_http_valid_id(rack, strlen(rack))) {
    *why = "rack: 1..64 characters of A-Z a-z 0-9 . _ -";
    return -EINVAL;
  }
  snprintf(c->rack, sizeof(c->rack), "%s", rack);
  if (!json_is_number(kw) || json_number_value(kw) < 0 || json_number_value(kw) > 100000) {
    *why = "kw: a number of kilowatts, 0..100000";
    return -EINVAL;
  }
  c->kw = json_number_value(kw);
  if (duration_field(body, "duration", "", &c->duration_ms, why,
                     "duration: e.g. 20m (at most 7 days)") != 0 ||
      duration_field(body, "baseline", "30m", &c->baseline_ms, why,
                     "baseline: e.g. 30m (at most 7 days)") != 0 ||
      duration_field(body, "max_stale", "10s", &c->max_stale_ms, why, "max_stale: e.g. 10s") != 0)
    return -EINVAL;
  if (limits != NULL && !json_is_object(limits)) {
    *why = "limits: an object";
    return -EINVAL;
  }
  if (limit_value(limits, "max_power_rise_pct", &c->max_power_rise_pct, why) != 0 ||
      limit_value(limits, "max_temp_rise", &c->max_temp_rise, why) != 0 ||
      limit_value(limits, "max_slope", &c->max_slope, why) != 0)
    return -EINVAL;
  json_t *nf = json_object_get(limits, "no_new_flags");
  c->no_new_flags = nf == NULL || json_is_true(nf);
  const char *ps = json_string_value(json_object_get(body, "power_series"));
  const char *ts = json_string_value(json_object_get(body, "temp_series"));
  snprintf(c->power_series, sizeof(c->power_series), "%s", ps ? ps : "pdu.power");
  snprintf(c->temp_series, sizeof(c->temp_series), "%s",
           ts                                    ? ts
           : a->cfg.policy.supply_temp_series[0] ? a->cfg.policy.supply_temp_series
                                                 : "cdu.supply_temp");
  return 0;
}

/* The baseline at the start; 0, -ENOENT (unknown rack) or -EAGAIN (no
 * statistics) with why. */
static int take_baseline(struct rp_aggregator *a, struct canary *c, int64_t now, const char **why) {
  struct store_read *r;
  if (store_read_begin(a->store, &r) != 0) {
    *why = "store unavailable";
    return -EIO;
  }
  struct store_rack rk;
  if (store_read_rack(r, c->rack, &rk) != 0) {
    store_read_end(r);
    *why = "unknown rack: no frame from it has been received";
    return -ENOENT;
  }
  int64_t fresh = now - (c->max_stale_ms > 30000 ? c->max_stale_ms : 30000);
  uint32_t want = (uint32_t)(c->baseline_ms / 1000);
  struct stats_pick t = {.name = c->temp_series, .want_s = want, .fresh_after_ms = fresh};
  struct stats_pick p = {.name = c->power_series, .want_s = want, .fresh_after_ms = fresh};
  store_read_each_stats(r, c->rack, on_stats, &t);
  if (isfinite(c->max_power_rise_pct))
    store_read_each_stats(r, c->rack, on_stats, &p);
  store_read_end(r);
  if (t.window_s == 0) {
    *why = "no baseline: the rack has no recent window statistics of its supply temperature";
    return -EAGAIN;
  }
  if (isfinite(c->max_power_rise_pct) && (p.window_s == 0 || !(p.sum_mean > 0))) {
    *why = "no baseline: a power limit was asked but the rack has no recent window statistics "
           "of its power (power_series)";
    return -EAGAIN;
  }
  c->baseline_window_s = t.window_s;
  c->base_temp = t.max_mean;
  c->base_power = p.window_s ? p.sum_mean : NAN;
  return 0;
}

/* An audit entry of a canary, made under the lock (the canary may be
 * freed once it is released) and recorded after it. */
struct canary_audit {
  json_t *entry, *deploy;
  struct rp_client client;
};

static void audit_prepare(const struct canary *c, const char *action, int64_t now,
                          struct canary_audit *out) {
  memset(out, 0, sizeof(*out));
  out->entry =
      json_pack("{s:s, s:s, s:o}", "action", action, "rack", c->rack, "canary", to_json(c, now));
  out->deploy = c->deploy ? json_deep_copy(c->deploy) : NULL;
  snprintf(out->client.name, sizeof(out->client.name), "%s", c->client);
}

static void audit_record(struct rp_aggregator *a, struct canary_audit *x, int64_t now) {
  struct rp_caller caller = {.client = &x->client, .deploy = x->deploy};
  if (x->entry != NULL)
    rp_audit_record(a, &caller, x->entry, now);
  json_decref(x->entry);
  json_decref(x->deploy);
}

json_t *rp_canary_start(struct rp_aggregator *a, const json_t *body, const struct rp_caller *caller,
                        int64_t now, unsigned *status, const char **why) {
  struct canary *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    *status = 503;
    *why = "out of memory";
    return NULL;
  }
  *status = 400;
  int rc = parse_request(a, body, c, why);
  if (rc == 0 && (rc = take_baseline(a, c, now, why)) != 0)
    *status = rc == -ENOENT ? 404 : rc == -EAGAIN ? 409 : 503;
  if (rc != 0) {
    canary_free(c);
    return NULL;
  }
  rp_deploy_new_id("canary", c->id, sizeof(c->id));
  snprintf(c->client, sizeof(c->client), "%s",
           caller && caller->client ? caller->client->name : "anonymous");
  c->deploy = caller && caller->deploy ? json_incref(caller->deploy) : NULL;
  c->start_ms = c->temp_ok_ms = c->power_ok_ms = now;
  c->running = true;
  c->power_now = c->temp_now = c->slope_now = NAN;
  c->worst_power_rise = c->worst_temp_rise = c->worst_slope = NAN;
  c->flags_at_start = flag_names(a->ledger, c->rack);
  c->new_flags = json_array();
  struct rp_canaries *cs = a->canaries;
  pthread_mutex_lock(&cs->lock);
  if (cs->n == MAX_CANARIES) { /* forget the oldest finished one */
    size_t k = 0;
    while (k < cs->n && cs->v[k]->running)
      k++;
    if (k == cs->n) {
      pthread_mutex_unlock(&cs->lock);
      canary_free(c);
      *status = 503;
      *why = "too many canaries running (1000)";
      return NULL;
    }
    canary_free(cs->v[k]);
    memmove(&cs->v[k], &cs->v[k + 1], (cs->n - k - 1) * sizeof(cs->v[0]));
    cs->n--;
  }
  cs->v[cs->n++] = c;
  json_t *j = to_json(c, now);
  struct canary_audit x;
  audit_prepare(c, "canary_start", now, &x);
  rp_info("canary", "%s on rack %s: %.1f s soak against a %u s baseline (supply %.2f)", c->id,
          c->rack, (double)c->duration_ms / 1000.0, c->baseline_window_s, c->base_temp);
  pthread_mutex_unlock(&cs->lock);
  audit_record(a, &x, now);
  return j;
}

static void __attribute__((format(printf, 6, 7)))
fail(struct canary *c, const char *limit, double observed, double limit_value, int64_t now,
     const char *fmt, ...) {
  c->running = false;
  c->ended_ms = now;
  snprintf(c->limit, sizeof(c->limit), "%s", limit);
  c->observed = observed;
  c->limit_value = limit_value;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
  va_end(ap);
}

static double worst(double w, double v) { return isnan(w) || v > w ? v : w; }

/* One look at a running canary's rack. */
static void judge(struct rp_aggregator *a, struct canary *c, int64_t now) {
  struct store_read *r;
  if (store_read_begin(a->store, &r) != 0)
    return;
  struct latest_pick t = {.name = c->temp_series}, p = {.name = c->power_series};
  struct stats_pick s = {.name = c->temp_series, .shortest = true, .fresh_after_ms = c->start_ms};
  store_read_each_latest(r, c->rack, on_latest, &t);
  store_read_each_latest(r, c->rack, on_latest, &p);
  store_read_each_stats(r, c->rack, on_stats, &s);
  store_read_end(r);
  bool watch_power = isfinite(c->max_power_rise_pct);
  if (t.ok > 0 && t.newest_ts > c->temp_seen_ts) {
    c->temp_seen_ts = t.newest_ts;
    c->temp_ok_ms = now;
  }
  if (p.ok > 0 && p.newest_ts > c->power_seen_ts) {
    c->power_seen_ts = p.newest_ts;
    c->power_ok_ms = now;
  }
  c->temp_now = t.ok ? t.max : NAN;
  c->power_now = p.ok ? p.sum : NAN;
  c->slope_now = s.window_s ? s.max_slope : NAN;
  int64_t temp_age = now - c->temp_ok_ms, power_age = now - c->power_ok_ms;
  if (temp_age > c->max_stale_ms || (watch_power && power_age > c->max_stale_ms)) {
    bool temp = temp_age > c->max_stale_ms;
    fail(c, "telemetry", (double)(temp ? temp_age : power_age) / 1000.0,
         (double)c->max_stale_ms / 1000.0, now,
         "telemetry lost: no OK reading of %s on rack %s for %.1f s (max_stale %.1f s)",
         temp ? c->temp_series : c->power_series, c->rack,
         (double)(temp ? temp_age : power_age) / 1000.0, (double)c->max_stale_ms / 1000.0);
    return;
  }
  double temp_rise = c->temp_now - c->base_temp;
  c->worst_temp_rise =
      isfinite(temp_rise) ? worst(c->worst_temp_rise, temp_rise) : c->worst_temp_rise;
  if (isfinite(c->max_temp_rise) && temp_rise > c->max_temp_rise) {
    fail(c, "max_temp_rise", temp_rise, c->max_temp_rise, now,
         "supply temperature rose %.2f degC over its baseline %.2f (limit %.2f)", temp_rise,
         c->base_temp, c->max_temp_rise);
    return;
  }
  if (watch_power && c->base_power > 0) {
    double rise = (c->power_now - c->base_power) / c->base_power * 100;
    c->worst_power_rise = worst(c->worst_power_rise, rise);
    if (rise > c->max_power_rise_pct) {
      fail(c, "max_power_rise", rise, c->max_power_rise_pct, now,
           "power rose %.2f%% over its baseline %.2f kW (limit %.2f%%)", rise, c->base_power,
           c->max_power_rise_pct);
      return;
    }
  }
  if (isfinite(c->slope_now)) {
    c->worst_slope = worst(c->worst_slope, c->slope_now);
    if (isfinite(c->max_slope) && c->slope_now > c->max_slope) {
      fail(c, "max_slope", c->slope_now, c->max_slope, now,
           "supply temperature climbs %.3f degC/min over its %u s window (limit %.3f)",
           c->slope_now, s.window_s, c->max_slope);
      return;
    }
  }
  if (c->no_new_flags) {
    json_t *names = flag_names(a->ledger, c->rack), *f;
    size_t i, k;
    json_array_foreach(names, i, f) {
      bool had = false;
      json_t *g;
      json_array_foreach(c->flags_at_start, k, g) had |= json_equal(f, g);
      if (!had && json_array_size(c->new_flags) < 8)
        json_array_append(c->new_flags, f);
    }
    json_decref(names);
    if (json_array_size(c->new_flags) > 0) {
      fail(c, "no_new_flags", (double)json_array_size(c->new_flags), 0, now,
           "flag %s raised on rack %s during the soak",
           json_string_value(json_array_get(c->new_flags, 0)), c->rack);
      return;
    }
  }
  if (now - c->start_ms >= c->duration_ms) {
    c->running = false;
    c->held = true;
    c->ended_ms = now;
    snprintf(c->reason, sizeof(c->reason), "held every limit for %.1f s",
             (double)c->duration_ms / 1000.0);
  }
}

void rp_canaries_tick(struct rp_aggregator *a, int64_t now) {
  struct rp_canaries *cs = a->canaries;
  struct canary_audit ended[16];
  size_t nended = 0;
  pthread_mutex_lock(&cs->lock);
  for (size_t i = 0; i < cs->n && nended < 16; i++) { /* the rest: next tick */
    struct canary *c = cs->v[i];
    if (!c->running)
      continue;
    judge(a, c, now);
    if (c->running)
      continue;
    audit_prepare(c, "canary_verdict", now, &ended[nended++]);
    if (c->held)
      rp_info("canary", "%s on rack %s held", c->id, c->rack);
    else
      rp_warn("canary", "%s on rack %s failed: %s", c->id, c->rack, c->reason);
  }
  pthread_mutex_unlock(&cs->lock);
  for (size_t i = 0; i < nended; i++)
    audit_record(a, &ended[i], now);
}

static void *watcher(void *arg) {
  struct rp_canaries *cs = arg;
  pthread_mutex_lock(&cs->lock);
  while (!cs->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&cs->wake, &cs->lock, &until);
    if (cs->stop)
      break;
    pthread_mutex_unlock(&cs->lock);
    int64_t now = rp_now_ms();
    rp_canaries_tick(cs->a, now);
    if (cs->a->overrides != NULL)
      rp_overrides_expire(cs->a, now);
    pthread_mutex_lock(&cs->lock);
  }
  pthread_mutex_unlock(&cs->lock);
  return NULL;
}

int rp_canaries_new(struct rp_aggregator *a, struct rp_canaries **out) {
  struct rp_canaries *cs = calloc(1, sizeof(*cs));
  if (cs == NULL)
    return -ENOMEM;
  cs->a = a;
  pthread_mutex_init(&cs->lock, NULL);
  pthread_cond_init(&cs->wake, NULL);
  *out = cs; /* before the thread starts: it reads a->canaries */
  if (pthread_create(&cs->thread, NULL, watcher, cs) != 0) {
    *out = NULL;
    pthread_mutex_destroy(&cs->lock);
    pthread_cond_destroy(&cs->wake);
    free(cs);
    return -EAGAIN;
  }
  return 0;
}

void rp_canaries_free(struct rp_canaries *cs) {
  if (cs == NULL)
    return;
  pthread_mutex_lock(&cs->lock);
  cs->stop = true;
  pthread_cond_signal(&cs->wake);
  pthread_mutex_unlock(&cs->lock);
  pthread_join(cs->thread, NULL);
  for (size_t i = 0; i < cs->n; i++)
    canary_free(cs->v[i]);
  pthread_mutex_destroy(&cs->lock);
  pthread_cond_destroy(&cs->wake);
  free(cs);
}

json_t *rp_canary_get(struct rp_canaries *cs, const char *id) {
  json_t *j = NULL;
  int64_t now = rp_now_ms();
  pthread_mutex_lock(&cs->lock);
  for (size_t i = 0; i < cs->n && j == NULL; i++)
    if (strcmp(cs->v[i]->id, id) == 0)
      j = to_json(cs->v[i], now);
  pthread_mutex_unlock(&cs->lock);
  return j;
}

json_t *rp_canary_list(struct rp_canaries *cs) {
  json_t *out = json_array();
  int64_t now = rp_now_ms();
  pthread_mutex_lock(&cs->lock);
  for (size_t i = 0; i < cs->n; i++)
    json_array_append_new(out, to_json(cs->v[i], now));
  pthread_mutex_unlock(&cs->lock);
  return out;
}
