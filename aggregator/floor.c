/* The floor at a glance: one summary per rack, kept from the gate's
 * evaluation that the upkeep thread makes of every rack once a second
 * (events.c), so /v1/floor and /metrics read a cache instead of evaluating
 * every rack again per request. Also the newest agent health seen per agent
 * (spool depth, dropped frames, delivery latency), kept in memory from the
 * frames the ingest thread decodes.
 *
 * A summary (immutable once published; a pass publishes a new object):
 *   {rack, row, loop, pool, class, decision (at 0 kW), power_headroom_kw,
 *    thermal_headroom_kw, power_limit_kw, thermal_capacity_kw, draw_kw,
 *    reserved_kw, committed_kw, supply_temp, supply_limit,
 *    supply_slope_per_min, time_to_limit_min, delta_t,
 *    failing: [{check, reason}], missing: [text], last_frame_ms,
 *    checks: the decision's checks}
 * GET /v1/floor lists them without `checks`; GET /v1/floor?rack=R answers
 * that one rack with its checks (the incident-map page's detail view).
 * time_to_limit_min: minutes to the supply limit at the supply slope (the
 * supply_slope check's value, else the agents' 300 s then 60 s window).
 * committed_kw is the gate's committed power (gate.c power_check): other
 * owners' reservations, each at the larger of reserved and measured, plus
 * the draw not accounted to them; reserved_kw the reservations alone. Racks listed in the policy that never reported are there
 * too, with decision "deny" and "no frame received" as missing evidence. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "gate.h"
#include "ledger.h"
#include "policy.h"

struct rp_floor {
  pthread_mutex_t lock;
  json_t *racks;        /* rack -> summary; replaced whole by each pass */
  int64_t evaluated_ms; /* when the last pass ended (0: none yet) */
  json_t *agents;       /* agent -> {rack, spool_depth, frames_dropped, ...} */
};

int rp_floor_new(struct rp_floor **out) {
  struct rp_floor *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -ENOMEM;
  f->racks = json_object();
  f->agents = json_object();
  if (f->racks == NULL || f->agents == NULL) {
    json_decref(f->racks);
    json_decref(f->agents);
    free(f);
    return -ENOMEM;
  }
  pthread_mutex_init(&f->lock, NULL);
  *out = f;
  return 0;
}

void rp_floor_free(struct rp_floor *f) {
  if (f == NULL)
    return;
  pthread_mutex_destroy(&f->lock);
  json_decref(f->racks);
  json_decref(f->agents);
  free(f);
}

struct meta_copy {
  const char *rack;
  char row[32], loop[32], pool[64], class_name[32];
  double cdu_capacity_kw;
  json_t *unreported; /* when set: policy racks missing from it are added */
  json_t *racks;
};

static void copy_meta(void *ctx, const struct rp_policy *p) {
  struct meta_copy *m = ctx;
  const struct rp_rack_meta *meta = NULL;
  rp_policy_for(p, m->rack, NULL, &meta);
  if (meta == NULL)
    return;
  snprintf(m->row, sizeof(m->row), "%s", meta->row);
  snprintf(m->loop, sizeof(m->loop), "%s", meta->loop);
  snprintf(m->pool, sizeof(m->pool), "%s", meta->pool);
  snprintf(m->class_name, sizeof(m->class_name), "%s", meta->class_name);
  m->cdu_capacity_kw = meta->cdu_capacity_kw;
}

static void on_down(void *ctx, const char *device, const struct store_device *d) {
  if (d->up)
    return;
  char line[256];
  snprintf(line, sizeof(line), "device %s (%s) down%s%s", device, d->kind,
           d->last_error[0] ? ": " : "", d->last_error);
  json_array_append_new(ctx, json_string(line));
}

/* Series read when the gate does not check them (supply_temp or delta_t
 * disabled): the highest latest value of the CDU series, for display. */
struct shown {
  double supply, delta_t;
};

static bool series_is(const char *key, const char *name) {
  size_t n = strlen(name);
  return strncmp(key, name, n) == 0 && (key[n] == '@' || key[n] == '{');
}

