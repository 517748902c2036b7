/* Gate policy as data: a versioned YAML file of check limits per rack class
 * or rack, plus rack metadata (breaker limit, derating, CDU capacity, pool,
 * row, cooling loop). Loaded at start and on SIGHUP; a file that does not
 * validate is refused with file:line and the policy in force stays.
 *
 *   version: site-2026-11
 *   defaults:                      # every rack, unless its class or entry says otherwise
 *     max_staleness: 10s
 *     clock_skew: 2s                 # agent clock vs the aggregator's receive time
 *     power_margin_kw: 2
 *     supply_temp: {series: cdu.supply_temp, stat: p95, window: 300s, max: 40,
 *                   hysteresis: 1, persist: 3}
 *     flow: {series: cdu.flow, min: 60}
 *   classes:
 *     gold: {supply_temp: {max: 38}}
 *   racks:
 *     - {id: a01, class: gold, pool: p1, row: r1, loop: l1,
 *        breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
 *
 * Checks (keys of defaults/classes/rack entries), each with the fields
 * enabled, fail_closed, series, stat, window, across, min, max, hysteresis,
 * persist (samples) and persist_for (duration):
 *   supply_temp    CDU supply temperature (stat over window), at most max
 *   supply_slope   its least-squares slope, °C/min, at most max
 *   inlet_slope    server inlet temperature slope, °C/min (worst server)
 *   delta_t        ΔT band [min, max]
 *   flow           coolant flow, at least min
 *   alarms         any alarm bit of the series set (leak, pump fault) denies
 *   heat_balance   heat removed ÷ electrical power within [min, max]
 *   power          breaker × derating − committed − margin ≥ requested kW, where
 *                  committed = Σ max(reserved kW, measured draw) over other
 *                  owners' reservations + the rack draw no reservation
 *                  accounts for (gate.c, README "Power model")
 *   thermal        CDU rated capacity − heat removed ≥ requested kW
 * plus telemetry_fresh (max_staleness) and clock_skew, always on.
 * Two more top-level sections: `ladder` (the flags failing checks raise,
 * escalating as a breach lasts: ladder.h) and `slo` (thermal objectives per
 * class: slo.h). */
#ifndef RACKPULSE_POLICY_H
#define RACKPULSE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ladder.h"
#include "slo.h"
#include "rackpulse/cfg.h"

enum rp_check_id {
  RP_CHECK_SUPPLY_TEMP,
  RP_CHECK_SUPPLY_SLOPE,
  RP_CHECK_INLET_SLOPE,
  RP_CHECK_DELTA_T,
  RP_CHECK_FLOW,
  RP_CHECK_ALARMS,
  RP_CHECK_HEAT_BALANCE,
  RP_CHECK_POWER,
  RP_CHECK_THERMAL,
  RP_CHECK_COUNT
};

/* How a check reads its value. */
enum rp_stat {
  RP_STAT_LATEST,
  RP_STAT_P50,
  RP_STAT_P95,
  RP_STAT_P99,
  RP_STAT_MEAN,
  RP_STAT_MIN,
  RP_STAT_MAX,
  RP_STAT_SLOPE
};
/* How values of several devices combine (several CDUs, servers or PDUs). */
enum rp_across { RP_ACROSS_MAX, RP_ACROSS_MIN, RP_ACROSS_SUM };

struct rp_check_limits {
  bool enabled;
  bool fail_closed; /* missing, stale or invalid input denies */
  char series[64];
  enum rp_stat stat;
  int64_t window_ms; /* for stats other than latest: the agent's window */
  enum rp_across across;
  double min, max;        /* NaN: unbounded */
  double hysteresis;      /* once tripped, clears only inside the band by this much */
  int64_t persist;        /* consecutive bad samples before it trips (>= 1) */
  int64_t persist_for_ms; /* or: bad for this long (0: not used) */
};

struct rp_policy_set {
  int64_t max_staleness_ms;
  int64_t clock_skew_ms; /* |frame time - receive time| beyond this denies */
  double power_margin_kw;
  double heat_fraction; /* of a request's kW that becomes heat for the CDU (default 1) */
  struct rp_check_limits check[RP_CHECK_COUNT];
};

/* A rack's electrical topology (policy_topology.c, electrical.c): the PDU
 * device of each feed, the feed, phase and branch ratings, and whether
 * either feed must carry the whole rack (N+N). */
