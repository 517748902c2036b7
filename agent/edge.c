/* Edge computation in the agent (see edge.h): the latest value of every
 * series, window statistics for the tracked ones, and derived series. All
 * memory is allocated when the agent starts or when a tracked series is first
 * seen; observing a sample allocates nothing. */
#include "edge.h"
#include "stats_wire.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define EDGE_WINDOW_FIRST_ROOM 16 /* samples a window holds before it first grows */

enum track { TRACK_UNKNOWN = 0, TRACK_YES, TRACK_NO };

struct rp_edge {
  struct rp_edge_config cfg;
  int64_t interval_ms;
  size_t max_series;
  double *last_value; /* by series id */
  int64_t *last_ts;   /* by series id: monotonic ms of the latest sample; 0 = never */
  uint8_t *track;     /* by series id: enum track */
  uint32_t tracked_ids[RP_EDGE_MAX_STATS_SERIES];
  int tracked_decimals[RP_EDGE_MAX_STATS_SERIES];
  struct rp_stats_sent sent[RP_EDGE_MAX_STATS_SERIES * RP_STATS_SERIES_MAX_WINDOWS];
  struct rp_stats_series *tracked[RP_EDGE_MAX_STATS_SERIES];
  size_t ntracked;
  Rackpulse__V1__WindowStats ws[RP_EDGE_MAX_STATS_SERIES * RP_STATS_SERIES_MAX_WINDOWS];
  Rackpulse__V1__WindowStats *ws_ptrs[RP_EDGE_MAX_STATS_SERIES * RP_STATS_SERIES_MAX_WINDOWS];
};

/* ---- configuration ---- */

struct derived_text {
  char name[64], type[16], ret[64], supply[64], flow[64], heat[64], power[64], coolant[16];
  double rho, cp;
};

typedef struct derived_text T;

static const struct rp_cfg_field derived_fields[] = {
    RP_CFG_STR("name", T, name, NULL, 1, "name of the derived series, e.g. cdu.delta_t"),
    RP_CFG_STR("type", T, type, NULL, 1, "delta_t, heat_removed or heat_balance"),
    RP_CFG_STR("return", T, ret, "", 0, "delta_t, heat_removed: return temperature series"),
    RP_CFG_STR("supply", T, supply, "", 0, "delta_t, heat_removed: supply temperature series"),
    RP_CFG_STR("flow", T, flow, "", 0, "heat_removed: volumetric flow series, L/min"),
    RP_CFG_STR("coolant", T, coolant, "water", 0,
               "heat_removed: water (995.6 kg/m3, 4.18 kJ/kg.K), pg25 or custom"),
    RP_CFG_NUM("density", RP_CFG_DOUBLE, T, rho, "0", 0, 0, "custom coolant density, kg/m3"),
    RP_CFG_NUM("specific_heat", RP_CFG_DOUBLE, T, cp, "0", 0, 0,
               "custom coolant specific heat, kJ/kg.K"),
    RP_CFG_STR("heat", T, heat, "", 0, "heat_balance: heat removed series, kW"),
    RP_CFG_STR("power", T, power, "", 0, "heat_balance: electrical power series, W or kW"),
};

typedef struct rp_edge_config E;

static const struct rp_cfg_field stats_fields[] = {
    RP_CFG_NUM("every", RP_CFG_INT, E, stats_every, "10", 1, 3600,
               "frames between a series' window statistics on the wire"),
    RP_CFG_NUM("tolerance", RP_CFG_DOUBLE, E, stats_tolerance, "0.01", 0, 1,
               "...or at once when one moves by more than this x |mean| (min. one unit)"),
};

static const char *const default_patterns[] = {"cdu.*_temp",       "cdu.flow",      "cdu.delta_t",
                                               "cdu.heat_removed", "server.*_temp", "*.power"};

