/* Benchmark of the edge statistics (lib/stats.c): updates per second on one
 * core with p50, p95, p99 and the slope queried after every update, for the
 * sorted-array method, the counting (Fenwick) method and a naive baseline that
 * copies and sorts the window on every query. Prints figures; not a test.
 * Results and the exact command are recorded in BENCHMARKS.md.
 *
 * Workloads: temperatures 20-45 °C at 0.1 °C resolution, one sample a second
 * per series, a 300 s window of 300 samples, values either a random walk of
 * ±0.1 °C steps (realistic) or uniform over the range (worst case for the
 * sorted array's memmove). Scenario 1: one series. Scenario 2: 3 000 series
 * (a rack) updated round-robin, one sample each per second. Scenario 3: one
 * series with growing windows, to place the SORTED/COUNTING crossover. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rackpulse/stats.h"

#define REPEATS 5

static volatile double sink;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 32);
}

/* Values are tenths of a degree, 200..450, pre-generated per series so that
 * every method sees exactly the same stream and the generator is not timed. */
enum dist { WALK, UNIFORM };

static void gen_values(double *out, size_t n, enum dist d) {
  int level = 200 + (int)(rng() % 251);
  for (size_t i = 0; i < n; i++) {
    if (d == WALK) {
      level += (int)(rng() % 3) - 1;
      if (level < 200)
        level = 201;
      if (level > 450)
        level = 449;
    } else {
      level = 200 + (int)(rng() % 251);
    }
    out[i] = level / 10.0;
  }
}

/* ---- the naive baseline: ring, then copy + qsort + direct fit per query --- */

struct naive {
  size_t cap, head, n;
  int64_t *ts;
  double *v, *scratch;
};

static struct naive *naive_new(size_t cap) {
  struct naive *w = calloc(1, sizeof *w);
  w->cap = cap;
  w->ts = calloc(cap, sizeof *w->ts);
  w->v = calloc(cap, sizeof *w->v);
  w->scratch = calloc(cap, sizeof *w->scratch);
  if (!w->ts || !w->v || !w->scratch) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return w;
}

static void naive_free(struct naive *w) {
  free(w->ts);
  free(w->v);
  free(w->scratch);
  free(w);
}

/* In-order samples only, expiry by capacity (the benchmark's timestamps are
 * regular, so the window of 300 s is exactly the last 300 samples). */
static void naive_add(struct naive *w, int64_t ts, double v) {
  size_t i = (w->head + w->n) % w->cap;
  if (w->n == w->cap) {
    w->head = (w->head + 1) % w->cap;
    w->n--;
  }
  w->ts[i] = ts;
  w->v[i] = v;
  w->n++;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double np_quantile(const double *x, size_t n, double q) {
  double h = (double)(n - 1) * q;
  size_t lo = (size_t)h;
  double t = h - (double)lo;
  if (t == 0 || lo + 1 >= n)
    return x[lo];
  double d = x[lo + 1] - x[lo];
  return t >= 0.5 ? x[lo + 1] - d * (1 - t) : x[lo] + d * t;
}

static double naive_query(struct naive *w) {
  size_t n = w->n;
  for (size_t i = 0; i < n; i++)
    w->scratch[i] = w->v[(w->head + i) % w->cap];
  qsort(w->scratch, n, sizeof(double), cmp_double);
  double r = np_quantile(w->scratch, n, 0.5) + np_quantile(w->scratch, n, 0.95) +
             np_quantile(w->scratch, n, 0.99);
  double st = 0, sv = 0;
  int64_t t0 = w->ts[w->head];
  for (size_t i = 0; i < n; i++) {
    size_t j = (w->head + i) % w->cap;
    st += (double)(w->ts[j] - t0);
    sv += w->v[j];
  }
  double tb = st / (double)n, vb = sv / (double)n, sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = (w->head + i) % w->cap;
    double dt = (double)(w->ts[j] - t0) - tb;
    sxx += dt * dt;
    sxy += dt * (w->v[j] - vb);
  }
  return r + (sxx > 0 ? sxy / sxx * 60000.0 : 0);
}

/* ---- library windows ----------------------------------------------------- */

/* Both methods get the same grid (0-100 °C), so both pay the same on-grid
 * check and differ only in their value index. */
static double grid_scale = 10;

static struct rp_window *lib_new(enum rp_window_method m, size_t cap) {
  struct rp_window_opts o = {.duration_ms = (int64_t)cap * 1000,
                             .capacity = cap,
                             .method = m,
                             .grid_scale = grid_scale,
                             .grid_min = 0,
                             .grid_max = 100};
  struct rp_window *w;
  int rc = rp_window_new(&w, &o);
  if (rc < 0) {
    fprintf(stderr, "rp_window_new: %s\n", strerror(-rc));
    exit(1);
  }
  return w;
}

static inline double lib_query(const struct rp_window *w) {
  double s = 0;
  rp_window_slope(w, &s);
  return rp_window_quantile(w, 0.5) + rp_window_quantile(w, 0.95) + rp_window_quantile(w, 0.99) + s;
}

/* ---- runs ---------------------------------------------------------------- */

