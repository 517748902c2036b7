/* Prometheus /metrics in the text exposition format (version 0.0.4).
 *
 * Per rack, from the upkeep thread's last evaluation of every rack (floor.c):
 *   rackpulse_rack_info{rack,row,loop,pool} 1
 *   rackpulse_rack_headroom_kw{rack,kind=power|thermal}
 *   rackpulse_rack_{power_limit,draw,reserved,committed}_kw{rack}
 *   rackpulse_rack_allowed{rack}                   the gate at 0 kW: 1 allow
 *   rackpulse_rack_check_failing{rack,check}       1, failing checks only
 *   rackpulse_rack_missing_inputs{rack}
 *   rackpulse_rack_devices_down{rack}              devices whose last scrape failed
 *   rackpulse_flag_active{rack,flag,owner}         1 per rack and flag
 *   rackpulse_agent_{spool_depth,frames_dropped_total,
 *                    delivery_latency_seconds}{agent,rack}  newest frame health
 * Only with metrics.series (off by default: every series of every rack does
 * not scale to a big site), at most metrics.series_max lines per scrape:
 *   rackpulse_value{rack,series,device,labels...}  latest value of a series
 *   rackpulse_window{rack,series,device,window,stat}  edge window statistics
 *                                                  (stat: p50 p95 p99 mean min
 *                                                  max stddev slope_per_min)
 *   rackpulse_metrics_series_capped_total          lines cut by series_max
 * Only with metrics.devices (off by default; several per rack):
 *   rackpulse_device_up{rack,device,kind}          1 up, 0 down
 *   rackpulse_device_scrape_ms{rack,device,kind}
 * Always:
 *   rackpulse_rack_age_seconds{rack}               since the rack's newest frame
 *   rackpulse_agent_{frames,gaps,duplicates,undecodable_samples}_total{agent,rack}
 *   rackpulse_agent_{incarnations,unknown_dictionary_frames,
 *                    bad_dictionary_frames}_total{agent,rack}
 *   rackpulse_ingest_*                             the aggregator's own figures,
 *                                                  with the frame lag histogram
 *   rackpulse_store_*                              the LMDB map: size, use, growth
 *   rackpulse_gate_*, rackpulse_audit_*, rackpulse_reservation_kw, rackpulse_http_*
 * Label values are escaped (backslash, quote, newline). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "deploy.h"
#include "gate.h"
#include "ledger.h"
#include "reservations.h"

struct render {
  FILE *out;
  const char *rack;
  int64_t now_ms;
  uint64_t *left;   /* per-series lines still allowed in this scrape */
  uint64_t *capped; /* per-series lines cut */
};

/* Whether one more per-series line fits under metrics.series_max. */
static bool take(struct render *r) {
  if (*r->left == 0) {
    (*r->capped)++;
    return false;
  }
  (*r->left)--;
  return true;
}

static void put_escaped(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      fputc('\\', out), fputc(*s, out);
    else if (*s == '\n')
      fputs("\\n", out);
    else
      fputc(*s, out);
  }
}

