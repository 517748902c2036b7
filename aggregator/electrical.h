/* electrical.h: the gate's topology checks (electrical.c), beyond the
 * rack's own breaker (gate.c's power_headroom):
 *
 *   feed_power      each feed's PDU inlet power against feed_kw × derating;
 *                   with N+N one feed must carry the whole rack
 *   phase_current   each phase's current against phase_amps × derating
 *   branch_current  each branch breaker's current against branch_amps × derating
 *   row_power       the row's racks against rows.R.limit_kw × derating
 *   pool_power      the pool's racks against pools.P.limit_kw × derating
 *   loop_thermal    the heat of a CDU shared by the loop's racks against
 *                   loops.L.cdu_capacity_kw
 *
 * Each answers its headroom in the request's kW ("observed", and
 * "request_headroom_kw" for admission), the limit, and every term it
 * counted; a reading that is missing, stale or in error fails it closed,
 * naming the device and series. Reservations count every watt once as in
 * the power check: what they commit but do not draw yet ("pending") is
 * added to the measured load. */
#ifndef RACKPULSE_ELECTRICAL_H
#define RACKPULSE_ELECTRICAL_H

#include <jansson.h>
#include <stdint.h>

#include "ledger.h"
#include "policy.h"
#include "store.h"

struct rp_elec_request {
  struct store_read *r;
  const json_t *reservations; /* every reservation (rp_ledger_res_list) */
  const struct rp_policy *policy;
  const struct rp_rack_meta *meta; /* the rack's entry (not NULL) */
  const char *owner;               /* whose reservations do not count (may be NULL) */
  double kw;                       /* the request */
  double pending_kw;               /* the rack's reservations of others committed but not drawn */
  double heat_fraction;            /* of the request that becomes the CDU's heat */
  const char *power_series, *heat_series; /* the power and thermal checks' series */
  int64_t from_ms, to_ms;                 /* reservations overlapping this count */
  int64_t now_ms, max_age_ms;
};

/* Appends the checks the rack's topology calls for to `checks` (each
 * {name, observed, limit, unit, pass, reason, request_headroom_kw, ...}).
 * Returns whether every one passed. */
bool rp_electrical_checks(const struct rp_elec_request *q, json_t *checks);

#endif
