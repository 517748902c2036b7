/* Rolling time-window statistics; include/rackpulse/stats.h has the contract.
 *
 * A window is one allocation: the struct, then the ring of samples in time
 * order, then the value index (a sorted array of doubles, or a Fenwick tree of
 * uint32 counts over the value grid). rp_window_add() keeps three things in
 * step: the ring (what is held, for expiry and re-centring), the value index
 * (order statistics: quantiles, min, max) and the running sums of centred time
 * and value (mean, variance, slope). In the steady state an update expires or
 * evicts one sample and inserts one, so the sorted array does a single
 * "replace": two binary searches and one memmove of the values in between. */
#include "rackpulse/stats.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rp_sample {
  int64_t ts;
  double v;
};

struct rp_window {
  int64_t duration;
  size_t cap;     /* samples the ring holds now */
  size_t max_cap; /* the capacity option: cap grows to it (grow()) */
  enum rp_window_method method;

  bool has_grid;
  double grid_scale, grid_min, grid_max;
  int64_t kmin; /* grid index of grid_min: value = (kmin + bin) / scale */
  uint32_t nbins;
  uint32_t fw_top; /* largest power of two <= nbins */

  struct rp_sample *ring; /* cap slots; n held from head, in time order */
  size_t head, n;
  int64_t newest; /* meaningful when n > 0 */

  void *store;    /* owns ring and the index (sorted or fw), one block */
  double *sorted; /* SORTED: nidx values ascending */
  uint32_t *fw;   /* COUNTING: Fenwick tree over bins, fw[1..nbins] */
  size_t nidx;    /* values in the index; equals n between calls */

  /* Running sums of dt = ts - tref and dv = v - vref over the held samples. */
  int64_t tref;
  double vref;
  double st, stt, sv, svv, stv;
  double stt_peak, svv_peak; /* largest stt, svv since the last re-centring */
  size_t since_recentre;

  struct rp_window_counters ctr;
};

struct rp_stats_series {
  size_t nw;
  struct rp_window *w[RP_STATS_SERIES_MAX_WINDOWS];
};

/* ---- ring ---------------------------------------------------------------- */

static inline size_t ring_at(const struct rp_window *w, size_t i) {
  size_t j = w->head + i;
  return j >= w->cap ? j - w->cap : j;
}

static inline struct rp_sample ring_pop_head(struct rp_window *w) {
  struct rp_sample s = w->ring[w->head];
  w->head = w->head + 1 == w->cap ? 0 : w->head + 1;
  w->n--;
  return s;
}

static inline void ring_push_tail(struct rp_window *w, int64_t ts, double v) {
  struct rp_sample *s = &w->ring[ring_at(w, w->n)];
  s->ts = ts;
  s->v = v;
  w->n++;
}

/* Inserts after every held sample with ts <= the new one; the caller made
 * room (n < cap). Cost: the number of held samples newer than ts. */
static void ring_insert(struct rp_window *w, int64_t ts, double v) {
  size_t i = w->n;
  while (i > 0) {
    const struct rp_sample *prev = &w->ring[ring_at(w, i - 1)];
    if (prev->ts <= ts)
      break;
    w->ring[ring_at(w, i)] = *prev;
    i--;
  }
  w->ring[ring_at(w, i)] = (struct rp_sample){.ts = ts, .v = v};
  w->n++;
}

/* True when b - a >= d for a <= b, without signed overflow. */
static inline bool apart(int64_t a, int64_t b, int64_t d) {
  return (uint64_t)b - (uint64_t)a >= (uint64_t)d;
}

/* ---- value grid ---------------------------------------------------------- */

/* Bin of v, or -1 when v is not on the grid. */
static inline int64_t grid_bin_checked(const struct rp_window *w, double v) {
  if (!(v >= w->grid_min && v <= w->grid_max))
    return -1;
  int64_t b = (int64_t)(v * w->grid_scale - (double)w->kmin + 0.5);
  if (b < 0 || b >= (int64_t)w->nbins)
    return -1;
  if ((double)(w->kmin + b) / w->grid_scale != v)
    return -1;
  return b;
}

/* Bin of a value already known to be on the grid. */
static inline uint32_t grid_bin(const struct rp_window *w, double v) {
  return (uint32_t)(int64_t)(v * w->grid_scale - (double)w->kmin + 0.5);
}

