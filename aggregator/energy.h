/* energy.h: energy and cost of reservations (energy.c).
 *
 * The upkeep pass (every 5 s) integrates each running reservation's draw
 * into its record's "energy" object: kWh from its measured draw (hosts'
 * server.power, outlets' pdu.outlet.power; reservations.h), or, while it
 * is not measured (it names nothing, or its readings are missing or
 * stale), estimated at its reserved kW and kept apart as estimated kWh;
 * cost at the policy's tariff price of each step's time (policy.h); the
 * time-weighted histogram of its utilisation (measured ÷ reserved, 5 %
 * bins up to 200 %) and its peak. A step longer than 60 s (the
 * aggregator was down) is not integrated. When the reservation ends
 * (released, expired, preempted) a close-out "summary" is kept:
 *
 *   {"kwh", "measured_kwh", "estimated_kwh", "cost", "currency", "hours",
 *    "cost_per_hour", "peak_utilization", "p95_utilization"}
 *
 * (utilisation figures null when it was never measured). */
#ifndef RACKPULSE_ENERGY_H
#define RACKPULSE_ENERGY_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "policy.h"

#define RP_ENERGY_MAX_STEP_MS 60000

/* One integration step of reservation record r at now: measured_kw (NaN
 * when not measured) and the tariff's price (NaN: no tariff). */
void rp_energy_step(json_t *r, double measured_kw, double price, const char *currency,
                    int64_t now_ms);

/* The summary of r so far (new reference), also for one still running. */
json_t *rp_energy_summary(const json_t *r, int64_t now_ms);

/* Keeps the close-out summary in r (at its end, now_ms). */
void rp_energy_close(json_t *r, int64_t now_ms);

/* Prometheus lines from every reservation record of `all`: per owner the
 * kWh and cost (counters), reservation hours, and per running reservation
 * its cost so far. */
void rp_energy_metrics(const json_t *all, FILE *out, int64_t now_ms);

#endif
