/* Unit tests for the edge statistics (lib/stats.c, include/rackpulse/stats.h):
 * known answers, each documented window policy, and randomized property tests
 * against a reference model kept in this file. The model holds every accepted
 * sample in an unordered array, applies the header's policies literally, sorts
 * the window on every query, computes numpy-"linear" quantiles and direct
 * least squares in long double. Seeds are fixed: a failure names its seed and
 * step and reproduces. Quantiles, min, max, count and counters must match
 * exactly; mean, variance and slope within relative tolerances (see
 * check_window()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/stats.h"

/* ---- helpers ------------------------------------------------------------- */

/* The room windows start with (rp_window_opts.initial_capacity): 0 is all
 * of their capacity. Growing to the capacity must never show. */
static size_t first_room;

static struct rp_window *mkwin(int64_t dur, size_t cap, enum rp_window_method m, double scale,
                               double gmin, double gmax) {
  struct rp_window_opts o = {.duration_ms = dur,
                             .capacity = cap,
                             .initial_capacity = first_room,
                             .method = m,
                             .grid_scale = scale,
                             .grid_min = gmin,
                             .grid_max = gmax};
  struct rp_window *w = NULL;
  assert_int_equal(rp_window_new(&w, &o), 0);
  assert_non_null(w);
  return w;
}

static struct rp_window *plain(int64_t dur, size_t cap) {
  return mkwin(dur, cap, RP_WINDOW_SORTED, 0, 0, 0);
}