/* Writes the labels of series key "name{k=v,...}@device" after rack. */
static void put_series_labels(FILE *out, const char *key) {
  char buf[512];
  snprintf(buf, sizeof(buf), "%s", key);
  char *at = strrchr(buf, '@');
  if (at != NULL)
    *at++ = '\0';
  char *brace = strchr(buf, '{');
  if (brace != NULL)
    *brace++ = '\0';
  fputs(",series=\"", out);
  put_escaped(out, buf);
  fputs("\",device=\"", out);
  put_escaped(out, at ? at : "");
  fputc('"', out);
  if (brace == NULL)
    return;
  char *end = strrchr(brace, '}');
  if (end != NULL)
    *end = '\0';
  for (char *save = NULL, *kv = strtok_r(brace, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(kv, '=');
    if (eq == NULL)
      continue;
    *eq = '\0';
    /* Label names must match [a-zA-Z_][a-zA-Z0-9_]*. */
    bool ok = (kv[0] < '0' || kv[0] > '9') && kv[0] != '\0';
    for (char *c = kv; *c && ok; c++)
      ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
           *c == '_';
    if (!ok || strcmp(kv, "rack") == 0 || strcmp(kv, "series") == 0 || strcmp(kv, "device") == 0)
      continue;
    fprintf(out, ",%s=\"", kv);
    put_escaped(out, eq + 1);
    fputc('"', out);
  }
}

static void on_latest(void *ctx, const char *key, const struct store_latest *l) {
  struct render *r = ctx;
  if (l->status != 0 || !isfinite(l->value) || !take(r))
    return;
  fputs("rackpulse_value{rack=\"", r->out);
  put_escaped(r->out, r->rack);
  fputc('"', r->out);
  put_series_labels(r->out, key);
  fprintf(r->out, ",unit=\"");
  put_escaped(r->out, l->unit);
  fprintf(r->out, "\"} %.*g\n", 12, l->value);
}

static void on_stats(void *ctx, const char *key, const struct store_stats *st) {
  struct render *r = ctx;
  char series[512];
  snprintf(series, sizeof(series), "%s", key);
  char *bar = strrchr(series, '|');
  if (bar == NULL)
    return;
  *bar = '\0';
  const struct {
    const char *name;
    double v;
    bool ok;
  } rows[] = {{"p50", st->p50, true},       {"p95", st->p95, true},
              {"p99", st->p99, true},       {"mean", st->mean, true},
              {"min", st->min, true},       {"max", st->max, true},
              {"stddev", st->stddev, true}, {"slope_per_min", st->slope_per_min, st->has_slope}};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    if (!rows[i].ok || !isfinite(rows[i].v) || !take(r))
      continue;
    fputs("rackpulse_window{rack=\"", r->out);
    put_escaped(r->out, r->rack);
    fputc('"', r->out);
    put_series_labels(r->out, series);
    fprintf(r->out, ",window=\"%s\",stat=\"%s\"} %.*g\n", bar + 1, rows[i].name, 12, rows[i].v);
  }
}

static void count_down(void *ctx, const char *device, const struct store_device *d) {
  (void)device;
  *(unsigned *)ctx += !d->up;
}

static void on_device(void *ctx, const char *device, const struct store_device *d) {
  struct render *r = ctx;
  for (int pass = 0; pass < 2; pass++) {
    fprintf(r->out, "%s{rack=\"", pass ? "rackpulse_device_scrape_ms" : "rackpulse_device_up");
    put_escaped(r->out, r->rack);
    fputs("\",device=\"", r->out);
    put_escaped(r->out, device);
    fputs("\",kind=\"", r->out);
    put_escaped(r->out, d->kind);
    fprintf(r->out, "\"} %u\n", pass ? d->scrape_ms : (unsigned)d->up);
  }
}

struct rack_list {
  char (*ids)[RP_ID_MAX + 1];
  int64_t *last;
  size_t n, cap;
};

static void on_rack(void *ctx, const char *rack, const struct store_rack *rk) {
  struct rack_list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    void *ids = realloc(l->ids, cap * sizeof(*l->ids));
    if (ids == NULL)
      return;
    l->ids = ids;
    void *last = realloc(l->last, cap * sizeof(*l->last));
    if (last == NULL)
      return;
    l->last = last;
    l->cap = cap;
  }
  snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", rack);
  l->last[l->n++] = rk->last_frame_ms;
}

static void on_agent(void *ctx, const char *agent, const struct store_agent *ag) {
  FILE *out = ctx;
  const struct {
    const char *name;
    uint64_t v;
  } rows[] = {{"frames", ag->frames},
              {"gaps", ag->gaps},
              {"duplicates", ag->duplicates},
              {"undecodable_samples", ag->undecodable},
              {"incarnations", ag->incarnations},
              {"unknown_dictionary_frames", ag->unknown_dict_frames},
              {"bad_dictionary_frames", ag->bad_dict_frames}};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    fprintf(out, "rackpulse_agent_%s_total{agent=\"", rows[i].name);
    put_escaped(out, agent);
    fputs("\",rack=\"", out);
    put_escaped(out, ag->rack);
    fprintf(out, "\"} %llu\n", (unsigned long long)rows[i].v);
  }
}

