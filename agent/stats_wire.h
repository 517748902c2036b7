/* Window statistics on the wire at their own cadence (issue 25): each
 * series' statistics go out as scaled integers with the series' decimals,
 * every `every` frames, and at once when one of them moves by more than the
 * tolerance since they were last sent. Pure: no I/O, no allocation. */
#ifndef RACKPULSE_STATS_WIRE_H
#define RACKPULSE_STATS_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "rackpulse.pb-c.h"

#define RP_STATS_WIRE_N 8 /* min max mean stddev p50 p95 p99 slope */

/* What was last sent for one (series, window). Zeroed: never sent. */
struct rp_stats_sent {
  bool sent, has_slope;
  uint32_t age;      /* frames with new samples of the series since it was sent */
  int64_t newest_ms; /* newest sample seen, to tell those frames */
  int64_t x[RP_STATS_WIRE_N];
};

/* Scales the doubles of *ws (filled as by rp_edge_window_stats) into its
 * *_x fields with `decimals` (stddev and slope: decimals + 2), sets
 * ws->scaled and clears the doubles. Returns 0, or -ERANGE when a value
 * cannot be represented (ws is then left with its doubles). */
int rp_stats_wire_scale(Rackpulse__V1__WindowStats *ws, int decimals);

/* True when the scaled *ws is due: never sent, sent `every` frames with new
 * samples of the series ago (statistics change only with samples: a series
 * read every 5 s goes every 5 x `every` frames), its slope appeared or
 * vanished, or a statistic moved by more than max(1, tolerance x |mean|)
 * units (stddev and slope: 100 times that) since it was sent. Records it in
 * *s when due; else ages *s when ws has a newer sample. */
bool rp_stats_wire_due(struct rp_stats_sent *s, const Rackpulse__V1__WindowStats *ws,
                       uint32_t every, double tolerance);

#endif