/* splitmix64: small, seedable, good enough for test streams. */
static uint64_t rng(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double unit(uint64_t *s) { return (double)(rng(s) >> 11) * 0x1.0p-53; }
static uint64_t below(uint64_t *s, uint64_t n) { return rng(s) % n; }

/* ---- reference model ----------------------------------------------------- */

#define REF_MAX 512

struct ref_sample {
  int64_t ts;
  double v;
  uint64_t seq;
};

struct ref {
  int64_t dur;
  size_t cap;
  bool grid;
  double scale, gmin, gmax;
  struct ref_sample s[REF_MAX];
  size_t n;
  int64_t newest;
  uint64_t seq;
  struct rp_window_counters ctr;
};

static void ref_init(struct ref *r, int64_t dur, size_t cap, double scale, double gmin,
                     double gmax) {
  memset(r, 0, sizeof *r);
  r->dur = dur;
  r->cap = cap;
  r->grid = scale != 0;
  r->scale = scale;
  r->gmin = gmin;
  r->gmax = gmax;
}

static bool ref_on_grid(const struct ref *r, double v) {
  if (v < r->gmin || v > r->gmax)
    return false;
  return rint(v * r->scale) / r->scale == v;
}

/* True when newest - ts >= dur, for ts <= newest, without overflow. */
static bool ref_too_old(int64_t ts, int64_t newest, int64_t dur) {
  return newest >= INT64_MIN + dur && ts <= newest - dur;
}

static void ref_remove_at(struct ref *r, size_t i) { r->s[i] = r->s[--r->n]; }

/* The oldest held sample: smallest timestamp, first inserted among equals. */
static size_t ref_oldest(const struct ref *r) {
  size_t o = 0;
  for (size_t i = 1; i < r->n; i++)
    if (r->s[i].ts < r->s[o].ts || (r->s[i].ts == r->s[o].ts && r->s[i].seq < r->s[o].seq))
      o = i;
  return o;
}

static int ref_add(struct ref *r, int64_t ts, double v) {
  if (!isfinite(v)) {
    r->ctr.nonfinite++;
    return -EDOM;
  }
  if (r->grid && !ref_on_grid(r, v)) {
    r->ctr.off_grid++;
    return -ERANGE;
  }
  if (r->n > 0 && ts <= r->newest) {
    if (ref_too_old(ts, r->newest, r->dur)) {
      r->ctr.too_old++;
      return -ESTALE;
    }
    if (r->n == r->cap) {
      r->ctr.evicted++;
      size_t o = ref_oldest(r);
      if (ts < r->s[o].ts)
        return -ENOBUFS;
      ref_remove_at(r, o);
    }
  } else {
    for (size_t i = 0; i < r->n;) {
      if (ref_too_old(r->s[i].ts, ts, r->dur)) {
        ref_remove_at(r, i);
        r->ctr.expired++;
      } else {
        i++;
      }
    }
    if (r->n == r->cap) {
      ref_remove_at(r, ref_oldest(r));
      r->ctr.evicted++;
    }
    r->newest = ts;
  }
  r->s[r->n++] = (struct ref_sample){.ts = ts, .v = v, .seq = r->seq++};
  r->ctr.inserted++;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* numpy.quantile(x, q), method "linear", x sorted ascending. */
static double np_quantile(const double *x, size_t n, double q) {
  double vi = (double)(n - 1) * q;
  double prev = floor(vi);
  size_t lo = (size_t)prev;
  size_t hi = lo + 1 < n ? lo + 1 : n - 1;
  double g = vi - prev;
  double d = x[hi] - x[lo];
  double res = x[lo] + d * g;
  if (g >= 0.5)
    res = x[hi] - d * (1 - g);
  return res;
}

struct ref_stats {
  size_t n;
  double sorted[REF_MAX];
  long double mean, var, range, maxabs;
  bool has_slope;
  long double slope_per_min;
  int64_t oldest, newest;
};

static void ref_compute(const struct ref *r, struct ref_stats *o) {
  memset(o, 0, sizeof *o);
  o->n = r->n;
  if (r->n == 0)
    return;
  /* Shifted data (v - v0, ts - t0), two passes, in long double: accurate
   * even where long double is only a double (valgrind). */
  long double sv = 0, sdt = 0, v0 = r->s[0].v;
  int64_t t0 = r->s[0].ts;
  o->oldest = o->newest = t0;
  for (size_t i = 0; i < r->n; i++) {
    o->sorted[i] = r->s[i].v;
    sv += r->s[i].v - v0;
    sdt += (long double)(r->s[i].ts - t0); /* all held within D: no overflow */
    if (r->s[i].ts < o->oldest)
      o->oldest = r->s[i].ts;
    if (r->s[i].ts > o->newest)
      o->newest = r->s[i].ts;
  }
  qsort(o->sorted, r->n, sizeof(double), cmp_double);
  long double n = (long double)r->n;
  long double vbar = sv / n; /* mean - v0 */
  o->mean = v0 + vbar;
  long double tbar = sdt / n, m2 = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < r->n; i++) {
    long double dv = (r->s[i].v - v0) - vbar;
    long double dt = (long double)(r->s[i].ts - t0) - tbar;
    m2 += dv * dv;
    sxx += dt * dt;
    sxy += dt * dv;
  }
  o->range = (long double)o->sorted[r->n - 1] - o->sorted[0];
  o->var = o->range == 0 ? 0 : m2 / n; /* exact, even where long double is double */
  o->maxabs = fmaxl(fabsl(o->sorted[0]), fabsl(o->sorted[r->n - 1]));
  o->has_slope = r->n >= 2 && o->oldest != o->newest;
  if (o->has_slope)
    o->slope_per_min = o->range == 0 ? 0 : sxy / sxx * 60000.0L;
}

/* ---- comparison ---------------------------------------------------------- */

/* Largest errors seen, as fractions of their tolerances (printed at the end). */
static double worst_mean, worst_var, worst_slope;

static const double qs[] = {0.0, 0.01, 0.25, 0.5, 0.95, 0.99, 1.0};
#define NQ (sizeof qs / sizeof qs[0])

static void check_window(const struct rp_window *w, const struct ref *r, const char *what,
                         uint64_t seed, int step) {
  struct ref_stats rs;
  ref_compute(r, &rs);
  struct rp_window_counters c;
  rp_window_counters(w, &c);
  if (memcmp(&c, &r->ctr, sizeof c) != 0)
    fail_msg("%s seed %llu step %d: counters differ (inserted %llu/%llu "
             "expired %llu/%llu evicted %llu/%llu too_old %llu/%llu)",
             what, (unsigned long long)seed, step, (unsigned long long)c.inserted,
             (unsigned long long)r->ctr.inserted, (unsigned long long)c.expired,
             (unsigned long long)r->ctr.expired, (unsigned long long)c.evicted,
             (unsigned long long)r->ctr.evicted, (unsigned long long)c.too_old,
             (unsigned long long)r->ctr.too_old);
  if (rp_window_count(w) != rs.n)
    fail_msg("%s seed %llu step %d: count %zu, expected %zu", what, (unsigned long long)seed, step,
             rp_window_count(w), rs.n);

  struct rp_window_summary sm;
  int rc = rp_window_summary(w, &sm);
  if (rs.n == 0) {
    assert_int_equal(rc, -ENODATA);
    assert_true(isnan(rp_window_quantile(w, 0.5)));
    return;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(sm.count, rs.n);
  for (size_t i = 0; i < NQ; i++) {
    double got = rp_window_quantile(w, qs[i]);
    double want = np_quantile(rs.sorted, rs.n, qs[i]);
    if (got != want)
      fail_msg("%s seed %llu step %d: q%.2f = %.17g, expected %.17g", what,
               (unsigned long long)seed, step, qs[i], got, want);
  }
  if (sm.min != rs.sorted[0] || sm.max != rs.sorted[rs.n - 1])
    fail_msg("%s seed %llu step %d: min/max %.17g/%.17g, expected %.17g/%.17g", what,
             (unsigned long long)seed, step, sm.min, sm.max, rs.sorted[0], rs.sorted[rs.n - 1]);
  assert_int_equal(sm.oldest_ts_ms, rs.oldest);
  assert_int_equal(sm.newest_ts_ms, rs.newest);

  /* Mean: rounding relative to the window's magnitude. */
  long double tol = 1e-12L * rs.maxabs;
  long double err = fabsl((long double)sm.mean - rs.mean);
  if (err > tol)
    fail_msg("%s seed %llu step %d: mean %.17g, expected %.17Lg", what, (unsigned long long)seed,
             step, sm.mean, rs.mean);
  if (tol > 0 && err / tol > worst_mean)
    worst_mean = (double)(err / tol);

  /* Variance: relative, with a floor of rounding on the range squared. */
  long double var = (long double)sm.stddev * sm.stddev;
  tol = 1e-9L * rs.var + 1e-12L * rs.range * rs.range;
  err = fabsl(var - rs.var);
  if (err > tol || (rs.range == 0 && sm.stddev != 0))
    fail_msg("%s seed %llu step %d: variance %.17Lg, expected %.17Lg", what,
             (unsigned long long)seed, step, var, rs.var);
  if (tol > 0 && err / tol > worst_var)
    worst_var = (double)(err / tol);

  /* Slope: relative, with a floor of 1e-9 of range / span. */
  if (sm.has_slope != rs.has_slope)
    fail_msg("%s seed %llu step %d: has_slope %d, expected %d", what, (unsigned long long)seed,
             step, sm.has_slope, rs.has_slope);
  if (rs.has_slope) {
    long double span = (long double)(rs.newest - rs.oldest);
    tol = 1e-9L * fabsl(rs.slope_per_min) + 1e-9L * rs.range / span * 60000.0L;
    err = fabsl((long double)sm.slope_per_min - rs.slope_per_min);
    if (err > tol || (rs.range == 0 && sm.slope_per_min != 0))
      fail_msg("%s seed %llu step %d: slope %.17g, expected %.17Lg", what, (unsigned long long)seed,
               step, sm.slope_per_min, rs.slope_per_min);
    if (tol > 0 && err / tol > worst_slope)
      worst_slope = (double)(err / tol);
    double s2;
    assert_int_equal(rp_window_slope(w, &s2), 0);
    assert_true(s2 == sm.slope_per_min);
  } else {
    double s2 = 42;
    assert_int_equal(rp_window_slope(w, &s2), -ENODATA);
    assert_true(s2 == 42);
    assert_true(isnan(sm.slope_per_min));
  }
}

/* ---- known answers ------------------------------------------------------- */

static void test_quantile_known(void **state) {
  (void)state;
  struct rp_window *w = plain(60000, 16);
  assert_true(isnan(rp_window_quantile(w, 0.5)));
  for (int i = 4; i >= 1; i--) /* out of order on purpose: values, not times */
    assert_int_equal(rp_window_add(w, 1000 * (5 - i), (double)i), 0);
  assert_true(rp_window_quantile(w, 0.5) == 2.5);
  assert_true(fabs(rp_window_quantile(w, 0.95) - 3.85) < 1e-12);
  assert_true(fabs(rp_window_quantile(w, 0.99) - 3.97) < 1e-12);
  assert_true(rp_window_quantile(w, 0.0) == 1.0);
  assert_true(rp_window_quantile(w, 1.0) == 4.0);
  assert_true(fabs(rp_window_quantile(w, 0.25) - 1.75) < 1e-15);
  assert_true(isnan(rp_window_quantile(w, 1.5)));
  assert_true(isnan(rp_window_quantile(w, -0.1)));
  assert_true(isnan(rp_window_quantile(w, NAN)));

  double q[3] = {0.5, 0.95, 0.99}, out[3] = {0, 0, 0};
  assert_int_equal(rp_window_quantiles(w, q, out, 3), 0);
  assert_true(out[0] == 2.5 && out[1] == rp_window_quantile(w, 0.95) &&
              out[2] == rp_window_quantile(w, 0.99));
  double bad[2] = {0.5, 2.0};
  out[0] = -1;
  assert_int_equal(rp_window_quantiles(w, bad, out, 2), -EINVAL);
  assert_true(out[0] == -1);

  struct rp_window_summary s;
  assert_int_equal(rp_window_summary(w, &s), 0);
  assert_int_equal(s.count, 4);
  assert_true(s.min == 1 && s.max == 4 && s.mean == 2.5 && s.sum == 10);
  assert_true(fabs(s.stddev - sqrt(1.25)) < 1e-15); /* numpy.std, ddof 0 */
  rp_window_free(w);

  /* One value: every quantile is that value. */
  w = plain(1000, 4);
  assert_int_equal(rp_window_add(w, 5, 7.25), 0);
  assert_true(rp_window_quantile(w, 0.0) == 7.25);
  assert_true(rp_window_quantile(w, 0.99) == 7.25);
  rp_window_free(w);
}

static void test_slope_known(void **state) {
  (void)state;
  /* A line rising 2 units per minute, sampled every second, with a large
   * offset in both time and value. */
  struct rp_window *w = plain(300000, 300);
  int64_t t0 = 1763800000000;
  for (int i = 0; i < 1000; i++)
    assert_int_equal(rp_window_add(w, t0 + 1000 * i, 1e6 + 2.0 * i / 60.0), 0);
  double s = 0;
  assert_int_equal(rp_window_add(w, t0 + 1000000, 1e6 + 2.0 * 1000 / 60.0), 0);
  assert_int_equal(rp_window_slope(w, &s), 0);
  assert_true(fabs(s - 2.0) < 1e-9);
  assert_int_equal(rp_window_count(w), 300);
  rp_window_free(w);

  /* Falling, irregular times. */
  w = plain(60000, 64);
  int64_t ts[] = {0, 700, 2300, 2400, 9000, 15000};
  for (size_t i = 0; i < 6; i++)
    assert_int_equal(rp_window_add(w, ts[i], 50.0 - 0.5 * (double)ts[i] / 60000), 0);
  assert_int_equal(rp_window_slope(w, &s), 0);
  assert_true(fabs(s + 0.5) < 1e-12);
  rp_window_free(w);

  /* No slope: one point, then two points at one time; then a slope. */
  w = plain(60000, 8);
  s = 99;
  assert_int_equal(rp_window_slope(w, &s), -ENODATA);
  assert_int_equal(rp_window_add(w, 1000, 1.0), 0);
  assert_int_equal(rp_window_slope(w, &s), -ENODATA);
  assert_int_equal(rp_window_add(w, 1000, 3.0), 0);
  assert_int_equal(rp_window_slope(w, &s), -ENODATA);
  assert_true(s == 99);
  struct rp_window_summary sm;
  assert_int_equal(rp_window_summary(w, &sm), 0);
  assert_false(sm.has_slope);
  assert_int_equal(sm.span_ms, 0);
  assert_int_equal(rp_window_add(w, 61000 - 1, 5.0), 0); /* 1000 still held */
  assert_int_equal(rp_window_slope(w, &s), 0);
  assert_true(s > 0);
  /* Identical values: slope and stddev exactly 0, mean exactly the value. */
  rp_window_free(w);
  w = plain(60000, 8);
  for (int i = 0; i < 8; i++)
    assert_int_equal(rp_window_add(w, i * 1000, 0.1), 0);
  assert_int_equal(rp_window_summary(w, &sm), 0);
  assert_true(sm.slope_per_min == 0 && sm.stddev == 0 && sm.mean == 0.1);
  rp_window_free(w);
}

/* ---- policies ------------------------------------------------------------ */

static void test_window_boundary(void **state) {
  (void)state;
  struct rp_window *w = plain(300000, 1000);
  for (int i = 0; i <= 300; i++)
    assert_int_equal(rp_window_add(w, 1000 * i, i), 0);
  /* ts 0 is exactly D older than the newest (300000): excluded. */
  assert_int_equal(rp_window_count(w), 300);
  struct rp_window_summary s;
  rp_window_summary(w, &s);
  assert_int_equal(s.oldest_ts_ms, 1000);
  assert_true(s.min == 1);
  /* Late samples: 0 is too old, 1 is not. */
  assert_int_equal(rp_window_add(w, 0, -5), -ESTALE);
  assert_int_equal(rp_window_add(w, 1, -5), 0);
  assert_true(rp_window_quantile(w, 0) == -5);
  rp_window_summary(w, &s);
  assert_int_equal(s.oldest_ts_ms, 1);
  struct rp_window_counters c;
  rp_window_counters(w, &c);
  assert_int_equal(c.too_old, 1);
  assert_int_equal(c.expired, 1);
  assert_int_equal(c.inserted, 302);
  /* A gap longer than the window empties it but for the new sample. */
  assert_int_equal(rp_window_add(w, 2000000, 9), 0);
  assert_int_equal(rp_window_count(w), 1);
  rp_window_counters(w, &c);
  assert_int_equal(c.expired, 302);
  rp_window_summary(w, &s);
  assert_true(s.mean == 9 && s.stddev == 0);
  rp_window_free(w);
}

static void test_capacity_and_rejects(void **state) {
  (void)state;
  struct rp_window *w = plain(60000, 3);
  assert_int_equal(rp_window_add(w, 1000, 1), 0);
  assert_int_equal(rp_window_add(w, 2000, 2), 0);
  assert_int_equal(rp_window_add(w, 3000, 3), 0);
  assert_int_equal(rp_window_add(w, 4000, 4), 0); /* evicts ts 1000 */
  assert_true(rp_window_quantile(w, 0) == 2);
  /* Full, and older than everything held: the new sample is the one out. */
  assert_int_equal(rp_window_add(w, 1500, 100), -ENOBUFS);
  assert_true(rp_window_quantile(w, 1) == 4);
  /* Full, late but newer than the oldest: the oldest goes. */
  assert_int_equal(rp_window_add(w, 2500, 0.5), 0);
  assert_true(rp_window_quantile(w, 0) == 0.5);
  assert_true(rp_window_quantile(w, 1) == 4);
  struct rp_window_summary s;
  rp_window_summary(w, &s);
  assert_int_equal(s.oldest_ts_ms, 2500);
  /* Non-finite values. */
  assert_int_equal(rp_window_add(w, 5000, NAN), -EDOM);
  assert_int_equal(rp_window_add(w, 5000, INFINITY), -EDOM);
  assert_int_equal(rp_window_add(w, 5000, -INFINITY), -EDOM);
  assert_int_equal(rp_window_count(w), 3);
  struct rp_window_counters c;
  rp_window_counters(w, &c);
  assert_int_equal(c.nonfinite, 3);
  assert_int_equal(c.evicted, 3);
  assert_int_equal(c.inserted, 5);
  assert_int_equal(c.expired, 0);
  /* Clear: empty, counters kept, and an older timestamp is fine again. */
  rp_window_clear(w);
  assert_int_equal(rp_window_count(w), 0);
  assert_int_equal(rp_window_add(w, 10, 1), 0);
  rp_window_counters(w, &c);
  assert_int_equal(c.inserted, 6);
  rp_window_free(w);
}

static void test_grid_and_methods(void **state) {
  (void)state;
  struct rp_window *w = mkwin(60000, 16, RP_WINDOW_COUNTING, 10, 15.0, 50.0);
  assert_int_equal(rp_window_method(w), RP_WINDOW_COUNTING);
  assert_int_equal(rp_window_add(w, 1, 23.7), 0);
  assert_int_equal(rp_window_add(w, 2, 15.0), 0);
  assert_int_equal(rp_window_add(w, 3, 50.0), 0);
  assert_int_equal(rp_window_add(w, 4, 23.75), -ERANGE);
  assert_int_equal(rp_window_add(w, 5, 50.1), -ERANGE);
  assert_int_equal(rp_window_add(w, 6, 14.9), -ERANGE);
  struct rp_window_counters c;
  rp_window_counters(w, &c);
  assert_int_equal(c.off_grid, 3);
  assert_true(rp_window_quantile(w, 0.5) == 23.7);
  assert_true(rp_window_quantile(w, 0) == 15.0);
  assert_true(rp_window_quantile(w, 1) == 50.0);
  assert_true(rp_window_quantile(w, 0.25) == 15.0 + (23.7 - 15.0) * 0.5);
  rp_window_free(w);

  /* IPMI raw readings: integers 0..255. */
  w = mkwin(60000, 16, RP_WINDOW_COUNTING, 1, 0, 255);
  assert_int_equal(rp_window_add(w, 1, 255), 0);
  assert_int_equal(rp_window_add(w, 2, 0), 0);
  assert_int_equal(rp_window_add(w, 3, 0.5), -ERANGE);
  assert_true(rp_window_quantile(w, 1) == 255);
  rp_window_free(w);

  /* AUTO: counting only with a grid and a large capacity. */
  w = mkwin(60000, RP_WINDOW_COUNTING_MIN_CAPACITY, RP_WINDOW_AUTO, 10, 0, 100);
  assert_int_equal(rp_window_method(w), RP_WINDOW_COUNTING);
  rp_window_free(w);
  w = mkwin(60000, RP_WINDOW_COUNTING_MIN_CAPACITY - 1, RP_WINDOW_AUTO, 10, 0, 100);
  assert_int_equal(rp_window_method(w), RP_WINDOW_SORTED);
  rp_window_free(w);
  w = mkwin(60000, 100000, RP_WINDOW_AUTO, 0, 0, 0);
  assert_int_equal(rp_window_method(w), RP_WINDOW_SORTED);
  rp_window_free(w);
  /* A grid far finer than the capacity: the tree would be too large. */
  w = mkwin(60000, RP_WINDOW_COUNTING_MIN_CAPACITY, RP_WINDOW_AUTO, 10000, 0, 100);
  assert_int_equal(rp_window_method(w), RP_WINDOW_SORTED);
  assert_int_equal(rp_window_add(w, 1, 0.00005), -ERANGE);
  assert_int_equal(rp_window_add(w, 1, 99.9999), 0);
  rp_window_free(w);

  /* Invalid options. */
  struct rp_window_opts bad[] = {
      {.duration_ms = 0, .capacity = 1},
      {.duration_ms = -5, .capacity = 1},
      {.duration_ms = 1000, .capacity = 0},
      {.duration_ms = RP_WINDOW_MAX_DURATION_MS + 1, .capacity = 1},
      {.duration_ms = 1000, .capacity = RP_WINDOW_MAX_CAPACITY + 1},
      {.duration_ms = 1000, .capacity = 4, .method = RP_WINDOW_COUNTING},
      {.duration_ms = 1000, .capacity = 4, .grid_scale = -1},
      {.duration_ms = 1000, .capacity = 4, .grid_scale = NAN},
      {.duration_ms = 1000, .capacity = 4, .grid_scale = 10, .grid_min = 5, .grid_max = 1},
      {.duration_ms = 1000, .capacity = 4, .grid_scale = 10, .grid_min = 0.05, .grid_max = 1},
      {.duration_ms = 1000, .capacity = 4, .grid_scale = 1, .grid_min = 0, .grid_max = 2e6},
      {.duration_ms = 1000, .capacity = 4, .method = (enum rp_window_method)7},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    w = (struct rp_window *)(void *)&bad; /* must be reset to NULL */
    assert_int_equal(rp_window_new(&w, &bad[i]), -EINVAL);
    assert_null(w);
  }
  rp_window_free(NULL);
}

static void test_merge_known(void **state) {
  (void)state;
  struct rp_window *a = plain(60000, 8), *b = plain(60000, 8);
  for (int i = 1; i <= 3; i++)
    rp_window_add(a, 1000 * i, i);
  rp_window_add(b, 500, 4);
  rp_window_add(b, 9000, 5);
  struct rp_window_summary sa, sb, m;
  rp_window_summary(a, &sa);
  rp_window_summary(b, &sb);
  assert_true(sa.has_slope && sb.has_slope);
  rp_summary_init(&m);
  assert_int_equal(m.count, 0);
  rp_summary_merge(&m, &sa); /* empty dst: a copy */
  assert_memory_equal(&m, &sa, sizeof m);
  rp_summary_merge(&m, &sb);
  assert_int_equal(m.count, 5);
  assert_true(m.sum == 15 && m.mean == 3 && m.min == 1 && m.max == 5);
  assert_true(fabs(m.m2 - 10) < 1e-12);
  assert_true(fabs(m.stddev - sqrt(2)) < 1e-15);
  assert_false(m.has_slope);
  assert_true(isnan(m.slope_per_min));
  assert_int_equal(m.oldest_ts_ms, 500);
  assert_int_equal(m.newest_ts_ms, 9000);
  assert_int_equal(m.span_ms, 8500);
  struct rp_window_summary e, before = m;
  rp_summary_init(&e);
  rp_summary_merge(&m, &e); /* empty src: unchanged */
  assert_memory_equal(&m, &before, sizeof m);
  /* An empty window's summary is the empty summary. */
  struct rp_window *z = plain(1000, 1);
  assert_int_equal(rp_window_summary(z, &e), -ENODATA);
  assert_int_equal(e.count, 0);
  assert_true(isnan(e.mean) && isnan(e.min) && !e.has_slope);
  rp_window_free(a);
  rp_window_free(b);
  rp_window_free(z);
}

/* Large offset, small spread: sums of squares would cancel, m2 does not. */
static void test_merge_random(void **state) {
  (void)state;
  uint64_t seed = 7;
  for (int round = 0; round < 200; round++) {
    int k = 1 + (int)below(&seed, 6);
    struct rp_window_summary m;
    rp_summary_init(&m);
    double all[6 * 40];
    size_t n = 0;
    double base = round % 2 ? 1e9 : 0;
    for (int j = 0; j < k; j++) {
      struct rp_window *w = plain(1000000, 40);
      int cnt = (int)below(&seed, 41); /* may be empty */
      for (int i = 0; i < cnt; i++) {
        double v = base + (unit(&seed) - 0.5) * 10;
        assert_int_equal(rp_window_add(w, i, v), 0);
        all[n++] = v;
      }
      struct rp_window_summary s;
      rp_window_summary(w, &s);
      rp_summary_merge(&m, &s);
      rp_window_free(w);
    }
    assert_int_equal(m.count, n);
    if (n == 0)
      continue;
    long double sum = 0, m2 = 0;
    double mn = all[0], mx = all[0];
    for (size_t i = 0; i < n; i++) {
      sum += all[i];
      mn = fmin(mn, all[i]);
      mx = fmax(mx, all[i]);
    }
    long double mean = sum / n;
    for (size_t i = 0; i < n; i++)
      m2 += (all[i] - mean) * (all[i] - mean);
    assert_true(m.min == mn && m.max == mx);
    assert_true(fabsl(m.mean - mean) <= 1e-13L * fabsl(mean) + 1e-13L);
    /* Each mean is rounded to a double (ulp ~1e-7 at 1e9); Chan's formula
     * carries that rounding into m2 through delta^2 n_a n_b / n. */
    long double mtol = 1e-9L * m2 + 40.0L * (long double)n * DBL_EPSILON * fabsl(mean) + 1e-12L;
    assert_true(fabsl(m.m2 - m2) <= mtol);
    assert_true(fabsl(m.sum - sum) <= 1e-12L * fabsl(sum) + 1e-12L);
  }
}

static void test_series(void **state) {
  (void)state;
  struct rp_stats_series_opts o = {.nwindows = 3};
  o.window[0] = (struct rp_window_opts){.duration_ms = 60000, .capacity = 60};
  o.window[1] = (struct rp_window_opts){.duration_ms = 300000, .capacity = 300};
  o.window[2] = (struct rp_window_opts){.duration_ms = 900000, .capacity = 900};
  struct rp_stats_series *s = NULL;
  assert_int_equal(rp_stats_series_new(&s, &o), 0);
  assert_int_equal(rp_stats_series_nwindows(s), 3);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(rp_stats_series_add(s, 1000 * i, i % 7), 0);
  assert_int_equal(rp_window_count(rp_stats_series_window(s, 0)), 60);
  assert_int_equal(rp_window_count(rp_stats_series_window(s, 1)), 300);
  assert_int_equal(rp_window_count(rp_stats_series_window(s, 2)), 900);
  assert_null(rp_stats_series_window(s, 3));
  /* Too old for the 60 s window, fine for the others: held (0). */
  assert_int_equal(rp_stats_series_add(s, 999000 - 100000, 1), 0);
  struct rp_window_counters c;
  rp_window_counters(rp_stats_series_window(s, 0), &c);
  assert_int_equal(c.too_old, 1);
  /* Too old for all of them. */
  assert_int_equal(rp_stats_series_add(s, 0, 1), -ESTALE);
  assert_int_equal(rp_stats_series_add(s, 999000, NAN), -EDOM);
  rp_stats_series_free(s);
  rp_stats_series_free(NULL);

  o.window[1].capacity = 0; /* the second window fails: nothing leaks */
  s = (struct rp_stats_series *)(void *)&o;
  assert_int_equal(rp_stats_series_new(&s, &o), -EINVAL);
  assert_null(s);
  o.nwindows = 0;
  assert_int_equal(rp_stats_series_new(&s, &o), -EINVAL);
  o.nwindows = RP_STATS_SERIES_MAX_WINDOWS + 1;
  assert_int_equal(rp_stats_series_new(&s, &o), -EINVAL);
}

/* ---- randomized property tests ------------------------------------------ */

enum vmode {
  V_GRID,
  V_CONST,
  V_FEWINT,
  V_HUGE,
  V_HUGE_SPREAD,
  V_TINY,
  V_MIXED,
  V_STEPS,
  V_TREND,
  V_NMODES
};

struct stream {
  uint64_t seed, st;
  int64_t dur;
  size_t cap;
  enum vmode mode;
  int64_t cur;  /* newest generated timestamp */
  double level; /* random walk state */
  double c;
};

static int64_t next_ts(struct stream *s) {
  uint64_t r = below(&s->st, 100);
  int64_t d = s->dur;
  int64_t stepmax = d / (int64_t)s->cap * 2 + 1;
  if (r < 55) {
    s->cur += 1 + (int64_t)below(&s->st, (uint64_t)stepmax);
  } else if (r < 65) {
    /* duplicate timestamp */
  } else if (r < 82) {
    return s->cur - (int64_t)below(&s->st, (uint64_t)d + 1); /* late, maybe too old */
  } else if (r < 87) {
    return s->cur - d - (int64_t)below(&s->st, (uint64_t)d + 1); /* too old */
  } else if (r < 92) {
    s->cur += d + (int64_t)below(&s->st, (uint64_t)d + 1); /* gap past the window */
  } else {
    s->cur += 1;
  }
  return s->cur;
}

static double next_v(struct stream *s, int64_t ts) {
  uint64_t r = below(&s->st, 1000);
  if (r < 15)
    return NAN;
  if (r < 20)
    return r & 1 ? INFINITY : -INFINITY;
  bool grid = s->mode == V_GRID || s->mode == V_FEWINT;
  if (grid && r < 35)
    return r & 1 ? 23.75 : 1000.0; /* off the grid or out of its range */
  switch (s->mode) {
  case V_GRID: /* 20..45 °C at 0.1, random walk */
    s->level += (double)((int)below(&s->st, 7) - 3);
    if (s->level < 200 || s->level > 450)
      s->level = 325;
    return s->level / 10.0;
  case V_CONST: return s->c;
  case V_FEWINT: return (double)below(&s->st, 4);
  case V_HUGE: return 1e12 + unit(&s->st) * 1e3;
  case V_HUGE_SPREAD: return (unit(&s->st) - 0.5) * 1e140;
  case V_TINY: return (unit(&s->st) - 0.5) * 1e-100;
  case V_MIXED: return r < 40 ? -0.0 : (unit(&s->st) - 0.5) * 2e3;
  case V_STEPS:
    if (r < 60)
      s->level += (unit(&s->st) - 0.5) * 2e6;
    return s->level + unit(&s->st);
  case V_TREND: return 0.02 * (double)(ts % 100000000) / 1000.0 + unit(&s->st) * 0.1;
  default: return 0;
  }
}

static void run_stream(uint64_t seed, int steps) {
  struct stream s = {.seed = seed, .st = seed * 0x1234567ull + 1};
  static const int64_t durs[] = {1, 5, 1000, 60000, 300000};
  static const size_t caps[] = {1, 2, 3, 7, 16, 64, 300};
  s.dur = below(&s.st, 6) == 5 ? 1 + (int64_t)below(&s.st, 100000) : durs[below(&s.st, 5)];
  s.cap = below(&s.st, 8) == 7 ? 1 + below(&s.st, 200) : caps[below(&s.st, 7)];
  s.mode = (enum vmode)below(&s.st, V_NMODES);
  s.c = (unit(&s.st) - 0.5) * 1e6;
  s.level = s.mode == V_GRID ? 325 : 0;
  /* Far enough from the int64 limits for 20000 steps of at most 2 D. */
  static const int64_t bases[] = {0, -5000000000000, 1763800000000, INT64_MAX - 100000000000,
                                  INT64_MIN + 1000000};
  s.cur = bases[below(&s.st, 5)];
  /* A third of the streams with all the room at once, the others growing
   * from 1 or from a random start. */
  uint64_t room = below(&s.st, 3);
  first_room = room == 0 ? 0 : room == 1 ? 1 : 1 + below(&s.st, s.cap);

  bool grid = s.mode == V_GRID || s.mode == V_FEWINT;
  double scale = s.mode == V_GRID ? 10 : 1;
  double gmin = s.mode == V_GRID ? 15 : 0, gmax = s.mode == V_GRID ? 50 : 3;

  struct rp_window *wp = plain(s.dur, s.cap), *wc = NULL, *ws = NULL;
  static struct ref rp, rg; /* large: keep off the stack */
  ref_init(&rp, s.dur, s.cap, 0, 0, 0);
  if (grid) {
    wc = mkwin(s.dur, s.cap, RP_WINDOW_COUNTING, scale, gmin, gmax);
    ws = mkwin(s.dur, s.cap, RP_WINDOW_SORTED, scale, gmin, gmax);
    ref_init(&rg, s.dur, s.cap, scale, gmin, gmax);
  }
  for (int i = 0; i < steps; i++) {
    int64_t ts = next_ts(&s);
    double v = next_v(&s, ts);
    int want = ref_add(&rp, ts, v), got = rp_window_add(wp, ts, v);
    if (got != want)
      fail_msg("sorted seed %llu step %d: add(%lld, %g) = %d, expected %d",
               (unsigned long long)seed, i, (long long)ts, v, got, want);
    check_window(wp, &rp, "sorted", seed, i);
    if (grid) {
      want = ref_add(&rg, ts, v);
      got = rp_window_add(wc, ts, v);
      if (got != want)
        fail_msg("counting seed %llu step %d: add = %d, expected %d", (unsigned long long)seed, i,
                 got, want);
      assert_int_equal(rp_window_add(ws, ts, v), want);
      check_window(wc, &rg, "counting", seed, i);
      check_window(ws, &rg, "sorted+grid", seed, i);
    }
  }
  rp_window_free(wp);
  rp_window_free(wc);
  rp_window_free(ws);
  first_room = 0;
}

static void test_random_streams(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 3000; seed++)
    run_stream(seed, 150);
  print_message("worst error / tolerance: mean %.3g, variance %.3g, slope %.3g\n", worst_mean,
                worst_var, worst_slope);
}

/* Long runs: rounding must not drift over many re-centrings. */
static void test_long_streams(void **state) {
  (void)state;
  for (uint64_t seed = 10001; seed <= 10006; seed++)
    run_stream(seed, 20000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quantile_known),   cmocka_unit_test(test_slope_known),
      cmocka_unit_test(test_window_boundary),  cmocka_unit_test(test_capacity_and_rejects),
      cmocka_unit_test(test_grid_and_methods), cmocka_unit_test(test_merge_known),
      cmocka_unit_test(test_merge_random),     cmocka_unit_test(test_series),
      cmocka_unit_test(test_random_streams),   cmocka_unit_test(test_long_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