static int load_windows(const struct rp_cfg_doc *doc, rp_cfg_node list, struct rp_edge_config *cfg,
                        char *err, size_t errlen) {
  size_t n = rp_cfg_seq_len(doc, list);
  if (rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE || n == 0 || n > RP_STATS_SERIES_MAX_WINDOWS) {
    rp_cfg_error(doc, list, "stats.windows", err, errlen,
                 "expected a list of 1..%d durations, e.g. [60s, 300s]",
                 RP_STATS_SERIES_MAX_WINDOWS);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node item = rp_cfg_seq_item(doc, list, i);
    const char *text = rp_cfg_scalar(doc, item);
    int64_t ms;
    if (text == NULL || rp_parse_duration_ms(text, &ms) != 0 || ms < 1000 || ms > 86400000) {
      rp_cfg_error(doc, item, "stats.windows", err, errlen,
                   "'%s' is not a duration between 1s and 24h", text ? text : "?");
      return -EINVAL;
    }
    cfg->windows_ms[i] = ms;
  }
  cfg->nwindows = n;
  return 0;
}

static int load_patterns(const struct rp_cfg_doc *doc, rp_cfg_node list, struct rp_edge_config *cfg,
                         char *err, size_t errlen) {
  size_t n = rp_cfg_seq_len(doc, list);
  if (rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE || n > RP_EDGE_MAX_PATTERNS) {
    rp_cfg_error(doc, list, "stats.series", err, errlen,
                 "expected a list of at most %d series name patterns", RP_EDGE_MAX_PATTERNS);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node item = rp_cfg_seq_item(doc, list, i);
    const char *text = rp_cfg_scalar(doc, item);
    if (text == NULL || text[0] == '\0' || strlen(text) >= sizeof(cfg->patterns[0])) {
      rp_cfg_error(doc, item, "stats.series", err, errlen, "expected a pattern under 64 bytes");
      return -EINVAL;
    }
    strcpy(cfg->patterns[i], text);
  }
  cfg->npatterns = n;
  return 0;
}

/* Checks that the inputs a type needs are given and records them. */
static int set_inputs(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where, const T *t,
                      struct rp_derived *d, char *err, size_t errlen) {
  const char *need[3] = {NULL, NULL, NULL};
  const char *keys[3] = {NULL, NULL, NULL};
  if (strcmp(t->type, "delta_t") == 0) {
    d->type = RP_DERIVED_DELTA_T;
    need[0] = t->ret, keys[0] = "return";
    need[1] = t->supply, keys[1] = "supply";
  } else if (strcmp(t->type, "heat_removed") == 0) {
    d->type = RP_DERIVED_HEAT_REMOVED;
    need[0] = t->ret, keys[0] = "return";
    need[1] = t->supply, keys[1] = "supply";
    need[2] = t->flow, keys[2] = "flow";
  } else if (strcmp(t->type, "heat_balance") == 0) {
    d->type = RP_DERIVED_HEAT_BALANCE;
    need[0] = t->heat, keys[0] = "heat";
    need[1] = t->power, keys[1] = "power";
  } else {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "type"), where, err, errlen,
                 "type '%s' is not delta_t, heat_removed or heat_balance", t->type);
    return -EINVAL;
  }
  for (size_t i = 0; i < 3 && need[i] != NULL; i++) {
    if (need[i][0] == '\0') {
      rp_cfg_error(doc, node, where, err, errlen, "%s: required for type %s", keys[i], t->type);
      return -EINVAL;
    }
    snprintf(d->input[i], sizeof(d->input[i]), "%s", need[i]);
    d->input_id[i] = -1;
    d->ninputs = i + 1;
  }
  return 0;
}

static int set_coolant(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                       const T *t, struct rp_derived *d, char *err, size_t errlen) {
  int rc;
  if (strcmp(t->coolant, "water") == 0)
    rc = rp_coolant_preset(RP_COOLANT_WATER, &d->coolant);
  else if (strcmp(t->coolant, "pg25") == 0)
    rc = rp_coolant_preset(RP_COOLANT_PG25, &d->coolant);
  else if (strcmp(t->coolant, "custom") == 0)
    rc = rp_coolant_custom(t->rho, t->cp, &d->coolant);
  else
    rc = -EINVAL;
  if (rc != 0)
    rp_cfg_error(doc, rp_cfg_get(doc, node, "coolant"), where, err, errlen,
                 "coolant '%s': expected water, pg25, or custom with density and "
                 "specific_heat > 0",
                 t->coolant);
  return rc;
}

