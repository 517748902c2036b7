/* Window statistics at their own cadence, as scaled integers (see
 * stats_wire.h). */
#include "stats_wire.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "rackpulse/frame.h"

int rp_stats_wire_scale(Rackpulse__V1__WindowStats *ws, int decimals) {
  const double v[RP_STATS_WIRE_N] = {
      ws->min, ws->max, ws->mean, ws->stddev,
      ws->p50, ws->p95, ws->p99,  ws->has_slope ? ws->slope_per_min : 0};
  int64_t x[RP_STATS_WIRE_N];
  for (int i = 0; i < RP_STATS_WIRE_N; i++) {
    int d = (i == 3 || i == 7) ? decimals + 2 : decimals;
    if (rp_value_scale(v[i], d, &x[i]) != 0)
      return -ERANGE;
  }
  ws->scaled = true;
  ws->min_x = x[0];
  ws->max_x = x[1];
  ws->mean_x = x[2];
  ws->stddev_x = x[3];
  ws->p50_x = x[4];
  ws->p95_x = x[5];
  ws->p99_x = x[6];
  ws->slope_x = x[7];
  ws->min = ws->max = ws->mean = ws->stddev = ws->p50 = ws->p95 = ws->p99 = 0;
  ws->slope_per_min = 0;
  return 0;
}

static void values(const Rackpulse__V1__WindowStats *ws, int64_t x[RP_STATS_WIRE_N]) {
  x[0] = ws->min_x;
  x[1] = ws->max_x;
  x[2] = ws->mean_x;
  x[3] = ws->stddev_x;
  x[4] = ws->p50_x;
  x[5] = ws->p95_x;
  x[6] = ws->p99_x;
  x[7] = ws->slope_x;
}

static bool moved(const struct rp_stats_sent *s, const int64_t x[RP_STATS_WIRE_N],
                  double tolerance) {
  double step = fmax(1.0, tolerance * fabs((double)s->x[2]));
  for (int i = 0; i < RP_STATS_WIRE_N; i++) {
    double limit = (i == 3 || i == 7) ? step * 100.0 : step;
    if (fabs((double)x[i] - (double)s->x[i]) > limit)
      return true;
  }
  return false;
}

bool rp_stats_wire_due(struct rp_stats_sent *s, const Rackpulse__V1__WindowStats *ws,
                       uint32_t every, double tolerance) {
  int64_t x[RP_STATS_WIRE_N];
  values(ws, x);
  /* newest_ms is Unix time derived from the monotonic clock per frame: it
   * wobbles by a millisecond or so without a new sample. */
  bool fresh = ws->newest_ms > s->newest_ms + 50;
  if (fresh)
    s->newest_ms = ws->newest_ms;
  bool due = !s->sent || (fresh && s->age + 1 >= every) || s->has_slope != ws->has_slope ||
             !ws->scaled || moved(s, x, tolerance);
  if (!due) {
    s->age += fresh;
    return false;
  }
  s->sent = true;
  s->has_slope = ws->has_slope;
  s->age = 0;
  for (int i = 0; i < RP_STATS_WIRE_N; i++)
    s->x[i] = x[i];
  return true;
}