enum meth { M_SORTED, M_COUNTING, M_NAIVE, M_COUNT };
static const char *meth_name[] = {"sorted", "counting", "naive"};

/* nseries series, each fed `warm` untimed samples then `ticks` timed ones
 * round-robin (one per series per second), querying after every update.
 * vals holds nseries * (warm + ticks) values, series-major. Returns ns per
 * update, the median of REPEATS runs. */
static double run(enum meth m, size_t nseries, size_t cap, size_t warm, size_t ticks,
                  const double *vals) {
  double best[REPEATS];
  size_t per = warm + ticks;
  for (int r = 0; r < REPEATS; r++) {
    struct rp_window **lw = NULL;
    struct naive **nw = NULL;
    if (m == M_NAIVE)
      nw = calloc(nseries, sizeof *nw);
    else
      lw = calloc(nseries, sizeof *lw);
    for (size_t s = 0; s < nseries; s++) {
      if (m == M_NAIVE)
        nw[s] = naive_new(cap);
      else
        lw[s] = lib_new(m == M_SORTED ? RP_WINDOW_SORTED : RP_WINDOW_COUNTING, cap);
    }
    for (size_t t = 0; t < warm; t++)
      for (size_t s = 0; s < nseries; s++) {
        int64_t ts = (int64_t)t * 1000;
        if (m == M_NAIVE)
          naive_add(nw[s], ts, vals[s * per + t]);
        else
          rp_window_add(lw[s], ts, vals[s * per + t]);
      }
    double acc = 0, t0 = now_s();
    for (size_t t = warm; t < per; t++) {
      int64_t ts = (int64_t)t * 1000;
      for (size_t s = 0; s < nseries; s++) {
        double v = vals[s * per + t];
        if (m == M_NAIVE) {
          naive_add(nw[s], ts, v);
          acc += naive_query(nw[s]);
        } else {
          rp_window_add(lw[s], ts, v);
          acc += lib_query(lw[s]);
        }
      }
    }
    double el = now_s() - t0;
    sink = acc;
    best[r] = el * 1e9 / (double)(nseries * ticks);
    for (size_t s = 0; s < nseries; s++) {
      if (m == M_NAIVE)
        naive_free(nw[s]);
      else
        rp_window_free(lw[s]);
    }
    free(nw);
    free(lw);
  }
  for (int i = 1; i < REPEATS; i++) /* insertion sort: median */
    for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
      double x = best[j];
      best[j] = best[j - 1];
      best[j - 1] = x;
    }
  return best[REPEATS / 2];
}

static double *make_vals(size_t nseries, size_t per, enum dist d) {
  double *v = malloc(nseries * per * sizeof *v);
  if (v == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (size_t s = 0; s < nseries; s++)
    gen_values(v + s * per, per, d);
  return v;
}

static void scenario(const char *title, size_t nseries, size_t cap, size_t ticks_fast,
                     size_t ticks_naive, enum dist d) {
  double ns[M_COUNT];
  for (int m = 0; m < M_COUNT; m++) {
    size_t ticks = m == M_NAIVE ? ticks_naive : ticks_fast;
    double *v = make_vals(nseries, cap + ticks, d);
    ns[m] = run((enum meth)m, nseries, cap, cap, ticks, v);
    free(v);
  }
  printf("%s\n", title);
  for (int m = 0; m < M_COUNT; m++)
    printf("  %-9s %9.1f ns/update %12.0f updates/s   naive/this %7.1fx\n", meth_name[m], ns[m],
           1e9 / ns[m], ns[M_NAIVE] / ns[m]);
}

int main(void) {
  printf("bench_stats: add + p50/p95/p99 + slope after every update, one core,\n"
         "median of %d runs; values 20-45 degC at 0.1, 1 s timestamps\n\n",
         REPEATS);
  scenario("1 series x 300-sample window, random walk", 1, 300, 2000000, 20000, WALK);
  scenario("1 series x 300-sample window, uniform values", 1, 300, 2000000, 20000, UNIFORM);
  scenario("3000 series x 300 samples round-robin, random walk", 3000, 300, 200, 4, WALK);
  scenario("3000 series x 300 samples round-robin, uniform values", 3000, 300, 200, 4, UNIFORM);

  printf("\nSORTED vs COUNTING by window size (1 series, uniform values; ns/update;\n"
         "counting on a 0.1 grid of 1 001 bins and on a 0.001 grid of 100 001):\n");
  static const size_t caps[] = {60, 300, 900, 1800, 3600, 9000, 36000};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    double *v = make_vals(1, caps[i] + 500000, UNIFORM);
    grid_scale = 10;
    double s = run(M_SORTED, 1, caps[i], caps[i], 500000, v);
    double c = run(M_COUNTING, 1, caps[i], caps[i], 500000, v);
    grid_scale = 1000;
    double f = run(M_COUNTING, 1, caps[i], caps[i], 500000, v);
    grid_scale = 10;
    free(v);
    printf("  capacity %6zu: sorted %7.1f  counting %7.1f  counting-fine %7.1f"
           "  (sorted/counting %.2f)\n",
           caps[i], s, c, f, s / c);
  }
  return 0;
}
