/* Edge statistics: rolling time-window statistics of one series (count, min,
 * max, mean, standard deviation, exact quantiles, least-squares slope), used
 * by the agent and the aggregator alike. Pure C11: no I/O, no logging, and no
 * allocation after a window or series has been created.
 *
 * Windows
 *   A window of duration D holds the samples whose timestamp ts satisfies
 *       newest - D < ts <= newest
 *   where `newest` is the largest timestamp accepted so far: the lower bound is
 *   EXCLUSIVE, so a 300 000 ms window fed once a second holds 300 samples.
 *   Expiry is by time only; the capacity is a separate, hard bound.
 *
 * What rp_window_add() does with a sample (each outcome is counted, see
 * struct rp_window_counters):
 *   - v is NaN or infinite: rejected, not inserted (-EDOM).
 *   - the window has a value grid and v is not on it: rejected (-ERANGE).
 *   - ts <= newest - D (older than the window of the newest): dropped (-ESTALE).
 *   - ts > newest: appended; samples now outside the window expire.
 *   - newest - D < ts <= newest (late, or a duplicate timestamp): inserted at
 *     its place in time order, after any samples with the same timestamp.
 *     Late samples cost O(distance from the newest) to place.
 *   - the window is full (capacity samples): the oldest sample by timestamp is
 *     evicted to make room. When the new sample is itself strictly older than
 *     every held sample, it is the one evicted (-ENOBUFS, counted as evicted).
 *
 * Quantiles are exact: the quantile q of the n held values, with numpy's
 * default method ("linear", Hyndman & Fan type 7): h = (n - 1) q, lo = floor(h),
 * t = h - lo, and the result interpolates between the order statistics x[lo]
 * and x[lo+1] with numpy's own formula (x[lo] + (x[lo+1]-x[lo]) t when t < 0.5,
 * x[lo+1] - (x[lo+1]-x[lo]) (1-t) otherwise; x[lo] when t == 0: numpy's
 * _lerp since numpy 1.22), so results equal numpy.quantile(values, q) bit for
 * bit whenever x[lo+1] - x[lo] does not overflow.
 * Example: values {1,2,3,4}: p50 = 2.5, p95 = 3.85.
 *
 * Two exact value indexes, chosen per window (enum rp_window_method):
 *   SORTED    a sorted array kept by binary search + memmove: O(capacity)
 *             bytes moved per update, O(1) per quantile. Any finite values.
 *   COUNTING  a Fenwick tree of counts over a value grid declared at creation
 *             (values k/scale for integers k in [min, max], e.g. scale 10 for
 *             0.1 °C readings, scale 1 for IPMI raw 8-bit readings): O(log bins)
 *             per update and per order statistic. Exact because off-grid
 *             values are refused.
 *   AUTO picks COUNTING when a grid is declared, the capacity is at least
 *   RP_WINDOW_COUNTING_MIN_CAPACITY and the grid has at most
 *   RP_WINDOW_COUNTING_MAX_BINS_PER_SAMPLE bins per sample of capacity (so
 *   the tree stays within 8 times the sorted array's memory); SORTED
 *   otherwise. Both return identical results. Measured (BENCHMARKS.md, "Edge
 *   statistics"): SORTED is faster up to several hundred samples (it is the
 *   faster at 300), the two are about even near 900, and COUNTING is ahead
 *   from about 1 800 samples, its cost barely growing with the window. A grid
 *   may be declared with SORTED too: values are then checked against it the
 *   same way.
 *
 * Mean, standard deviation and slope come from running sums of
 * (ts - t_ref) and (v - v_ref), with t_ref and v_ref the window's mean time
 * and mean value at the last re-centring; the sums are recomputed from the held
 * samples (two passes) every `capacity` insertions, whenever the newest
 * timestamp is more than D past t_ref, whenever the held samples' mean has
 * moved about 4 standard deviations from (t_ref, v_ref) (a level step), and
 * whenever a sum of squares falls below 1/1024 of its peak (an outlier left):
 * this bounds rounding drift and cancellation at O(1) amortised cost. Time
 * offsets are kept as exact integers until they enter a double. When all held
 * values are equal, the standard deviation and slope are exactly 0 and the
 * mean is exactly that value. When held values differ by more than about
 * 1e150 the squared sums overflow (stddev and slope become inf or NaN); count,
 * min, max and quantiles stay exact for every finite value.
 *
 * Threads: a window or series is not synchronised. One thread may use it at a
 * time; queries take a const pointer and do not modify it.
 */