static void on_shown(void *ctx, const char *key, const struct store_latest *l) {
  struct shown *sh = ctx;
  if (l->status != 0 || !isfinite(l->value))
    return;
  if (series_is(key, "cdu.supply_temp") && (isnan(sh->supply) || l->value > sh->supply))
    sh->supply = l->value;
  if (series_is(key, "cdu.delta_t") && (isnan(sh->delta_t) || l->value > sh->delta_t))
    sh->delta_t = l->value;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

json_t *rp_floor_summarize(struct rp_aggregator *a, const char *rack, const json_t *d,
                           int64_t last_frame_ms) {
  struct meta_copy m = {.rack = rack, .cdu_capacity_kw = NAN};
  if (a->gate != NULL)
    rp_gate_with_policy(a->gate, copy_meta, &m);
  double power = NAN, thermal = NAN, limit = NAN, draw = NAN, reserved = NAN, committed = NAN;
  double supply = NAN, delta_t = NAN, supply_limit = NAN, slope = NAN;
  json_t *failing = json_array(), *missing = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *reason = json_string_value(json_object_get(c, "reason"));
    json_t *obs = json_object_get(c, "observed");
    if (name == NULL)
      continue;
    double v = json_is_number(obs) ? json_number_value(obs) : NAN;
    if (strcmp(name, "power_headroom") == 0) {
      power = v;
      limit = json_number_value(json_object_get(c, "derated_limit_kw"));
      draw = json_number_value(json_object_get(c, "draw_kw"));
      reserved = json_number_value(json_object_get(c, "reserved_kw"));
      committed = json_is_number(json_object_get(c, "committed_kw"))
                      ? json_number_value(json_object_get(c, "committed_kw"))
                      : draw + reserved;
      if (!json_is_number(json_object_get(c, "derated_limit_kw")))
        limit = draw = reserved = committed = NAN;
    } else if (strcmp(name, "thermal_headroom") == 0) {
      thermal = v;
    } else if (strcmp(name, "supply_temp") == 0) {
      supply = v;
      if (json_is_number(json_object_get(c, "limit")))
        supply_limit = json_number_value(json_object_get(c, "limit"));
    } else if (strcmp(name, "supply_slope") == 0) {
      slope = v;
    } else if (strcmp(name, "delta_t") == 0) {
      delta_t = v;
    }
    if (!json_is_true(json_object_get(c, "pass")))
      json_array_append_new(failing,
                            json_pack("{s:s, s:s}", "check", name, "reason", reason ? reason : ""));
    /* A check without a value lacks evidence, whether it fails closed or
     * passes (fail_closed off); "flags" has no observed value by design. */
    if (!json_is_number(obs) && strcmp(name, "flags") != 0 && reason != NULL) {
      char line[512];
      snprintf(line, sizeof(line), "%s: %s", name, reason);
      json_array_append_new(missing, json_string(line));
    }
  }
  struct store_read *rd;
  if (a->store != NULL && store_read_begin(a->store, &rd) == 0) {
    store_read_each_device(rd, rack, on_down, missing);
    struct shown sh = {NAN, NAN};
    if (isnan(supply) || isnan(delta_t))
      store_read_each_latest(rd, rack, on_shown, &sh);
    if (isnan(supply))
      supply = sh.supply;
    if (isnan(delta_t))
      delta_t = sh.delta_t;
    struct store_stats st;
    if (isnan(slope) &&
        (store_read_stats_by_name(rd, rack, "cdu.supply_temp", 300, &st) == 0 ||
         store_read_stats_by_name(rd, rack, "cdu.supply_temp", 60, &st) == 0) &&
        st.has_slope)
      slope = st.slope_per_min;
    store_read_end(rd);
  }
  const char *decision = json_string_value(json_object_get(d, "decision"));
  json_t *s =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                "s:o, s:o, s:I}",
                "rack", rack, "row", m.row, "loop", m.loop, "pool", m.pool, "decision",
                decision ? decision : "deny", "power_headroom_kw", num(power),
                "thermal_headroom_kw", num(thermal), "power_limit_kw", num(limit), "draw_kw",
                num(draw), "reserved_kw", num(reserved), "committed_kw", num(committed),
                "supply_temp", num(supply), "delta_t", num(delta_t), "failing", failing, "missing",
                missing, "last_frame_ms", (json_int_t)last_frame_ms);
  if (s == NULL)
    return NULL;
  /* What may fail next: minutes to the supply limit at the current slope. */
  bool rising = isfinite(supply) && isfinite(supply_limit) && isfinite(slope) && slope > 0 &&
                supply < supply_limit;
  json_object_set_new(s, "class", json_string(m.class_name));
  json_object_set_new(s, "thermal_capacity_kw", num(m.cdu_capacity_kw));
  json_object_set_new(s, "supply_limit", num(supply_limit));
  json_object_set_new(s, "supply_slope_per_min", num(slope));
  json_object_set_new(s, "time_to_limit_min",
                      rising ? json_real((supply_limit - supply) / slope) : json_null());
  const json_t *checks = json_object_get(d, "checks");
  json_object_set_new(s, "checks", json_is_array(checks) ? json_deep_copy(checks) : json_array());
  return s;
}

