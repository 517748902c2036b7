/* Canary soaks: a deploy's first rack watched for a while and judged
 * against the rack's own baseline.
 *
 *   POST /v1/canaries {rack, kw, duration: "20m", baseline: "30m",
 *                      limits: {max_power_rise_pct, max_temp_rise,
 *                               max_slope, no_new_flags},
 *                      [power_series: "pdu.power"], [temp_series: policy's
 *                      supply series], [max_stale: "10s"], deploy fields}
 *
 * The baseline is the rack's window statistics (the agents' windows that
 * the aggregator keeps) of the window closest to `baseline`, as they stood
 * at the start: mean power (summed over devices) and mean supply
 * temperature (the hottest device). Every 250 ms while it runs the
 * canary compares the rack's latest values with it:
 *
 *   max_power_rise_pct  (power now - baseline) / baseline, in %
 *   max_temp_rise       supply temperature now - baseline, degC
 *   max_slope           the supply temperature's slope over its shortest
 *                       window, degC/min
 *   no_new_flags        no thermal flag raised on the rack since the start
 *   telemetry           an OK reading of each watched series at least every
 *                       max_stale (always on: a canary that loses
 *                       telemetry fails)
 *
 * The first limit broken ends it "failed" with the limit, the observed
 * value and when; reaching the duration ends it "held". Start and verdict
 * are audited. Canaries live in memory (the last 1000). Thread-safe. */
#ifndef RACKPULSE_CANARY_H
#define RACKPULSE_CANARY_H

#include <jansson.h>
#include <stdint.h>

#include "deploy.h"

struct rp_aggregator;
struct rp_canaries;

/* Starts the watcher thread (it also expires overrides). */
int rp_canaries_new(struct rp_aggregator *a, struct rp_canaries **out);
/* Stops it and frees everything; accepts NULL. */
void rp_canaries_free(struct rp_canaries *c);

/* POST /v1/canaries. The canary (new reference), or NULL with *status
 * (400 bad request, 404 unknown rack, 409 no baseline) and *why. */
json_t *rp_canary_start(struct rp_aggregator *a, const json_t *body, const struct rp_caller *caller,
                        int64_t now, unsigned *status, const char **why);
/* GET /v1/canaries/{id}: new reference or NULL. */
json_t *rp_canary_get(struct rp_canaries *c, const char *id);
json_t *rp_canary_list(struct rp_canaries *c);
/* One pass over the running canaries (the thread calls it; tests too). */
void rp_canaries_tick(struct rp_aggregator *a, int64_t now);

#endif
