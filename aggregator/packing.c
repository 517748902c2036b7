/* Best-fit packing of reservations onto racks (see packing.h). Pure: the
 * headrooms come from the gate, the choice is arithmetic, so the benchmark
 * and the unit tests exercise exactly what admission runs. */
#include "packing.h"

#include <math.h>

/* Whether a is a better choice than b (both hold the request). */
static bool better(const struct rp_pack_candidate *a, const struct rp_pack_candidate *b,
                   bool spread, enum rp_pack_fit fit) {
  if (spread && a->group_kw != b->group_kw)
    return a->group_kw < b->group_kw;
  return fit == RP_PACK_BEST_FIT ? a->headroom_kw < b->headroom_kw
                                 : a->headroom_kw > b->headroom_kw;
}

static size_t pick(const struct rp_pack_candidate *c, size_t n, double need, bool spread,
                   enum rp_pack_fit fit) {
  size_t best = n;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(c[i].headroom_kw) || c[i].headroom_kw < need)
      continue;
    if (best == n || better(&c[i], &c[best], spread, fit))
      best = i;
  }
  return best;
}

size_t rp_pack_choose(const struct rp_pack_candidate *c, size_t n, double kw, double margin_kw,
                      bool spread, enum rp_pack_fit fit) {
  size_t i = margin_kw > 0 ? pick(c, n, kw + margin_kw, spread, fit) : n;
  return i < n ? i : pick(c, n, kw, spread, fit);
}