static inline double grid_value(const struct rp_window *w, uint32_t bin) {
  return (double)(w->kmin + (int64_t)bin) / w->grid_scale;
}

/* ---- value index: sorted array ------------------------------------------- */

/* First index i with a[i] >= x (n when none); branch-free halving. */
static inline size_t lower_bound(const double *a, size_t n, double x) {
  if (n == 0)
    return 0;
  const double *base = a;
  while (n > 1) {
    size_t half = n / 2;
    base = base[half] < x ? base + half : base;
    n -= half;
  }
  return (size_t)(base - a) + (*base < x);
}

static void sorted_insert(double *a, size_t n, double v) {
  size_t j = lower_bound(a, n, v);
  memmove(a + j + 1, a + j, (n - j) * sizeof *a);
  a[j] = v;
}

static void sorted_remove(double *a, size_t n, double old) {
  size_t i = lower_bound(a, n, old); /* a[i] == old: old is held */
  memmove(a + i, a + i + 1, (n - i - 1) * sizeof *a);
}

/* lower_bound() of x and of y at once: the two searches are independent,
 * so interleaving them overlaps their load latencies. */
static inline void lower_bound2(const double *a, size_t n, double x, double y, size_t *ix,
                                size_t *iy) {
  const double *bx = a, *by = a;
  while (n > 1) {
    size_t half = n / 2;
    bx = bx[half] < x ? bx + half : bx;
    by = by[half] < y ? by + half : by;
    n -= half;
  }
  *ix = (size_t)(bx - a) + (*bx < x);
  *iy = (size_t)(by - a) + (*by < y);
}

/* Replaces one occurrence of old by v: only the values between move. */
static void sorted_replace(double *a, size_t n, double old, double v) {
  if (old == v)
    return;
  size_t i, j;
  lower_bound2(a, n, old, v, &i, &j); /* n >= 1: old is held */
  if (j > i) {                        /* old < v: a[i+1 .. j-1] < v shift down */
    memmove(a + i, a + i + 1, (j - 1 - i) * sizeof *a);
    a[j - 1] = v;
  } else { /* a[j .. i-1] >= v shift up */
    memmove(a + j + 1, a + j, (i - j) * sizeof *a);
    a[j] = v;
  }
}

/* ---- value index: Fenwick tree of counts --------------------------------- */

static inline void fw_update(struct rp_window *w, uint32_t bin, uint32_t delta) {
  for (uint32_t i = bin + 1; i <= w->nbins; i += i & (0u - i))
    w->fw[i] += delta; /* delta UINT32_MAX subtracts one, modulo 2^32 */
}

/* Bin holding the r-th smallest value, 1 <= r <= nidx. */
static inline uint32_t fw_kth(const struct rp_window *w, uint32_t r) {
  uint32_t pos = 0;
  for (uint32_t step = w->fw_top; step != 0; step >>= 1) {
    uint32_t next = pos + step;
    if (next <= w->nbins && w->fw[next] < r) {
      pos = next;
      r -= w->fw[next];
    }
  }
  return pos;
}

/* ---- value index: dispatch ----------------------------------------------- */

static void idx_insert(struct rp_window *w, double v) {
  if (w->method == RP_WINDOW_SORTED)
    sorted_insert(w->sorted, w->nidx, v);
  else
    fw_update(w, grid_bin(w, v), 1);
  w->nidx++;
}

static void idx_remove(struct rp_window *w, double old) {
  if (w->method == RP_WINDOW_SORTED)
    sorted_remove(w->sorted, w->nidx, old);
  else
    fw_update(w, grid_bin(w, old), UINT32_MAX);
  w->nidx--;
}

static void idx_replace(struct rp_window *w, double old, double v) {
  if (w->method == RP_WINDOW_SORTED) {
    sorted_replace(w->sorted, w->nidx, old, v);
    return;
  }
  uint32_t bo = grid_bin(w, old), bv = grid_bin(w, v);
  if (bo != bv) {
    fw_update(w, bo, UINT32_MAX);
    fw_update(w, bv, 1);
  }
}

/* The i-th smallest held value, 0 <= i < n. */
static inline double order_stat(const struct rp_window *w, size_t i) {
  if (w->method == RP_WINDOW_SORTED)
    return w->sorted[i];
  return grid_value(w, fw_kth(w, (uint32_t)i + 1));
}

