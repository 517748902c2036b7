/* packing.h: which rack of a pool a reservation lands on (packing.c).
 *
 * Best fit with a safety margin: among the candidates whose headroom
 * (the tightest of the gate's power and topology checks, in kW) holds the
 * request plus `margin_kw`, the one left with the least headroom, so that
 * large free blocks stay whole for large requests (least stranded power).
 * Only when none holds the margin too, the best fit of those that hold the
 * request alone. With spreading (by row or loop), candidates whose group
 * holds less of the owner's reserved kW come first, best fit among equals.
 * Worst fit (the most headroom) is what admission did before; the
 * benchmark compares both. */
#ifndef RACKPULSE_PACKING_H
#define RACKPULSE_PACKING_H

#include <stdbool.h>
#include <stddef.h>

struct rp_pack_candidate {
  double headroom_kw; /* NaN: unknown (never chosen) */
  double group_kw;    /* the owner's reserved kW in the candidate's row/loop (spread) */
};

enum rp_pack_fit { RP_PACK_BEST_FIT, RP_PACK_WORST_FIT };

/* The index of the chosen candidate, or n when none holds `kw`. */
size_t rp_pack_choose(const struct rp_pack_candidate *c, size_t n, double kw, double margin_kw,
                      bool spread, enum rp_pack_fit fit);

#endif