int rp_edge_config_load(const struct rp_cfg_doc *doc, rp_cfg_node root, struct rp_edge_config *cfg,
                        char *err, size_t errlen) {
  static const char *const stats_sections[] = {"windows", "series", NULL};
  memset(cfg, 0, sizeof(*cfg));
  cfg->windows_ms[0] = 60000;
  cfg->windows_ms[1] = 300000;
  cfg->nwindows = 2;
  for (size_t i = 0; i < N(default_patterns); i++)
    strcpy(cfg->patterns[i], default_patterns[i]);
  cfg->npatterns = N(default_patterns);

  rp_cfg_node stats = rp_cfg_get(doc, root, "stats");
  int rc = rp_cfg_apply(doc, stats, "stats", stats_fields, N(stats_fields), stats_sections, cfg,
                        err, errlen);
  if (rc == 0 && rp_cfg_get(doc, stats, "windows"))
    rc = load_windows(doc, rp_cfg_get(doc, stats, "windows"), cfg, err, errlen);
  if (rc == 0 && rp_cfg_get(doc, stats, "series"))
    rc = load_patterns(doc, rp_cfg_get(doc, stats, "series"), cfg, err, errlen);
  if (rc != 0)
    return rc;

  rp_cfg_node list = rp_cfg_get(doc, root, "derived");
  if (list == 0)
    return 0;
  size_t n = rp_cfg_seq_len(doc, list);
  if (rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE || n > RP_EDGE_MAX_DERIVED) {
    rp_cfg_error(doc, list, "derived", err, errlen, "expected a list of at most %d entries",
                 RP_EDGE_MAX_DERIVED);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    char where[32];
    snprintf(where, sizeof(where), "derived[%zu]", i);
    rp_cfg_node node = rp_cfg_seq_item(doc, list, i);
    T t;
    memset(&t, 0, sizeof(t));
    struct rp_derived *d = &cfg->derived[i];
    if ((rc = rp_cfg_apply(doc, node, where, derived_fields, N(derived_fields), NULL, &t, err,
                           errlen)) != 0 ||
        (rc = set_inputs(doc, node, where, &t, d, err, errlen)) != 0 ||
        (rc = set_coolant(doc, node, where, &t, d, err, errlen)) != 0)
      return rc;
    snprintf(d->name, sizeof(d->name), "%s", t.name);
  }
  cfg->nderived = n;
  return 0;
}

void rp_edge_config_help(FILE *out) {
  fprintf(out, "  %-28s %-9s %s\n", "stats.windows", "list",
          "window durations, up to 4 (default: [60s, 300s])");
  fprintf(out, "  %-28s %-9s %s\n", "stats.series", "list",
          "series name patterns that carry window statistics");
  rp_cfg_print_help(out, "stats", stats_fields, N(stats_fields));
  rp_cfg_print_help(out, "derived[]", derived_fields, N(derived_fields));
}

/* ---- state ---- */

int rp_edge_new(struct rp_edge **out, const struct rp_edge_config *cfg, size_t max_series,
                int64_t interval_ms) {
  struct rp_edge *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return -ENOMEM;
  e->cfg = *cfg;
  e->interval_ms = interval_ms > 0 ? interval_ms : 1000;
  e->max_series = max_series;
  e->last_value = calloc(max_series, sizeof(*e->last_value));
  e->last_ts = calloc(max_series, sizeof(*e->last_ts));
  e->track = calloc(max_series, sizeof(*e->track));
  if (!e->last_value || !e->last_ts || !e->track) {
    rp_edge_free(e);
    return -ENOMEM;
  }
  *out = e;
  return 0;
}

void rp_edge_free(struct rp_edge *e) {
  if (e == NULL)
    return;
  for (size_t i = 0; i < e->ntracked; i++)
    rp_stats_series_free(e->tracked[i]);
  free(e->last_value);
  free(e->last_ts);
  free(e->track);
  free(e);
}