/* ---- running sums -------------------------------------------------------- */

static inline void sums_add(struct rp_window *w, int64_t ts, double v) {
  double dt = (double)(ts - w->tref), dv = v - w->vref;
  w->st += dt;
  w->stt += dt * dt;
  w->sv += dv;
  w->svv += dv * dv;
  w->stv += dt * dv;
  if (w->stt > w->stt_peak) /* not fmax(): a libm call on the hot path */
    w->stt_peak = w->stt;
  if (w->svv > w->svv_peak)
    w->svv_peak = w->svv;
}

static inline void sums_sub(struct rp_window *w, int64_t ts, double v) {
  double dt = (double)(ts - w->tref), dv = v - w->vref;
  w->st -= dt;
  w->stt -= dt * dt;
  w->sv -= dv;
  w->svv -= dv * dv;
  w->stv -= dt * dv;
}

/* Empty sums centred on (ts, v): used when the window starts afresh. */
static void sums_reset(struct rp_window *w, int64_t ts, double v) {
  w->tref = ts;
  w->vref = v;
  w->st = w->stt = w->sv = w->svv = w->stv = 0.0;
  w->stt_peak = w->svv_peak = 0.0;
  w->since_recentre = 0;
}

/* Recomputes the sums from the held samples, centred on their mean time and
 * mean value (two passes), which discards accumulated rounding. */
static void sums_recentre(struct rp_window *w) {
  size_t n = w->n;
  if (n == 0) {
    sums_reset(w, 0, 0.0);
    return;
  }
  int64_t t0 = w->ring[w->head].ts;
  double sdt = 0.0, svs = 0.0;
  for (size_t i = 0; i < n; i++) {
    const struct rp_sample *s = &w->ring[ring_at(w, i)];
    sdt += (double)(s->ts - t0);
    svs += s->v;
  }
  double vmean = svs / (double)n;
  sums_reset(w, t0 + (int64_t)(sdt / (double)n), isfinite(vmean) ? vmean : w->ring[w->head].v);
  for (size_t i = 0; i < n; i++) {
    const struct rp_sample *s = &w->ring[ring_at(w, i)];
    sums_add(w, s->ts, s->v);
  }
}

/* True when the running sums have lost too much precision, for time or for
 * value: either the reference point has drifted so far from the held samples
 * that sum (x - ref)^2 is over 16 times sum (x - mean)^2 (the mean moved about
 * 4 standard deviations: a level step), or the sum of squares fell below
 * 1/1024 of its peak since the last re-centring (a large deviation left, and
 * the rounding of its removal would dominate what is left). Both need the data
 * to change character, so re-centring stays O(1) amortised. */
static inline bool off_centre(const struct rp_window *w) {
  double n = (double)w->n * (15.0 / 16.0);
  return w->sv * w->sv > n * w->svv || w->st * w->st > n * w->stt ||
         w->svv * 1024.0 < w->svv_peak || w->stt * 1024.0 < w->stt_peak;
}

/* ---- creation ------------------------------------------------------------ */

static int grid_setup(struct rp_window *w, const struct rp_window_opts *o) {
  double sc = o->grid_scale, lo = o->grid_min, hi = o->grid_max;
  if (!(isfinite(sc) && sc > 0 && isfinite(lo) && isfinite(hi) && lo <= hi))
    return -EINVAL;
  const double lim = 4503599627370496.0; /* 2^52: indices exact in a double */
  if (!(fabs(lo * sc) < lim && fabs(hi * sc) < lim))
    return -EINVAL;
  int64_t klo = (int64_t)llround(lo * sc), khi = (int64_t)llround(hi * sc);
  if ((double)klo / sc != lo || (double)khi / sc != hi)
    return -EINVAL;
  if (khi < klo || khi - klo + 1 > RP_WINDOW_MAX_BINS)
    return -EINVAL;
  w->has_grid = true;
  w->grid_scale = sc;
  w->grid_min = lo;
  w->grid_max = hi;
  w->kmin = klo;
  w->nbins = (uint32_t)(khi - klo + 1);
  w->fw_top = 1;
  while (w->fw_top * 2 <= w->nbins)
    w->fw_top *= 2;
  return 0;
}

