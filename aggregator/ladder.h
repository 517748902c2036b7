/* The escalation ladder: which thermal flag a failing gate check raises,
 * and how the flags escalate as the breach persists. Policy data (the
 * `ladder` section of a policy file) and the state that follows breaches
 * across upkeep passes.
 *
 *   ladder:
 *     supply_temp:
 *       clear_after: 30s          # the breach must be over this long before its flags clear
 *       min_hold: 2m              # a flag, once set, stays at least this long
 *       steps:
 *         - {flag: scale-back, after: 60s}
 *         - {flag: pause-admissions, after: 5m}
 *         - {flag: evacuate, after: 10m, target: loop}   # rack (default), loop or row
 *     alarms:
 *       steps: [{flag: evacuate, after: 0s}]
 *
 * Keys are the checks' answer names (supply_temp, supply_slope, inlet_slope,
 * delta_t, flow, heat_balance, alarms, power_headroom, thermal_headroom). A
 * check the policy does not name keeps the fixed mapping the aggregator
 * always had: one step at once, on the rack, cleared as soon as the check
 * passes and flags.min_hold is over (pause-admissions for the temperature,
 * slope, ΔT, flow and heat-balance checks, evacuate for alarms, scale-back
 * for the headroom checks). Steps are cumulative: a breach at its third
 * step holds all three flags, each announced by its own SET event in step
 * order, and each cleared (CLEARED event) when the breach is over. A flag
 * aimed at a loop or row is set on every rack the policy puts in it; a rack
 * the policy gives no loop or row takes it alone. */
#ifndef RACKPULSE_LADDER_H
#define RACKPULSE_LADDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "rackpulse/cfg.h"

#define RP_LADDER_NCHECKS 9
#define RP_LADDER_MAX_STEPS 4

/* Answer names of the checks a ladder can follow. */
extern const char *const rp_ladder_checks[RP_LADDER_NCHECKS];

enum rp_flag_target { RP_TARGET_RACK, RP_TARGET_LOOP, RP_TARGET_ROW };

struct rp_ladder_step {
  char flag[32]; /* scale-back, pause-admissions, evacuate or maintenance */
  int64_t after_ms;
  enum rp_flag_target target;
};

struct rp_ladder_rule {
  size_t nsteps;
  struct rp_ladder_step step[RP_LADDER_MAX_STEPS];
  int64_t clear_after_ms;
  int64_t min_hold_ms; /* -1: the aggregator's flags.min_hold */
};

struct rp_ladder_policy {
  struct rp_ladder_rule rule[RP_LADDER_NCHECKS];
};

/* The fixed mapping (every rule one step at once on the rack). */
void rp_ladder_policy_default(struct rp_ladder_policy *lp);
/* Applies a `ladder` mapping (node may be 0) over lp. Returns 0 or -EINVAL
 * with err naming file:line and key. */
int rp_ladder_parse(const struct rp_cfg_doc *doc, rp_cfg_node node, struct rp_ladder_policy *lp,
                    char *err, size_t errlen);

struct rp_policy;
struct rp_ledger;
struct rp_events;
struct rp_ladder;

/* Called for every flag set or cleared (after the ledger and the event),
 * with the flag's JSON (rack, flag, check, step, set_ms...). */
typedef void (*rp_ladder_observer)(void *ctx, const json_t *flag, bool set, int64_t now_ms);

/* The breach state. Used by one thread at a time (the upkeep thread, or a
 * replay). Returns 0 or -ENOMEM. rp_ladder_free accepts NULL. */
int rp_ladder_new(struct rp_ladder **out);
void rp_ladder_free(struct rp_ladder *l);
void rp_ladder_set_observer(struct rp_ladder *l, rp_ladder_observer fn, void *ctx);

/* Records the rack's gate decision (at 0 kW) of this pass: which checks
 * breach now (failing with an observed value; the headroom checks only when
 * the rack is over already). */
void rp_ladder_observe(struct rp_ladder *l, const char *rack, const json_t *decision,
                       int64_t now_ms);

/* Ends a pass: works out the flags every breach wants under policy p, sets
 * the missing ones in the ledger and clears automatic flags no breach wants
 * any more (after their minimum hold; only on racks observed this pass or
 * set because of one), publishing an event for each on `ev` (may be NULL).
 * Flags an operator set are never touched. */
void rp_ladder_apply(struct rp_ladder *l, const struct rp_policy *p, struct rp_ledger *ledger,
                     struct rp_events *ev, int64_t default_min_hold_ms, int64_t now_ms);
/* The same, calling audit(audit_ctx, ...) too for every flag set or
 * cleared (the aggregator audits automatic flags; a replay does not). */
void rp_ladder_apply_audited(struct rp_ladder *l, const struct rp_policy *p,
                             struct rp_ledger *ledger, struct rp_events *ev,
                             int64_t default_min_hold_ms, int64_t now_ms, rp_ladder_observer audit,
                             void *audit_ctx);

#endif