static bool wants_stats(const struct rp_edge *e, const char *name) {
  for (size_t i = 0; i < e->cfg.npatterns; i++)
    if (fnmatch(e->cfg.patterns[i], name, 0) == 0)
      return true;
  return false;
}

/* Creates the window statistics of series `id`; TRACK_NO when not wanted or
 * when the bound on tracked series is reached. */
static void start_tracking(struct rp_edge *e, const struct rp_series *s) {
  e->track[s->id] = TRACK_NO;
  if (e->cfg.nwindows == 0 || !wants_stats(e, s->name) || e->ntracked == RP_EDGE_MAX_STATS_SERIES)
    return;
  struct rp_stats_series_opts o = {.nwindows = e->cfg.nwindows};
  for (size_t i = 0; i < e->cfg.nwindows; i++) {
    /* Room for samples twice as frequent as the frame interval at most;
     * allocated as the series' own pace needs it (a BMC's series every
     * 5 s holds a fifth of what a 1 s series does). */
    int64_t cap = 2 * e->cfg.windows_ms[i] / e->interval_ms + 16;
    o.window[i] = (struct rp_window_opts){.duration_ms = e->cfg.windows_ms[i],
                                          .capacity = (size_t)cap,
                                          .initial_capacity = EDGE_WINDOW_FIRST_ROOM,
                                          .method = RP_WINDOW_AUTO};
  }
  if (rp_stats_series_new(&e->tracked[e->ntracked], &o) != 0)
    return;
  e->tracked_decimals[e->ntracked] = s->decimals;
  e->tracked_ids[e->ntracked++] = s->id;
  e->track[s->id] = TRACK_YES;
}

static struct rp_stats_series *tracked_of(struct rp_edge *e, uint32_t id) {
  for (size_t i = 0; i < e->ntracked; i++)
    if (e->tracked_ids[i] == id)
      return e->tracked[i];
  return NULL;
}

void rp_edge_observe(struct rp_edge *e, const struct rp_series *s, int64_t mono_ms, double v) {
  if (s->id >= e->max_series || !isfinite(v))
    return;
  if (mono_ms >= e->last_ts[s->id]) {
    e->last_value[s->id] = v;
    e->last_ts[s->id] = mono_ms;
  }
  if (e->track[s->id] == TRACK_UNKNOWN)
    start_tracking(e, s);
  if (e->track[s->id] == TRACK_YES)
    rp_stats_series_add(tracked_of(e, s->id), mono_ms, v);
}

/* ---- derived series ---- */

static int64_t find_series(const struct rp_series_table *t, const char *name) {
  for (size_t i = 0; i < t->count; i++)
    if (t->entries[i].nlabels == 0 && strcmp(t->entries[i].name, name) == 0)
      return (int64_t)i;
  return -1;
}

/* Fetches input i of d if present and fresh; else says why in out. */
static bool input_value(struct rp_edge *e, struct rp_derived *d, size_t i,
                        const struct rp_series_table *t, int64_t mono_now_ms, double *v,
                        const char **unit, struct rp_derived_value *out) {
  if (d->input_id[i] < 0)
    d->input_id[i] = find_series(t, d->input[i]);
  int64_t id = d->input_id[i];
  if (id < 0 || (size_t)id >= e->max_series || e->last_ts[id] == 0) {
    snprintf(out->detail, sizeof(out->detail), "input %s: no valid reading", d->input[i]);
    return false;
  }
  if (mono_now_ms - e->last_ts[id] > 2 * e->interval_ms) {
    snprintf(out->detail, sizeof(out->detail), "input %s: stale (%.1f s old)", d->input[i],
             (double)(mono_now_ms - e->last_ts[id]) / 1000.0);
    return false;
  }
  *v = e->last_value[id];
  if (unit != NULL)
    *unit = t->entries[id].unit;
  return true;
}