/* Allocates room for `cap` samples and their index into a fresh block and
 * makes it w's, the held samples and index copied in (the ring from slot
 * 0). The old block, if any, is freed. */
static int store_alloc(struct rp_window *w, size_t cap) {
  size_t idx_off = cap * sizeof(struct rp_sample);
  size_t idx_len = w->method == RP_WINDOW_SORTED ? cap * sizeof(double)
                                                 : ((size_t)w->nbins + 1) * sizeof(uint32_t);
  char *mem = calloc(1, idx_off + idx_len);
  if (mem == NULL)
    return -ENOMEM;
  struct rp_sample *ring = (struct rp_sample *)(void *)mem;
  for (size_t i = 0; i < w->n; i++)
    ring[i] = w->ring[ring_at(w, i)];
  if (w->method == RP_WINDOW_SORTED) {
    double *sorted = (double *)(void *)(mem + idx_off);
    if (w->nidx > 0)
      memcpy(sorted, w->sorted, w->nidx * sizeof(double));
    w->sorted = sorted;
  } else {
    uint32_t *fw = (uint32_t *)(void *)(mem + idx_off);
    if (w->fw != NULL)
      memcpy(fw, w->fw, idx_len);
    w->fw = fw;
  }
  free(w->store);
  w->store = mem;
  w->ring = ring;
  w->head = 0;
  w->cap = cap;
  return 0;
}

/* Full, and the oldest sample is still inside the window: twice the room,
 * up to the capacity. False when there is no more room to have. */
static bool grow(struct rp_window *w) {
  if (w->cap >= w->max_cap)
    return false;
  size_t cap = w->cap * 2 > w->max_cap ? w->max_cap : w->cap * 2;
  return store_alloc(w, cap) == 0;
}

int rp_window_new(struct rp_window **out, const struct rp_window_opts *o) {
  struct rp_window tmp = {0};
  *out = NULL;
  if (o->duration_ms <= 0 || o->duration_ms > RP_WINDOW_MAX_DURATION_MS || o->capacity < 1 ||
      o->capacity > RP_WINDOW_MAX_CAPACITY)
    return -EINVAL;
  if (o->grid_scale != 0.0 && grid_setup(&tmp, o) < 0)
    return -EINVAL;
  switch (o->method) {
  case RP_WINDOW_AUTO:
    tmp.method = tmp.has_grid && o->capacity >= RP_WINDOW_COUNTING_MIN_CAPACITY &&
                         tmp.nbins <= RP_WINDOW_COUNTING_MAX_BINS_PER_SAMPLE * o->capacity
                     ? RP_WINDOW_COUNTING
                     : RP_WINDOW_SORTED;
    break;
  case RP_WINDOW_SORTED: tmp.method = RP_WINDOW_SORTED; break;
  case RP_WINDOW_COUNTING:
    if (!tmp.has_grid)
      return -EINVAL;
    tmp.method = RP_WINDOW_COUNTING;
    break;
  default: return -EINVAL;
  }
  tmp.duration = o->duration_ms;
  tmp.max_cap = o->capacity;
  tmp.cap = o->initial_capacity == 0 || o->initial_capacity > o->capacity ? o->capacity
                                                                          : o->initial_capacity;
  struct rp_window *w = malloc(sizeof(*w));
  if (w == NULL)
    return -ENOMEM;
  *w = tmp;
  if (store_alloc(w, w->cap) != 0) {
    free(w);
    return -ENOMEM;
  }
  *out = w;
  return 0;
}

void rp_window_free(struct rp_window *w) {
  if (w == NULL)
    return;
  free(w->store);
  free(w);
}

void rp_window_clear(struct rp_window *w) {
  w->head = w->n = w->nidx = 0;
  w->newest = 0;
  if (w->fw != NULL)
    memset(w->fw, 0, ((size_t)w->nbins + 1) * sizeof *w->fw);
  sums_reset(w, 0, 0.0);
}

/* ---- adding -------------------------------------------------------------- */

/* ts > newest, or the window is empty: expire, then append. The last sample
 * to leave (expired, or evicted when full) is replaced in the value index by
 * the new one, which is the common steady-state path. */