#ifndef RACKPULSE_STATS_H
#define RACKPULSE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits checked by rp_window_new(). */
#define RP_WINDOW_MAX_CAPACITY ((size_t)1 << 24)
#define RP_WINDOW_MAX_DURATION_MS ((int64_t)1 << 40) /* about 34 years */
#define RP_WINDOW_MAX_BINS ((int64_t)1 << 20)
/* AUTO's choice of COUNTING (see above). */
#define RP_WINDOW_COUNTING_MIN_CAPACITY 1024
#define RP_WINDOW_COUNTING_MAX_BINS_PER_SAMPLE 16

enum rp_window_method {
  RP_WINDOW_AUTO = 0,
  RP_WINDOW_SORTED,
  RP_WINDOW_COUNTING, /* requires a grid */
};

/* Creation options. Zero-initialise, then set duration_ms and capacity. */
struct rp_window_opts {
  int64_t duration_ms; /* D, in (0, RP_WINDOW_MAX_DURATION_MS] */
  size_t capacity;     /* samples held at most, in [1, RP_WINDOW_MAX_CAPACITY] */
  /* Room allocated at first, in [1, capacity]; 0: capacity. Below capacity,
   * the room doubles (up to capacity) whenever a sample would otherwise
   * push out one that is still inside the window, so a window sized for
   * its fastest possible input holds only what its input really sends. */
  size_t initial_capacity;
  enum rp_window_method method;
  /* Optional value grid. grid_scale == 0: none. Otherwise grid_scale is finite
   * and > 0, and a value v is on the grid when v == (double)k / grid_scale for
   * an integer k, with grid_min <= v <= grid_max. grid_min and grid_max must
   * themselves be on the grid, and span at most RP_WINDOW_MAX_BINS points. */
  double grid_scale;
  double grid_min;
  double grid_max;
};

/* Outcomes of rp_window_add() since creation (rp_window_clear() keeps them). */
struct rp_window_counters {
  uint64_t inserted;  /* samples for which rp_window_add() returned 0 */
  uint64_t nonfinite; /* NaN or infinite values refused (-EDOM) */
  uint64_t off_grid;  /* values off the declared grid refused (-ERANGE) */
  uint64_t too_old;   /* samples older than the window of the newest (-ESTALE) */
  uint64_t evicted;   /* samples evicted because the window was full,
                            including new samples refused with -ENOBUFS */
  uint64_t expired;   /* samples that left the window because time moved on */
};

/* A summary of a window's samples: plain data, owned by the caller, and
 * mergeable with rp_summary_merge(). An empty summary (count 0) has sum 0,
 * m2 0, min/max/mean/stddev/slope NaN and has_slope false.
 *
 * The squared spread is carried as m2 = sum of (v - mean)^2 rather than as a
 * sum of squares, which cancels catastrophically when the mean is large
 * against the spread; sum of squares = m2 + sum * sum / count if needed. */
struct rp_window_summary {
  uint64_t count;
  double sum; /* mean * count */
  double mean;
  double m2;
  double stddev; /* population standard deviation, sqrt(m2 / count),
                           as numpy.std with its default ddof = 0 */
  double min;
  double max;
  bool has_slope;       /* false: fewer than 2 samples, or all at one time */
  double slope_per_min; /* least-squares slope, value units per minute; NaN
                           when !has_slope */
  int64_t oldest_ts_ms; /* timestamps of the oldest and newest held samples */
  int64_t newest_ts_ms;
  int64_t span_ms; /* newest_ts_ms - oldest_ts_ms */
};

struct rp_window;

/* Creates a window in *out. Everything it will ever need is allocated here, in
 * one block. Returns 0, -EINVAL (bad options: see struct rp_window_opts;
 * COUNTING without a grid) or -ENOMEM. On error *out is set to NULL. The
 * caller owns the window and frees it with rp_window_free(). */
int rp_window_new(struct rp_window **out, const struct rp_window_opts *opts);