static void derive_one(struct rp_edge *e, struct rp_derived *d, const struct rp_series_table *t,
                       int64_t mono_now_ms, struct rp_derived_value *out) {
  double in[3] = {0, 0, 0};
  const char *power_unit = "";
  static const char *const units[] = {[RP_DERIVED_DELTA_T] = "K",
                                      [RP_DERIVED_HEAT_REMOVED] = "kW",
                                      [RP_DERIVED_HEAT_BALANCE] = "1"};
  memset(out, 0, sizeof(*out));
  out->def = d;
  out->unit = units[d->type];
  for (size_t i = 0; i < d->ninputs; i++)
    if (!input_value(e, d, i, t, mono_now_ms, &in[i], i == 1 ? &power_unit : NULL, out))
      return;
  switch (d->type) {
  case RP_DERIVED_DELTA_T:
    out->value = rp_delta_t(in[0], in[1]);
    out->ok = isfinite(out->value);
    break;
  case RP_DERIVED_HEAT_REMOVED:
    out->ok = rp_heat_removed_kw(&d->coolant, rp_delta_t(in[0], in[1]), in[2], &out->value) == 0;
    break;
  case RP_DERIVED_HEAT_BALANCE: {
    double power_kw = strcmp(power_unit, "W") == 0 ? in[1] / 1000.0 : in[1];
    out->ok = rp_heat_balance(in[0], power_kw, &out->value) == 0;
    if (!out->ok)
      snprintf(out->detail, sizeof(out->detail), "input %s: power %.3f kW is not positive",
               d->input[1], power_kw);
    break;
  }
  }
  if (!out->ok && out->detail[0] == '\0')
    snprintf(out->detail, sizeof(out->detail), "inputs give no finite value");
}

size_t rp_edge_derive(struct rp_edge *e, const struct rp_series_table *series, int64_t mono_now_ms,
                      struct rp_derived_value *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < e->cfg.nderived && n < cap; i++)
    derive_one(e, &e->cfg.derived[i], series, mono_now_ms, &out[n++]);
  return n;
}

size_t rp_edge_window_stats(struct rp_edge *e, int64_t wall_now_ms, int64_t mono_now_ms,
                            Rackpulse__V1__WindowStats ***out) {
  static const double q[3] = {0.50, 0.95, 0.99};
  size_t n = 0;
  for (size_t i = 0; i < e->ntracked; i++) {
    for (size_t w = 0; w < rp_stats_series_nwindows(e->tracked[i]); w++) {
      const struct rp_window *win = rp_stats_series_window(e->tracked[i], w);
      struct rp_window_summary s;
      double p[3];
      if (rp_window_summary(win, &s) != 0 || s.count == 0)
        continue;
      rp_window_quantiles(win, q, p, 3);
      Rackpulse__V1__WindowStats *ws = &e->ws[n];
      rackpulse__v1__window_stats__init(ws);
      ws->series = e->tracked_ids[i];
      ws->window_s = (uint32_t)(e->cfg.windows_ms[w] / 1000);
      ws->count = (uint32_t)s.count;
      ws->min = s.min;
      ws->max = s.max;
      ws->mean = s.mean;
      ws->stddev = s.stddev;
      ws->p50 = p[0];
      ws->p95 = p[1];
      ws->p99 = p[2];
      ws->has_slope = s.has_slope;
      ws->slope_per_min = s.has_slope ? s.slope_per_min : 0;
      /* The window runs on the monotonic clock; the wire gets Unix time, as
       * old as the newest sample really is. */
      ws->newest_ms = wall_now_ms - (mono_now_ms - s.newest_ts_ms);
      rp_stats_wire_scale(ws, e->tracked_decimals[i]); /* else: doubles, sent at once */
      if (!rp_stats_wire_due(&e->sent[i * RP_STATS_SERIES_MAX_WINDOWS + w], ws,
                             (uint32_t)e->cfg.stats_every, e->cfg.stats_tolerance))
        continue;
      e->ws_ptrs[n] = ws;
      n++;
    }
  }
  *out = e->ws_ptrs;
  return n;
}
