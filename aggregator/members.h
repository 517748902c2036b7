/* Combining the members of a gate input (see gate.c), as pure functions so
 * that they are tested without a store: every device that has reported a
 * series is an expected member of the rack's input; each member is judged
 * fresh by both its frame time and the aggregator's receive time, its value
 * is normalised to one unit per dimension (W, kW and MW to kW; K to Cel),
 * and the members combine by max, min or sum. One member that is missing,
 * stale, in error or in an unknown unit makes the whole input fail, with a
 * reason naming the device and the series: the gate never says yes on part
 * of a sum. */
#ifndef RACKPULSE_MEMBERS_H
#define RACKPULSE_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Converts v in `unit` to the unit the gate compares in: W, kW and MW to
 * "kW" (a linear scale, so slopes convert alike). Other units are kept as
 * they are: in rackpulse "K" is a temperature difference (ΔT, the agent's
 * derived cdu.delta_t) and "Cel" an absolute temperature, so K is never
 * shifted to Cel, and members in K and in Cel do not combine (they fail
 * closed as mixed units). Returns the canonical unit (a static string, or
 * `unit` itself) and *out. */
const char *rp_unit_normalize(const char *unit, double v, double *out);

/* How old a member is, in ms: the larger of the age by its frame (or sample)
 * time and the age by the aggregator's receive time. A clock that runs ahead
 * makes the first negative, and the receive time still ages; a clock stepped
 * back makes the first large. received_ms 0 (not known) uses ts_ms alone. */
int64_t rp_member_age_ms(int64_t now_ms, int64_t ts_ms, int64_t received_ms);

/* Clock skew of an agent seen in one frame: frame time minus receive time
 * (positive: the agent's clock runs ahead). */
static inline int64_t rp_clock_skew_ms(int64_t frame_ms, int64_t received_ms) {
  return frame_ms - received_ms;
}
/* Whether |skew| exceeds the tolerance. */
static inline bool rp_clock_skew_bad(int64_t skew_ms, int64_t tolerance_ms) {
  return skew_ms > tolerance_ms || skew_ms < -tolerance_ms;
}

/* The combination of an input's members. Zero-initialise, set `across`,
 * `now_ms`, `max_age_ms` and `series`, feed members, then read. */
struct rp_members {
  enum rp_across across;
  int64_t now_ms, max_age_ms;
  const char *series; /* for reasons */
  /* out */
  bool failed;   /* a member failed: why says which */
  size_t n;      /* members combined */
  double v;      /* the combination, in unit */
  int64_t ts_ms; /* newest member time */
  char unit[24]; /* canonical unit of the members */
  char why[224]; /* the first failure */
};

/* Adds a member named `key` ("name{labels}@device") with its state. status
 * is a ReadingStatus (0 OK) with detail; ts_ms the member's own time (sample
 * or newest sample in the window), received_ms when the aggregator got it. */
void rp_members_add(struct rp_members *m, const char *key, int status, const char *detail, double v,
                    const char *unit, int64_t ts_ms, int64_t received_ms);

/* Records a failure of a member that has no value at all (e.g. no statistics
 * over the window yet), unless an earlier one is already recorded. */
void rp_members_fail(struct rp_members *m, const char *key, const char *what);

/* Whether the input has a value: members were added and none failed. When
 * not, m->why says why (naming the device and series). */
bool rp_members_ok(struct rp_members *m);

/* The device of a series key "name{labels}@device[|window]" into out. */
void rp_member_device(const char *key, char *out, size_t len);

#endif
