/* The backtest's state, shared by the engine (replay.c) and the report
 * (replay_report.c). Not an API. */
#ifndef RACKPULSE_REPLAY_INTERNAL_H
#define RACKPULSE_REPLAY_INTERNAL_H

#include "aggregator.h"
#include "replay.h"

enum { SIDE_CAND, SIDE_CUR, NSIDES };

/* One policy's run: its own gate, ledger, ladder and SLOs over the shared
 * store (in `a`, so that placement and the gate read it as they do live). */
struct replay_side {
  struct rp_aggregator a;
  struct rp_replay *r;
  int index;
  uint64_t allow, deny;
  json_t *flags;     /* [{rack, flag, check, step, set_ms, cleared_ms}] in order set */
  json_t *placement; /* per incident: ranked racks at its start, or null */
};

/* One rack: its deny runs under each policy and how decisions differ. */
struct replay_rack {
  char id[RP_ID_MAX + 1];
  int64_t deny_since[NSIDES]; /* 0: allowing */
  json_t *runs[NSIDES];       /* [[start_ms, end_ms (0: open)]] */
  uint64_t to_deny, to_allow; /* candidate denies where current allows, and the reverse */
  int64_t first_change_ms;
};

struct replay_incident_tally {
  uint64_t ticks, allowed[NSIDES];
  bool placed;
};

struct rp_replay {
  struct rp_replay_options o;
  char dir[512];
  struct store *store;
  struct replay_side side[NSIDES];
  struct replay_rack *racks;
  size_t nracks, cap_racks;
  json_t *rack_index; /* id -> position in racks */
  json_t *by_check;   /* check -> {allow_to_deny, deny_to_allow} */
  struct replay_incident_tally *tally;
  struct store_msg *msgs; /* frames held for the next tick */
  size_t nheld, cap_held;
  int64_t next_tick_ms; /* 0: no frame yet */
  uint64_t frames, ticks, offset;
};

#endif
