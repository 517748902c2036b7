/* Unit tests for the agent's edge state (agent/edge.c) and its clocks:
 * windows and derived-input freshness run on the monotonic clock, and the
 * window statistics carry the Unix time of their newest sample
 * (WindowStats.newest_ms), so that a dead device's statistics expire at the
 * aggregator however the wall clock steps. Times are given explicitly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "collector.h"
#include "edge.h"
#include "series.h"

#define MONO0 5000000LL       /* an arbitrary monotonic epoch */
#define WALL0 1800000000000LL /* Unix ms */

struct fx {
  struct rp_series_table t;
  struct rp_edge *e;
  uint32_t supply, ret;
};

static int setup(void **state) {
  static struct fx x;
  memset(&x, 0, sizeof(x));
  struct rp_edge_config cfg = {.windows_ms = {60000},
                               .nwindows = 1,
                               .npatterns = 1,
                               .nderived = 1,
                               .stats_every = 10,
                               .stats_tolerance = 0.01};
  strcpy(cfg.patterns[0], "cdu.*_temp");
  struct rp_derived *d = &cfg.derived[0];
  strcpy(d->name, "cdu.delta_t");
  d->type = RP_DERIVED_DELTA_T;
  strcpy(d->input[0], "cdu.return_temp");
  strcpy(d->input[1], "cdu.supply_temp");
  d->ninputs = 2;
  d->input_id[0] = d->input_id[1] = -1;
  assert_int_equal(rp_series_table_init(&x.t, 64), 0);
  assert_int_equal(rp_edge_new(&x.e, &cfg, 64, 1000), 0);
  struct rp_reading s = {.name = "cdu.supply_temp", .unit = "Cel", .decimals = 1};
  struct rp_reading r = {.name = "cdu.return_temp", .unit = "Cel", .decimals = 1};
  assert_int_equal(rp_series_lookup(&x.t, "cdu1", &s, &x.supply), 0);
  assert_int_equal(rp_series_lookup(&x.t, "cdu1", &r, &x.ret), 0);
  *state = &x;
  return 0;
}

static int teardown(void **state) {
  struct fx *x = *state;
  rp_edge_free(x->e);
  rp_series_table_free(&x->t);
  return 0;
}

/* newest_ms is the wall time of the newest sample: the frame's wall time
 * minus the sample's age on the monotonic clock. */
static void test_newest_ms(void **state) {
  struct fx *x = *state;
  for (int i = 0; i < 5; i++)
    rp_edge_observe(x->e, &x->t.entries[x->supply], MONO0 + 1000 * i, 30.0 + i);
  Rackpulse__V1__WindowStats **ws;
  size_t n = rp_edge_window_stats(x->e, WALL0, MONO0 + 4000, &ws);
  assert_int_equal(n, 1);
  assert_int_equal(ws[0]->newest_ms, WALL0);
  assert_int_equal(ws[0]->count, 5);
  /* The device dies: nothing new and nothing moved, so the statistics are
   * not sent again (stats.every counts frames with new samples; the
   * aggregator keeps the last ones, stale by their newest sample). */
  n = rp_edge_window_stats(x->e, WALL0 + 20000 - 30000, MONO0 + 24000, &ws);
  assert_int_equal(n, 0);
  /* One more sample that moves the mean: sent at once, its newest sample
   * on the monotonic clock, whatever the wall clock says (here it stepped
   * back 30 s). */
  rp_edge_observe(x->e, &x->t.entries[x->supply], MONO0 + 24000, 60.0);
  n = rp_edge_window_stats(x->e, WALL0 + 20000 - 30000 + 1000, MONO0 + 25000, &ws);
  assert_int_equal(n, 1);
  assert_int_equal(ws[0]->newest_ms, WALL0 + 20000 - 30000); /* a second before the frame */
  assert_int_equal(ws[0]->count, 6);
  assert_true(ws[0]->scaled && ws[0]->max_x == 600); /* decimals 1 */
}

/* A derived input is stale after two intervals on the monotonic clock. */
static void test_derived_inputs_use_the_monotonic_clock(void **state) {
  struct fx *x = *state;
  rp_edge_observe(x->e, &x->t.entries[x->supply], MONO0, 30.0);
  rp_edge_observe(x->e, &x->t.entries[x->ret], MONO0, 40.0);
  struct rp_derived_value dv[1];
  assert_int_equal(rp_edge_derive(x->e, &x->t, MONO0 + 1500, dv, 1), 1);
  assert_true(dv[0].ok);
  assert_true(fabs(dv[0].value - 10.0) < 1e-9);
  assert_int_equal(rp_edge_derive(x->e, &x->t, MONO0 + 2500, dv, 1), 1);
  assert_false(dv[0].ok);
  assert_non_null(strstr(dv[0].detail, "stale (2.5 s old)"));
  /* The next samples, taken later on the monotonic clock, always replace
   * the latest values (a wall clock stepped back would have frozen them). */
  rp_edge_observe(x->e, &x->t.entries[x->supply], MONO0 + 3000, 31.0);
  rp_edge_observe(x->e, &x->t.entries[x->ret], MONO0 + 3000, 43.0);
  assert_int_equal(rp_edge_derive(x->e, &x->t, MONO0 + 3100, dv, 1), 1);
  assert_true(dv[0].ok);
  assert_true(fabs(dv[0].value - 12.0) < 1e-9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_newest_ms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_derived_inputs_use_the_monotonic_clock, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
