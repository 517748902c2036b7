/* Thermal SLOs: objectives per rack class, kept from the same upkeep pass
 * that evaluates every rack, served at GET /v1/slo and in /metrics, and
 * computed the same way by the backtest (replay.c).
 *
 *   slo:
 *     - {name: supply-hot, class: gold, check: supply_temp, above: 38,
 *        period: 1h, budget: 5m, recovery: 10m, burn_window: 5m}
 *
 * An objective follows the observed value of one gate check (its answer
 * name) on every rack of the class (no class: every rack):
 *   time above    how long the value was above `above` within the last
 *                 `period` (kept in 60 buckets of period/60); the budget
 *                 is `budget` of it. Time without a value is not counted.
 *   burn rate     the share of time above over the last `burn_window`
 *                 divided by the share the budget allows (budget/period):
 *                 1 spends the budget exactly over the period, 14.4 spends
 *                 a 30-day budget in 2 days.
 *   recovery      how long a burst (the value going above) took to come
 *                 back to `above` or below; the slowest and the last, and
 *                 bursts slower than `recovery`.
 * An objective is met while time above ≤ budget and no burst in the period
 * took longer than `recovery`. */
#ifndef RACKPULSE_SLO_H
#define RACKPULSE_SLO_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "rackpulse/cfg.h"

#define RP_SLO_MAX 16

struct rp_slo_objective {
  char name[32];
  char class_name[32]; /* "": every rack */
  char check[32];      /* a gate check's answer name */
  double above;
  int64_t period_ms, budget_ms, recovery_ms, burn_window_ms;
};

struct rp_slo_policy {
  size_t n;
  struct rp_slo_objective obj[RP_SLO_MAX];
};

/* Applies an `slo` list (node may be 0). Returns 0 or -EINVAL with err
 * naming file:line and key. */
int rp_slo_parse(const struct rp_cfg_doc *doc, rp_cfg_node node, struct rp_slo_policy *sp,
                 char *err, size_t errlen);

struct rp_slo;
/* Thread-safe: one thread observes, others read. rp_slo_free accepts NULL. */
int rp_slo_new(struct rp_slo **out);
void rp_slo_free(struct rp_slo *s);
/* Takes the objectives in force (a copy), at the start of a pass. */
void rp_slo_configure(struct rp_slo *s, const struct rp_slo_policy *sp);
/* Counts rack's decision (its checks' observed values, its class) at now. */
void rp_slo_observe(struct rp_slo *s, const char *rack, const json_t *decision, int64_t now_ms);
/* Every (rack, objective) as GET /v1/slo answers it (new reference). */
json_t *rp_slo_json(struct rp_slo *s, int64_t now_ms);
/* Prometheus lines rackpulse_slo_* (bounded: racks × objectives). */
void rp_slo_metrics(struct rp_slo *s, FILE *out, int64_t now_ms);

#endif