/* Active flags: 1 per rack and flag. */
static void flags_metrics(struct rp_aggregator *a, FILE *out, int64_t now) {
  json_t *flags = rp_ledger_flag_list(a->ledger, NULL);
  fputs("# HELP rackpulse_flag_active 1 while a flag is set on a rack.\n"
        "# TYPE rackpulse_flag_active gauge\n",
        out);
  size_t i;
  json_t *f;
  json_array_foreach(flags, i, f) {
    if (json_integer_value(json_object_get(f, "expires_ms")) <= now)
      continue;
    fputs("rackpulse_flag_active{rack=\"", out);
    put_escaped(out, json_string_value(json_object_get(f, "rack")));
    fputs("\",flag=\"", out);
    put_escaped(out, json_string_value(json_object_get(f, "flag")));
    fputs("\",owner=\"", out);
    put_escaped(out, json_string_value(json_object_get(f, "owner")));
    fputs("\"} 1\n", out);
  }
  json_decref(flags);
}

char *rp_metrics_render(struct rp_aggregator *a, size_t *len) {
  char *text = NULL;
  FILE *out = open_memstream(&text, len);
  if (out == NULL)
    return NULL;
  struct store_read *rd;
  if (store_read_begin(a->store, &rd) != 0) {
    fclose(out);
    free(text);
    return NULL;
  }
  int64_t now = rp_now_ms();
  struct rack_list racks = {0};
  store_read_each_rack(rd, on_rack, &racks);

  uint64_t left = (uint64_t)a->cfg.metrics.series_max, capped = 0;
  if (a->cfg.metrics.series) {
    fputs("# HELP rackpulse_value Latest value of a rack series, in its unit.\n"
          "# TYPE rackpulse_value gauge\n",
          out);
    for (size_t i = 0; i < racks.n; i++) {
      struct render r = {out, racks.ids[i], now, &left, &capped};
      store_read_each_latest(rd, racks.ids[i], on_latest, &r);
    }
    fputs("# HELP rackpulse_window Edge window statistics of a series (stat, window in s).\n"
          "# TYPE rackpulse_window gauge\n",
          out);
    for (size_t i = 0; i < racks.n; i++) {
      struct render r = {out, racks.ids[i], now, &left, &capped};
      store_read_each_stats(rd, racks.ids[i], on_stats, &r);
    }
  }
  uint64_t capped_total = atomic_fetch_add(&a->stats.series_capped, capped) + capped;
  fprintf(out,
          "# HELP rackpulse_metrics_series_capped_total Per-series lines (rackpulse_value, "
          "rackpulse_window) cut from scrapes by metrics.series_max.\n"
          "# TYPE rackpulse_metrics_series_capped_total counter\n"
          "rackpulse_metrics_series_capped_total %llu\n",
          (unsigned long long)capped_total);
  fputs("# HELP rackpulse_rack_age_seconds Seconds since the rack's newest frame.\n"
        "# TYPE rackpulse_rack_age_seconds gauge\n",
        out);
  for (size_t i = 0; i < racks.n; i++) {
    fputs("rackpulse_rack_age_seconds{rack=\"", out);
    put_escaped(out, racks.ids[i]);
    fprintf(out, "\"} %.3f\n", (double)(now - racks.last[i]) / 1000.0);
  }
  fputs("# HELP rackpulse_rack_devices_down Devices of the rack whose last scrape failed.\n"
        "# TYPE rackpulse_rack_devices_down gauge\n",
        out);
  for (size_t i = 0; i < racks.n; i++) {
    unsigned down = 0;
    store_read_each_device(rd, racks.ids[i], count_down, &down);
    fputs("rackpulse_rack_devices_down{rack=\"", out);
    put_escaped(out, racks.ids[i]);
    fprintf(out, "\"} %u\n", down);
  }
  if (a->cfg.metrics.devices) {
    fputs("# HELP rackpulse_device_up 1 when the device's last scrape succeeded.\n"
          "# TYPE rackpulse_device_up gauge\n"
          "# HELP rackpulse_device_scrape_ms Duration of the device's last scrape.\n"
          "# TYPE rackpulse_device_scrape_ms gauge\n",
          out);
    for (size_t i = 0; i < racks.n; i++) {
      struct render r = {out, racks.ids[i], now, &left, &capped};
      store_read_each_device(rd, racks.ids[i], on_device, &r);
    }
  }
  fputs("# HELP rackpulse_agent_frames_total Frames applied per agent.\n"
        "# TYPE rackpulse_agent_frames_total counter\n"
        "# HELP rackpulse_agent_gaps_total Sequence numbers never received.\n"
        "# TYPE rackpulse_agent_gaps_total counter\n"
        "# HELP rackpulse_agent_duplicates_total Frames received twice and ignored.\n"
        "# TYPE rackpulse_agent_duplicates_total counter\n"
        "# HELP rackpulse_agent_undecodable_samples_total Samples without a known dictionary.\n"
        "# TYPE rackpulse_agent_undecodable_samples_total counter\n"
        "# HELP rackpulse_agent_incarnations_total Agent incarnations seen (a new one: its "
        "state was reset).\n"
        "# TYPE rackpulse_agent_incarnations_total counter\n"
        "# HELP rackpulse_agent_unknown_dictionary_frames_total Frames whose samples were "
        "skipped: their dictionary (by hash) was not received yet.\n"
        "# TYPE rackpulse_agent_unknown_dictionary_frames_total counter\n"
        "# HELP rackpulse_agent_bad_dictionary_frames_total Dictionaries refused: content "
        "does not match their hash.\n"
        "# TYPE rackpulse_agent_bad_dictionary_frames_total counter\n",
        out);
  store_read_each_agent(rd, on_agent, out);
  store_read_end(rd);
  free(racks.ids);
  free(racks.last);

  const struct rp_ingest_stats *s = &a->stats;
  int64_t last = atomic_load(&s->last_frame_ms);
  fprintf(out,
          "# HELP rackpulse_ingest_frames_total Frames read from Kafka, by outcome.\n"
          "# TYPE rackpulse_ingest_frames_total counter\n"
          "rackpulse_ingest_frames_total{outcome=\"applied\"} %llu\n"
          "rackpulse_ingest_frames_total{outcome=\"duplicate\"} %llu\n"
          "rackpulse_ingest_frames_total{outcome=\"invalid\"} %llu\n"
          "# HELP rackpulse_ingest_frames_misplaced_total Frames read on another partition than "
          "their rack's (a producer with another partitioner).\n"
          "# TYPE rackpulse_ingest_frames_misplaced_total counter\n"
          "rackpulse_ingest_frames_misplaced_total %llu\n"
          "# HELP rackpulse_ingest_samples_total Samples in applied frames.\n"
          "# TYPE rackpulse_ingest_samples_total counter\n"
          "rackpulse_ingest_samples_total %llu\n"
          "# HELP rackpulse_ingest_batches_total LMDB write transactions committed.\n"
          "# TYPE rackpulse_ingest_batches_total counter\n"
          "rackpulse_ingest_batches_total %llu\n"
          "# HELP rackpulse_ingest_batch_frames Frames in the last batch.\n"
          "# TYPE rackpulse_ingest_batch_frames gauge\n"
          "rackpulse_ingest_batch_frames %llu\n"
          "# HELP rackpulse_ingest_apply_seconds Duration of the last batch, read to commit.\n"
          "# TYPE rackpulse_ingest_apply_seconds gauge\n"
          "rackpulse_ingest_apply_seconds %.6f\n"
          "# HELP rackpulse_ingest_lag_seconds Now minus the newest applied frame's time.\n"
          "# TYPE rackpulse_ingest_lag_seconds gauge\n"
          "rackpulse_ingest_lag_seconds %.3f\n",
          (unsigned long long)atomic_load(&s->frames_applied),
          (unsigned long long)atomic_load(&s->frames_duplicate),
          (unsigned long long)atomic_load(&s->frames_invalid),
          (unsigned long long)atomic_load(&s->frames_misplaced),
          (unsigned long long)atomic_load(&s->samples_applied),
          (unsigned long long)atomic_load(&s->batches),
          (unsigned long long)atomic_load(&s->last_batch_size),
          (double)atomic_load(&s->last_apply_us) / 1e6,
          last > 0 ? (double)(now - last) / 1000.0 : 0.0);

  static const double bounds[RP_LAG_NBUCKETS] = RP_LAG_BUCKETS;
  fputs("# HELP rackpulse_ingest_frame_lag_seconds Frame time to the commit that made it "
        "visible, per applied frame.\n"
        "# TYPE rackpulse_ingest_frame_lag_seconds histogram\n",
        out);
  unsigned long long cumulative = 0;
  for (size_t i = 0; i <= RP_LAG_NBUCKETS; i++) {
    cumulative += atomic_load(&s->lag_bucket[i]);
    if (i < RP_LAG_NBUCKETS)
      fprintf(out, "rackpulse_ingest_frame_lag_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
              cumulative);
    else
      fprintf(out, "rackpulse_ingest_frame_lag_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
  }
  fprintf(out,
          "rackpulse_ingest_frame_lag_seconds_sum %.3f\n"
          "rackpulse_ingest_frame_lag_seconds_count %llu\n",
          (double)atomic_load(&s->lag_sum_ms) / 1000.0, cumulative);

  struct store_map_info mi;
  store_map_info(a->store, &mi);
  fprintf(out,
          "# HELP rackpulse_store_map_bytes Size of the LMDB map (grows when full).\n"
          "# TYPE rackpulse_store_map_bytes gauge\n"
          "rackpulse_store_map_bytes %zu\n"
          "# HELP rackpulse_store_map_max_bytes Largest map allowed (store.map_size_max_mb).\n"
          "# TYPE rackpulse_store_map_max_bytes gauge\n"
          "rackpulse_store_map_max_bytes %zu\n"
          "# HELP rackpulse_store_used_bytes Bytes of the map in use.\n"
          "# TYPE rackpulse_store_used_bytes gauge\n"
          "rackpulse_store_used_bytes %zu\n"
          "# HELP rackpulse_store_map_grows_total Times the map was grown.\n"
          "# TYPE rackpulse_store_map_grows_total counter\n"
          "rackpulse_store_map_grows_total %llu\n"
          "# HELP rackpulse_http_limited_total Requests answered 429 (http.rate_limit).\n"
          "# TYPE rackpulse_http_limited_total counter\n"
          "rackpulse_http_limited_total %llu\n",
          mi.map_bytes, mi.max_bytes, mi.used_bytes, (unsigned long long)mi.grows,
          (unsigned long long)atomic_load(&a->stats.http_limited));
  if (a->gate != NULL)
    rp_gate_metrics(a->gate, out);
  if (a->ledger != NULL) {
    fprintf(out,
            "# HELP rackpulse_audit_dropped_total Gate decisions not kept (queue full or "
            "write failed).\n# TYPE rackpulse_audit_dropped_total counter\n"
            "rackpulse_audit_dropped_total %llu\n",
            (unsigned long long)rp_ledger_audit_dropped(a->ledger));
    fprintf(out,
            "# HELP rackpulse_audit_evicted_total Gate decisions deleted, oldest first, to keep "
            "the audit log within audit.max_entries and audit.map_size_mb.\n"
            "# TYPE rackpulse_audit_evicted_total counter\n"
            "rackpulse_audit_evicted_total %llu\n",
            (unsigned long long)rp_ledger_audit_evicted(a->ledger));
    rp_reservations_metrics(a, out, now);
    flags_metrics(a, out, now);
  }
  rp_floor_metrics(a, out, now);
  rp_slo_metrics(a->slo, out, now);
  rp_deploy_metrics(out, now); /* deploy markers for annotations (deploy.c) */
  rp_audit_topic_metrics(a, out);
  rp_cluster_metrics(a->cluster, out);
  if (fclose(out) != 0) {
    free(text);
    return NULL;
  }
  return text;
}
