/* Policy backtests: frames of the past replayed through the real store,
 * gate, escalation ladder, SLOs and placement under two policies at once
 * (a candidate and the one to compare with), in simulated time taken from
 * the frames, never from the wall clock. The engine knows nothing of Kafka:
 * rackpulsectl's `policy simulate` (tools/ctl_simulate.c) reads the frames
 * and feeds them here in time order; the ingest benchmark feeds it from
 * memory.
 *
 * Every tick_ms of frame time (1 s, as the upkeep pass) each rack seen is
 * evaluated under both policies as a request of `kw` kW, its decision feeds
 * the ladder and the SLOs of that policy, and the ladder's flags go to a
 * scratch ledger of that policy. Frames are taken as received at their own
 * time. Nothing is published and no shared state is touched: the scratch
 * store and ledgers live under options.dir. */
#ifndef RACKPULSE_REPLAY_H
#define RACKPULSE_REPLAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "rackpulse/frame.h"

/* An incident to judge the policies by: on rack, from start to end (end
 * may equal start). With must_deny, the candidate must deny the rack at
 * every tick of [start, end]. */
struct rp_replay_incident {
  char rack[RP_ID_MAX + 1];
  int64_t start_ms, end_ms;
  char what[160];
  bool must_deny;
};

struct rp_replay_options {
  const char *dir;          /* an existing empty scratch directory; the caller removes it */
  double kw;                /* the request every decision asks about (0: may anything land) */
  int64_t tick_ms;          /* evaluation period (0: 1000) */
  int64_t hold_ms;          /* flags.min_hold for flags whose ladder sets none */
  int64_t from_ms;          /* decisions and flags before this are not counted */
  int64_t to_ms;            /* ... nor after this (0: no end) */
  const char *const *racks; /* only these racks (nracks 0: every rack) */
  size_t nracks;
  const struct rp_replay_incident *incidents;
  size_t nincidents;
  size_t placement_count; /* racks ranked at each incident's start (0: 3) */
};

struct rp_replay;

/* Takes ownership of both policies (also on failure). Returns 0 and *out
 * (free with rp_replay_free()), or a negative errno with err set. */
int rp_replay_new(struct rp_policy *candidate, struct rp_policy *current,
                  const struct rp_replay_options *o, struct rp_replay **out, char *err,
                  size_t errlen);
void rp_replay_free(struct rp_replay *r);

/* Feeds one frame, taking ownership of it. Frames must come in time order
 * (a frame older than the last tick is applied, but its tick is past).
 * Returns 0 or a negative errno with err set (the store refused a batch). */
int rp_replay_frame(struct rp_replay *r, rp_frame *f, char *err, size_t errlen);

/* Applies what is held and evaluates the ticks up to end_ms. Returns 0 or
 * a negative errno with err set. */
int rp_replay_finish(struct rp_replay *r, int64_t end_ms, char *err, size_t errlen);

/* The comparison (new reference): decisions that change (allow->deny,
 * deny->allow, per check and per rack), flags raised earlier or later,
 * each incident's lead time under both policies, SLOs, and the number of
 * must-deny incidents the candidate allowed ("must_deny_violations"). */
json_t *rp_replay_report(struct rp_replay *r);

/* Frames applied and ticks evaluated so far. */
void rp_replay_counts(const struct rp_replay *r, uint64_t *frames, uint64_t *ticks);

#endif