/* Frees a window. Accepts NULL. The window must not be used afterwards. */
void rp_window_free(struct rp_window *w);

/* Drops every held sample and forgets `newest`; counters are kept. */
void rp_window_clear(struct rp_window *w);

/* Adds a sample (ts in milliseconds on any fixed epoch, v in the series'
 * unit). Returns 0 when the sample is now held, or a negative errno when it is
 * not: -EDOM, -ERANGE, -ESTALE or -ENOBUFS (see the top of this file). Never
 * allocates. */
int rp_window_add(struct rp_window *w, int64_t ts_ms, double v);

/* Number of samples held. */
size_t rp_window_count(const struct rp_window *w);

/* The method in use (never RP_WINDOW_AUTO). */
enum rp_window_method rp_window_method(const struct rp_window *w);

/* Copies the counters into *out. */
void rp_window_counters(const struct rp_window *w, struct rp_window_counters *out);

/* The exact quantile q in [0, 1] of the held values (numpy "linear", above).
 * Returns NaN when the window is empty or q is not in [0, 1]. */
double rp_window_quantile(const struct rp_window *w, double q);

/* Fills out[i] with the quantile q[i] for i < k. Returns 0, -ENODATA when the
 * window is empty (out untouched) or -EINVAL when some q[i] is not in [0, 1]
 * (out untouched). */
int rp_window_quantiles(const struct rp_window *w, const double *q, double *out, size_t k);

/* Least-squares slope of value against time over the held samples, in value
 * units per minute, into *per_min. Returns 0, or -ENODATA ("no slope": fewer
 * than 2 samples, or all held samples at one timestamp; *per_min untouched). */
int rp_window_slope(const struct rp_window *w, double *per_min);

/* Fills *out with a summary of the held samples. Returns 0, or -ENODATA when
 * the window is empty (*out is then the empty summary). */
int rp_window_summary(const struct rp_window *w, struct rp_window_summary *out);

/* Sets *s to the empty summary, the identity of rp_summary_merge(). */
void rp_summary_init(struct rp_window_summary *s);

/* Merges src into dst, so that dst summarises the union of both sample sets
 * (for instance racks into a row): count, sum, min, max and timestamps add up
 * exactly; mean and m2 combine with Chan et al.'s pairwise formula. A slope is
 * not mergeable: when both are non-empty the result has has_slope false. When
 * dst is empty it becomes a copy of src; an empty src leaves dst unchanged. */
void rp_summary_merge(struct rp_window_summary *dst, const struct rp_window_summary *src);

/* A statistics series: up to RP_STATS_SERIES_MAX_WINDOWS windows (say 60 s,
 * 300 s and 900 s) fed by one rp_stats_series_add(). Each window keeps its own
 * samples and counters. (Named apart from the agent's series dictionary,
 * struct rp_series in agent/series.h.) */
#define RP_STATS_SERIES_MAX_WINDOWS 4

struct rp_stats_series_opts {
  size_t nwindows; /* 1 .. RP_STATS_SERIES_MAX_WINDOWS */
  struct rp_window_opts window[RP_STATS_SERIES_MAX_WINDOWS];
};

struct rp_stats_series;

/* Creates a series in *out with all its windows. Returns 0, -EINVAL or
 * -ENOMEM (as rp_window_new; on error *out is NULL and nothing is leaked).
 * The caller owns the series and frees it with rp_stats_series_free(). */
int rp_stats_series_new(struct rp_stats_series **out, const struct rp_stats_series_opts *opts);

/* Frees a series and its windows. Accepts NULL. */
void rp_stats_series_free(struct rp_stats_series *s);

/* Adds a sample to every window. Returns 0 when at least one window now holds
 * it; otherwise the error of the last window (-EDOM, -ERANGE, -ESTALE or
 * -ENOBUFS, as rp_window_add). */
int rp_stats_series_add(struct rp_stats_series *s, int64_t ts_ms, double v);

/* Number of windows. */
size_t rp_stats_series_nwindows(const struct rp_stats_series *s);

/* Window i (i < rp_stats_series_nwindows(s)), owned by the series: valid until
 * rp_stats_series_free(). Returns NULL when i is out of range. */
const struct rp_window *rp_stats_series_window(const struct rp_stats_series *s, size_t i);

#endif