static void add_newest(struct rp_window *w, int64_t ts, double v) {
  bool have_old = false;
  double old = 0.0;
  while (w->n > 0 && apart(w->ring[w->head].ts, ts, w->duration)) {
    struct rp_sample s = ring_pop_head(w);
    sums_sub(w, s.ts, s.v);
    w->ctr.expired++;
    if (have_old)
      idx_remove(w, old);
    old = s.v;
    have_old = true;
  }
  if (!have_old && w->n == w->cap && !grow(w)) {
    struct rp_sample s = ring_pop_head(w);
    sums_sub(w, s.ts, s.v);
    w->ctr.evicted++;
    old = s.v;
    have_old = true;
  }
  if (have_old)
    idx_replace(w, old, v);
  else
    idx_insert(w, v);
  if (w->n == 0)
    sums_reset(w, ts, v);
  ring_push_tail(w, ts, v);
  sums_add(w, ts, v);
  w->newest = ts;
}

/* newest - D < ts <= newest is checked by the caller. */
static int add_late(struct rp_window *w, int64_t ts, double v) {
  if (w->n == w->cap && !grow(w)) {
    w->ctr.evicted++;
    if (ts < w->ring[w->head].ts)
      return -ENOBUFS; /* the new sample is the oldest: it is the one out */
    struct rp_sample s = ring_pop_head(w);
    sums_sub(w, s.ts, s.v);
    idx_replace(w, s.v, v);
    if (w->n == 0)
      sums_reset(w, ts, v);
  } else {
    idx_insert(w, v);
  }
  ring_insert(w, ts, v);
  sums_add(w, ts, v);
  return 0;
}

int rp_window_add(struct rp_window *w, int64_t ts_ms, double v) {
  if (!isfinite(v)) {
    w->ctr.nonfinite++;
    return -EDOM;
  }
  if (w->has_grid && grid_bin_checked(w, v) < 0) {
    w->ctr.off_grid++;
    return -ERANGE;
  }
  if (w->n > 0 && ts_ms <= w->newest) {
    if (apart(ts_ms, w->newest, w->duration)) {
      w->ctr.too_old++;
      return -ESTALE;
    }
    int rc = add_late(w, ts_ms, v);
    if (rc < 0)
      return rc;
  } else {
    add_newest(w, ts_ms, v);
  }
  w->ctr.inserted++;
  if (++w->since_recentre >= w->cap || apart(w->tref, w->newest, w->duration) || off_centre(w))
    sums_recentre(w);
  return 0;
}

/* ---- queries ------------------------------------------------------------- */

size_t rp_window_count(const struct rp_window *w) { return w->n; }

enum rp_window_method rp_window_method(const struct rp_window *w) { return w->method; }

void rp_window_counters(const struct rp_window *w, struct rp_window_counters *out) {
  *out = w->ctr;
}

