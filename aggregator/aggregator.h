/* rackpulse-aggregator internals shared across its files: configuration,
 * the ingest counters that /metrics reads, and each file's entry points. */
#ifndef RACKPULSE_AGGREGATOR_H
#define RACKPULSE_AGGREGATOR_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

struct rp_policy {
  char version[64];
  int64_t max_staleness_ms;     /* telemetry older than this fails closed */
  double supply_temp_max;       /* °C, latest supply temperature */
  char supply_temp_series[64];  /* the series that carries it */
};

struct rp_aggregator_config {
  char config_path[512];
  struct {
    char brokers[512];
    char topic[128];
    char group[128];
    int64_t batch_max;
    int64_t batch_wait_ms;
  } kafka;
  struct {
    char path[256];
    int64_t map_size_mb;
  } store;
  struct {
    char listen[64];
    int64_t port;
    int64_t threads;
    int64_t max_connections;
  } http;
  char log_level[16];
  struct rp_policy policy;
};

/* config.c. Returns 0, or a negative errno with err naming file:line, key. */
int rp_aggregator_config_load(const char *path, struct rp_aggregator_config *cfg, char *err,
                              size_t errlen);
void rp_aggregator_config_help(FILE *out);

/* Ingest counters, written by the ingest thread, read by HTTP threads. */
struct rp_ingest_stats {
  atomic_uint_fast64_t frames_applied, frames_duplicate, frames_invalid;
  atomic_uint_fast64_t batches, last_batch_size, last_apply_us;
  atomic_int_fast64_t last_frame_ms; /* frame time of the newest applied frame */
};

struct rp_aggregator {
  struct rp_aggregator_config cfg;
  struct store *store;
  struct rp_ingest_stats stats;
  struct rp_http *http;
  volatile bool stop;
};

/* consume.c: runs the Kafka consumer until a->stop; returns 0 or -errno. */
int rp_consume_run(struct rp_aggregator *a, char *err, size_t errlen);

/* gate.c: evaluates the deploy gate of `rack` for `kw` more kilowatts. Returns
 * the decision as JSON (new reference): allow/deny, every check with its
 * observed value, limit and pass/fail, the policy version and a decision id.
 * *found is false when the rack has never reported. */
json_t *rp_gate_evaluate(struct store *s, const struct rp_policy *p, const char *rack, double kw,
                         int64_t now_ms, bool *found);

/* http_api.c */
struct rp_http;
int rp_http_start(struct rp_aggregator *a, struct rp_http **out, char *err, size_t errlen);
void rp_http_stop(struct rp_http *h);

/* metrics.c: the Prometheus text exposition of rack state and ingest. The
 * caller frees the returned string. */
char *rp_metrics_render(struct rp_aggregator *a, size_t *len);

#endif