static void add_unreported(void *ctx, const struct rp_policy *p) {
  json_t *racks = ctx;
  for (size_t i = 0; i < p->nracks; i++) {
    const struct rp_rack_meta *meta = &p->racks[i];
    if (json_object_get(racks, meta->id) != NULL)
      continue;
    json_t *s = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:[{s:s, "
        "s:s}], s:[s], s:I}",
        "rack", meta->id, "row", meta->row, "loop", meta->loop, "pool", meta->pool, "decision",
        "deny", "power_headroom_kw", "thermal_headroom_kw", "power_limit_kw", "draw_kw",
        "reserved_kw", "committed_kw", "supply_temp", "delta_t", "failing", "check",
        "telemetry_fresh", "reason", "no frame received from this rack", "missing",
        "no frame received from this rack (listed in the policy)", "last_frame_ms", (json_int_t)0);
    if (s == NULL)
      continue;
    json_object_set_new(s, "class", json_string(meta->class_name));
    json_object_set_new(s, "thermal_capacity_kw", num(meta->cdu_capacity_kw));
    json_object_set_new(s, "supply_limit", json_null());
    json_object_set_new(s, "supply_slope_per_min", json_null());
    json_object_set_new(s, "time_to_limit_min", json_null());
    json_object_set_new(s, "checks", json_array());
    json_object_set_new(racks, meta->id, s);
  }
}

void rp_floor_publish(struct rp_aggregator *a, json_t *racks, int64_t now_ms) {
  if (a->floor == NULL || racks == NULL) {
    json_decref(racks);
    return;
  }
  if (a->gate != NULL)
    rp_gate_with_policy(a->gate, add_unreported, racks);
  pthread_mutex_lock(&a->floor->lock);
  json_t *old = a->floor->racks;
  a->floor->racks = racks;
  a->floor->evaluated_ms = now_ms;
  pthread_mutex_unlock(&a->floor->lock);
  json_decref(old);
}

/* The published summaries (new reference; never modified after publish). */
static json_t *snapshot(struct rp_floor *f, int64_t *evaluated_ms) {
  pthread_mutex_lock(&f->lock);
  json_t *r = json_incref(f->racks);
  *evaluated_ms = f->evaluated_ms;
  pthread_mutex_unlock(&f->lock);
  return r;
}

/* Active flag names per rack: rack -> [flag, ...]. */
static json_t *active_flags(struct rp_aggregator *a, int64_t now) {
  json_t *by_rack = json_object();
  if (a->ledger == NULL) /* unit tests */
    return by_rack;
  json_t *flags = rp_ledger_flag_list(a->ledger, NULL);
  size_t i;
  json_t *f;
  json_array_foreach(flags, i, f) {
    const char *rack = json_string_value(json_object_get(f, "rack"));
    const char *flag = json_string_value(json_object_get(f, "flag"));
    if (rack == NULL || flag == NULL || json_integer_value(json_object_get(f, "expires_ms")) <= now)
      continue;
    json_t *l = json_object_get(by_rack, rack);
    if (l == NULL) {
      l = json_array();
      json_object_set_new(by_rack, rack, l);
    }
    json_array_append_new(l, json_string(flag));
  }
  json_decref(flags);
  return by_rack;
}

json_t *rp_floor_json(struct rp_aggregator *a, const char *only, int64_t now_ms) {
  if (a->floor == NULL)
    return NULL;
  int64_t evaluated;
  json_t *racks = snapshot(a->floor, &evaluated);
  json_t *flags = active_flags(a, now_ms);
  json_t *out = json_array();
  const char *rack;
  json_t *s;
  json_object_foreach(racks, rack, s) {
    if (only != NULL && strcmp(only, rack) != 0)
      continue;
    json_t *o = json_copy(s); /* shallow: the published values are shared, not changed */
    if (only == NULL)
      json_object_del(o, "checks"); /* the whole floor stays small */
    json_t *fl = json_object_get(flags, rack);
    json_object_set_new(o, "flags", fl ? json_incref(fl) : json_array());
    int64_t last = json_integer_value(json_object_get(s, "last_frame_ms"));
    json_object_set_new(o, "age_s",
                        last > 0 ? json_real((double)(now_ms - last) / 1000.0) : json_null());
    json_array_append_new(out, o);
  }
  json_decref(flags);
  json_decref(racks);
  return json_pack("{s:o, s:I, s:I}", "racks", out, "evaluated_at_ms", (json_int_t)evaluated,
                   "now_ms", (json_int_t)now_ms);
}

static void put_label(FILE *out, const char *name, const char *v) {
  fprintf(out, "%s=\"", name);
  for (; v && *v; v++) {
    if (*v == '\\' || *v == '"')
      fputc('\\', out), fputc(*v, out);
    else if (*v == '\n')
      fputs("\\n", out);
    else
      fputc(*v, out);
  }
  fputc('"', out);
}

static void put_gauge(FILE *out, const char *metric, const char *rack, const char *extra_name,
                      const char *extra, double v) {
  if (!isfinite(v))
    return;
  fprintf(out, "%s{", metric);
  put_label(out, "rack", rack);
  if (extra_name != NULL) {
    fputc(',', out);
    put_label(out, extra_name, extra);
  }
  fprintf(out, "} %.*g\n", 12, v);
}

static double jnum(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

void rp_floor_metrics(struct rp_aggregator *a, FILE *out, int64_t now_ms) {
  if (a->floor == NULL)
    return;
  int64_t evaluated;
  json_t *racks = snapshot(a->floor, &evaluated);
  const char *rack;
  json_t *s;
  fputs("# HELP rackpulse_rack_info The rack's place on the floor (policy row, cooling loop, "
        "pool); always 1.\n# TYPE rackpulse_rack_info gauge\n",
        out);
  json_object_foreach(racks, rack, s) {
    fputs("rackpulse_rack_info{", out);
    put_label(out, "rack", rack);
    fputc(',', out);
    put_label(out, "row", json_string_value(json_object_get(s, "row")));
    fputc(',', out);
    put_label(out, "loop", json_string_value(json_object_get(s, "loop")));
    fputc(',', out);
    put_label(out, "pool", json_string_value(json_object_get(s, "pool")));
    fputs("} 1\n", out);
  }
  fputs("# HELP rackpulse_rack_headroom_kw Headroom of the rack at 0 kW requested, by kind "
        "(power: derated breaker - draw - reservations - margin; thermal: CDU capacity - heat "
        "removed); absent without data.\n# TYPE rackpulse_rack_headroom_kw gauge\n",
        out);
  json_object_foreach(racks, rack, s) {
    put_gauge(out, "rackpulse_rack_headroom_kw", rack, "kind", "power",
              jnum(s, "power_headroom_kw"));
    put_gauge(out, "rackpulse_rack_headroom_kw", rack, "kind", "thermal",
              jnum(s, "thermal_headroom_kw"));
  }
  static const struct {
    const char *metric, *key, *help;
  } kw[] = {
      {"rackpulse_rack_power_limit_kw", "power_limit_kw", "Breaker x derating of the rack."},
      {"rackpulse_rack_draw_kw", "draw_kw",
       "Power the gate counts as drawn (max of its stat and "
       "the current draw)."},
      {"rackpulse_rack_reserved_kw", "reserved_kw", "Active reservations on the rack."},
      {"rackpulse_rack_committed_kw", "committed_kw",
       "Power the gate counts as committed: reservations (larger of reserved and measured) "
       "plus draw not accounted to them."},
  };
  for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++) {
    fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", kw[k].metric, kw[k].help, kw[k].metric);
    json_object_foreach(racks, rack, s)
        put_gauge(out, kw[k].metric, rack, NULL, NULL, jnum(s, kw[k].key));
  }
  fputs("# HELP rackpulse_rack_allowed 1 when the gate would admit work on the rack now (at 0 "
        "kW), 0 when a check fails.\n# TYPE rackpulse_rack_allowed gauge\n",
        out);
  json_object_foreach(racks, rack, s) {
    const char *d = json_string_value(json_object_get(s, "decision"));
    put_gauge(out, "rackpulse_rack_allowed", rack, NULL, NULL,
              d != NULL && strcmp(d, "allow") == 0 ? 1 : 0);
  }
  fputs("# HELP rackpulse_rack_check_failing 1 per rack and gate check that fails now (only "
        "failing checks are listed).\n# TYPE rackpulse_rack_check_failing gauge\n",
        out);
  json_object_foreach(racks, rack, s) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(s, "failing"), i, c)
        put_gauge(out, "rackpulse_rack_check_failing", rack, "check",
                  json_string_value(json_object_get(c, "check")), 1);
  }
  fputs("# HELP rackpulse_rack_missing_inputs Gate inputs without a value (missing, stale, in "
        "error) plus devices down.\n# TYPE rackpulse_rack_missing_inputs gauge\n",
        out);
  json_object_foreach(racks, rack, s)
      put_gauge(out, "rackpulse_rack_missing_inputs", rack, NULL, NULL,
                (double)json_array_size(json_object_get(s, "missing")));
  fprintf(out,
          "# HELP rackpulse_floor_evaluation_age_seconds Since the upkeep thread last "
          "evaluated every rack (the per-rack figures above are that old).\n"
          "# TYPE rackpulse_floor_evaluation_age_seconds gauge\n"
          "rackpulse_floor_evaluation_age_seconds %.3f\n",
          evaluated > 0 ? (double)(now_ms - evaluated) / 1000.0 : -1.0);
  json_decref(racks);

  pthread_mutex_lock(&a->floor->lock);
  static const struct {
    const char *metric, *key, *type, *help;
  } ag[] = {
      {"rackpulse_agent_spool_depth", "spool_depth", "gauge",
       "Frames in the agent's spool not yet delivered (its newest frame's health)."},
      {"rackpulse_agent_frames_dropped_total", "frames_dropped", "counter",
       "Frames the agent dropped from a full spool."},
      {"rackpulse_agent_delivery_latency_seconds", "delivery_latency_s", "gauge",
       "Scrape to Kafka acknowledgement of the agent's last delivered frame."},
  };
  for (size_t k = 0; k < sizeof(ag) / sizeof(ag[0]); k++) {
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", ag[k].metric, ag[k].help, ag[k].metric,
            ag[k].type);
    const char *agent;
    json_t *h;
    json_object_foreach(a->floor->agents, agent, h) {
      fprintf(out, "%s{", ag[k].metric);
      put_label(out, "agent", agent);
      fputc(',', out);
      put_label(out, "rack", json_string_value(json_object_get(h, "rack")));
      fprintf(out, "} %.*g\n", 12, jnum(h, ag[k].key));
    }
  }
  pthread_mutex_unlock(&a->floor->lock);
}

void rp_floor_agent_health(struct rp_floor *f, const char *agent, const char *rack, int64_t ts_ms,
                           uint64_t spool_depth, uint64_t frames_dropped,
                           uint32_t delivery_latency_ms) {
  if (f == NULL || agent == NULL || agent[0] == '\0')
    return;
  pthread_mutex_lock(&f->lock);
  json_t *h = json_object_get(f->agents, agent);
  if (h == NULL || json_integer_value(json_object_get(h, "ts_ms")) <= ts_ms)
    json_object_set_new(f->agents, agent,
                        json_pack("{s:s, s:I, s:I, s:I, s:f}", "rack", rack ? rack : "", "ts_ms",
                                  (json_int_t)ts_ms, "spool_depth", (json_int_t)spool_depth,
                                  "frames_dropped", (json_int_t)frames_dropped,
                                  "delivery_latency_s", (double)delivery_latency_ms / 1000.0));
  pthread_mutex_unlock(&f->lock);
}