/* numpy's _lerp: from a for t < 0.5, from b otherwise. */
static inline double lerp_np(double a, double b, double t) {
  double d = b - a;
  return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

static inline double quantile_unchecked(const struct rp_window *w, double q) {
  double h = (double)(w->n - 1) * q;
  size_t lo = (size_t)h;
  double t = h - (double)lo;
  double a = order_stat(w, lo);
  if (t == 0.0 || lo + 1 >= w->n)
    return a;
  return lerp_np(a, order_stat(w, lo + 1), t);
}

double rp_window_quantile(const struct rp_window *w, double q) {
  if (w->n == 0 || !(q >= 0.0 && q <= 1.0))
    return NAN;
  return quantile_unchecked(w, q);
}

int rp_window_quantiles(const struct rp_window *w, const double *q, double *out, size_t k) {
  if (w->n == 0)
    return -ENODATA;
  for (size_t i = 0; i < k; i++)
    if (!(q[i] >= 0.0 && q[i] <= 1.0))
      return -EINVAL;
  for (size_t i = 0; i < k; i++)
    out[i] = quantile_unchecked(w, q[i]);
  return 0;
}

static bool all_equal(const struct rp_window *w) {
  return order_stat(w, 0) == order_stat(w, w->n - 1);
}

int rp_window_slope(const struct rp_window *w, double *per_min) {
  size_t n = w->n;
  if (n < 2 || w->ring[w->head].ts == w->ring[ring_at(w, n - 1)].ts)
    return -ENODATA;
  double tbar = w->st / (double)n;
  double sxx = w->stt - w->st * tbar;
  double sxy = w->stv - tbar * w->sv;
  if (!(sxx > 0.0))
    return -ENODATA; /* only through rounding on a degenerate window */
  /* A covariance within rounding of zero may be an exact zero: check. */
  if (fabs(sxy) <= 64 * DBL_EPSILON * (fabs(w->stv) + fabs(tbar * w->sv)) && all_equal(w)) {
    *per_min = 0.0;
    return 0;
  }
  *per_min = sxy / sxx * 60000.0;
  return 0;
}

void rp_summary_init(struct rp_window_summary *s) {
  *s = (struct rp_window_summary){
      .count = 0,
      .sum = 0.0,
      .mean = NAN,
      .m2 = 0.0,
      .stddev = NAN,
      .min = NAN,
      .max = NAN,
      .has_slope = false,
      .slope_per_min = NAN,
  };
}

int rp_window_summary(const struct rp_window *w, struct rp_window_summary *out) {
  rp_summary_init(out);
  size_t n = w->n;
  if (n == 0)
    return -ENODATA;
  double dn = (double)n;
  out->count = n;
  out->min = order_stat(w, 0);
  out->max = order_stat(w, n - 1);
  if (out->min == out->max) {
    out->mean = out->min;
    out->m2 = 0.0;
  } else {
    out->mean = fmin(fmax(w->vref + w->sv / dn, out->min), out->max);
    out->m2 = fmax(w->svv - w->sv * (w->sv / dn), 0.0);
  }
  out->sum = out->mean * dn;
  out->stddev = sqrt(out->m2 / dn);
  out->has_slope = rp_window_slope(w, &out->slope_per_min) == 0;
  out->oldest_ts_ms = w->ring[w->head].ts;
  out->newest_ts_ms = w->ring[ring_at(w, n - 1)].ts;
  out->span_ms = out->newest_ts_ms - out->oldest_ts_ms;
  return 0;
}

void rp_summary_merge(struct rp_window_summary *dst, const struct rp_window_summary *src) {
  if (src->count == 0)
    return;
  if (dst->count == 0) {
    *dst = *src;
    return;
  }
  double na = (double)dst->count, nb = (double)src->count, n = na + nb;
  double delta = src->mean - dst->mean;
  dst->mean += delta * (nb / n);
  dst->m2 += src->m2 + delta * delta * (na * nb / n);
  dst->count += src->count;
  dst->sum += src->sum;
  dst->stddev = sqrt(dst->m2 / n);
  dst->min = fmin(dst->min, src->min);
  dst->max = fmax(dst->max, src->max);
  dst->has_slope = false;
  dst->slope_per_min = NAN;
  if (src->oldest_ts_ms < dst->oldest_ts_ms)
    dst->oldest_ts_ms = src->oldest_ts_ms;
  if (src->newest_ts_ms > dst->newest_ts_ms)
    dst->newest_ts_ms = src->newest_ts_ms;
  dst->span_ms = dst->newest_ts_ms - dst->oldest_ts_ms;
}

/* ---- series -------------------------------------------------------------- */

int rp_stats_series_new(struct rp_stats_series **out, const struct rp_stats_series_opts *o) {
  *out = NULL;
  if (o->nwindows < 1 || o->nwindows > RP_STATS_SERIES_MAX_WINDOWS)
    return -EINVAL;
  struct rp_stats_series *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < o->nwindows; i++) {
    int rc = rp_window_new(&s->w[i], &o->window[i]);
    if (rc < 0) {
      rp_stats_series_free(s);
      return rc;
    }
    s->nw++;
  }
  *out = s;
  return 0;
}

void rp_stats_series_free(struct rp_stats_series *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nw; i++)
    rp_window_free(s->w[i]);
  free(s);
}

int rp_stats_series_add(struct rp_stats_series *s, int64_t ts_ms, double v) {
  bool held = false;
  int rc = 0;
  for (size_t i = 0; i < s->nw; i++) {
    int r = rp_window_add(s->w[i], ts_ms, v);
    if (r == 0)
      held = true;
    else
      rc = r;
  }
  return held ? 0 : rc;
}

size_t rp_stats_series_nwindows(const struct rp_stats_series *s) { return s->nw; }

const struct rp_window *rp_stats_series_window(const struct rp_stats_series *s, size_t i) {
  return i < s->nw ? s->w[i] : NULL;
}