struct rp_rack_electrical {
  char feed[2][64];   /* PDU device of feed A and B ("" when not named) */
  double feed_kw;     /* rating of one feed, kW (NaN: not checked) */
  double phase_amps;  /* rating of each phase of a feed's inlet, A (NaN: not checked) */
  double branch_amps; /* rating of each branch breaker, A (NaN: not checked) */
  double volts;       /* phase-to-neutral voltage for kW to A (default 230) */
  char redundancy[8]; /* as written: "n+n" or "none" ("" : n+n when two feeds) */
  bool redundant;     /* N+N: one feed must carry the rack */
};

struct rp_rack_meta {
  char id[65];
  char class_name[32];
  char pool[64], row[32], loop[32];
  double breaker_kw, derating, cdu_capacity_kw; /* NaN when not configured */
  struct rp_rack_electrical elec;
  struct rp_policy_set set; /* effective limits */
};

/* A row/busway, pool or cooling loop limit (rows:, pools:, loops:). */
struct rp_group_limit {
  char name[64];
  double limit_kw;        /* rating, kW (NaN: none) */
  double derating;        /* usable fraction (default 0.8) */
  double cdu_capacity_kw; /* loops: the shared CDU's rated heat removal (NaN: none) */
};

/* A time-of-use tariff: price per kWh from `from_min` (minutes after
 * midnight UTC) until the next period; `flat` when no period applies. */
struct rp_tariff {
  char currency[8];
  double flat; /* NaN: no tariff */
  struct rp_tariff_period {
    int from_min;
    double price;
  } period[24];
  size_t nperiods;
};

struct rp_policy {
  char version[64];
  char path[512];
  struct rp_policy_set defaults;
  char class_names[16][32];
  struct rp_policy_set classes[16];
  size_t nclasses;
  struct rp_rack_meta *racks; /* owned */
  size_t nracks;
  struct rp_ladder_policy ladder;              /* the `ladder` section (ladder.h) */
  struct rp_slo_policy slo;                    /* the `slo` section (slo.h) */
  struct rp_group_limit *rows, *pools, *loops; /* owned */
  size_t nrows, npools, nloops;
  struct rp_tariff tariff;
};

/* policy_topology.c: the rows, pools, loops and tariff sections, and the
 * rack entries' electrical keys. Return 0 or a negative errno with err
 * naming file:line and key. */
int rp_policy_load_topology(const struct rp_cfg_doc *doc, rp_cfg_node root, struct rp_policy *p,
                            char *err, size_t errlen);
int rp_policy_load_rack_electrical(const struct rp_cfg_doc *doc, rp_cfg_node node,
                                   const char *where, struct rp_rack_meta *r, char *err,
                                   size_t errlen);
/* The limit named `name` in rows/pools/loops, or NULL. */
const struct rp_group_limit *rp_policy_group(const struct rp_group_limit *list, size_t n,
                                             const char *name);
/* The tariff's price per kWh at Unix ms `t` (NaN without a tariff). */
double rp_tariff_price(const struct rp_tariff *t, int64_t t_ms);

/* Names of the checks, for answers and config keys. */
extern const char *const rp_check_names[RP_CHECK_COUNT];

/* Loads `path`. Returns 0 and *out (free with rp_policy_free()), or a
 * negative errno with err naming file:line and key. */
int rp_policy_load(const char *path, struct rp_policy **out, char *err, size_t errlen);
/* The built-in policy (used when no file is configured), with the given
 * version, staleness and supply temperature limit. */
int rp_policy_builtin(const char *version, int64_t max_staleness_ms, double supply_temp_max,
                      const char *supply_series, struct rp_policy **out);
void rp_policy_free(struct rp_policy *p);

/* The effective limits for `rack` (its entry, else defaults) and its
 * metadata (NULL when the rack is not listed). `class_name` (may be NULL)
 * selects a class explicitly, as a request's class= does. Returns NULL when
 * the class is unknown. */
const struct rp_policy_set *rp_policy_for(const struct rp_policy *p, const char *rack,
                                          const char *class_name, const struct rp_rack_meta **meta);

/* Whether the limits `cand` are at least as strict as `own`, so that an
 * unauthenticated caller may ask for them: max_staleness no longer,
 * power_margin_kw no smaller, and every check enabled in `own` enabled in
 * `cand` reading the same series (stat, window, across), failing closed if
 * `own` does, with max no higher and min no lower (a bound in `own` must be
 * one in `cand`), hysteresis no smaller, and tripping no later (persist no
 * higher, or persist_for no longer; count and time are not compared).
 * Checks `own` leaves disabled may be anything. Returns true, or false with
 * why naming the first looser limit. */
bool rp_policy_set_as_strict(const struct rp_policy_set *cand, const struct rp_policy_set *own,
                             char *why, size_t whylen);

#endif
