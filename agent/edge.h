/* Edge computation in the agent: rolling window statistics for the series
 * that gates use, and derived series (ΔT, heat removed, heat balance)
 * declared in config. Built on lib/stats.c and lib/heat.c.
 *
 *   stats:
 *     windows: [60s, 300s, 900s]       # up to 4
 *     series: [cdu.supply_temp, "server.*_temp"]   # fnmatch patterns
 *   derived:
 *     - {name: cdu.delta_t, type: delta_t, return: cdu.return_temp,
 *        supply: cdu.supply_temp}
 *     - {name: cdu.heat_removed, type: heat_removed, return: cdu.return_temp,
 *        supply: cdu.supply_temp, flow: cdu.flow, coolant: water}
 *     - {name: rack.heat_balance, type: heat_balance, heat: cdu.heat_removed,
 *        power: pdu.power}
 *
 * Derived series are evaluated once per frame from the latest value of each
 * input (any device, no labels); an input missing or older than two frame
 * intervals makes the derived value a status, never a number. */
#ifndef RACKPULSE_EDGE_H
#define RACKPULSE_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "rackpulse.pb-c.h"
#include "rackpulse/cfg.h"
#include "rackpulse/heat.h"
#include "rackpulse/stats.h"
#include "series.h"

#define RP_EDGE_MAX_PATTERNS 32
#define RP_EDGE_MAX_DERIVED 32
#define RP_EDGE_MAX_STATS_SERIES 256 /* series carrying window statistics */

enum rp_derived_type { RP_DERIVED_DELTA_T, RP_DERIVED_HEAT_REMOVED, RP_DERIVED_HEAT_BALANCE };

struct rp_derived {
  char name[64];
  enum rp_derived_type type;
  char input[3][64]; /* delta_t: return, supply; heat_removed: return,
                          supply, flow; heat_balance: heat, power */
  size_t ninputs;
  struct rp_coolant coolant;
  int64_t input_id[3]; /* resolved series ids, -1 until seen */
};

struct rp_edge_config {
  int64_t windows_ms[RP_STATS_SERIES_MAX_WINDOWS];
  size_t nwindows;
  char patterns[RP_EDGE_MAX_PATTERNS][64];
  size_t npatterns;
  int64_t stats_every;    /* frames between a series' statistics on the wire */
  double stats_tolerance; /* ... or at once when one moves by more than this x |mean| */
  struct rp_derived derived[RP_EDGE_MAX_DERIVED];
  size_t nderived;
};

/* Reads the `stats` and `derived` sections (either may be absent: default
 * windows 60 s and 300 s over cdu.* temperatures, flow and derived series).
 * Returns 0 or -EINVAL with err naming file:line and key. */
int rp_edge_config_load(const struct rp_cfg_doc *doc, rp_cfg_node root, struct rp_edge_config *cfg,
                        char *err, size_t errlen);
void rp_edge_config_help(FILE *out);

struct rp_edge;

/* Creates the edge state for a dictionary of at most `max_series` series and
 * samples every `interval_ms` (sizes the windows). Returns 0 or -ENOMEM. */
int rp_edge_new(struct rp_edge **out, const struct rp_edge_config *cfg, size_t max_series,
                int64_t interval_ms);
void rp_edge_free(struct rp_edge *e);

/* Records a valid sample of dictionary series `s` (its latest value, and its
 * window statistics when the series matches a stats pattern), taken at
 * `mono_ms` on the monotonic clock: windows and input freshness never follow
 * steps of the wall clock, which only stamps what goes on the wire. */
void rp_edge_observe(struct rp_edge *e, const struct rp_series *s, int64_t mono_ms, double v);

/* One derived value at frame time: valid, or a status with the reason. */
struct rp_derived_value {
  const struct rp_derived *def;
  bool ok;
  double value;
  const char *unit;
  char detail[128];
};

/* Evaluates every derived series at `mono_now_ms` (monotonic clock) from the
 * latest inputs found in `series`; an input older than two intervals is
 * stale. Fills out[0..n) (n = the number of derived series). */
size_t rp_edge_derive(struct rp_edge *e, const struct rp_series_table *series, int64_t mono_now_ms,
                      struct rp_derived_value *out, size_t cap);

/* The window statistics due in this frame (stats_wire.h: scaled with the
 * series' decimals, every stats.every frames or when one moved by more than
 * stats.tolerance), as WindowStats messages in an array owned by the edge
 * state, valid until the next call; one call per frame. `newest_ms` of each
 * is the Unix time of its newest sample: wall_now_ms minus that sample's
 * age on the monotonic clock (mono_now_ms). */
size_t rp_edge_window_stats(struct rp_edge *e, int64_t wall_now_ms, int64_t mono_now_ms,
                            Rackpulse__V1__WindowStats ***out);

#endif
