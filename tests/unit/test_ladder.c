/* The escalation ladder and the thermal SLOs (issue 23) against a real
 * store, gate and ledger: a breach climbs the policy's steps in order (one
 * SET per step, a loop-wide step on every rack of the loop and no other),
 * holds them while it is over for less than clear_after, then clears them
 * all; a policy without a ladder keeps the fixed mapping; ladder and slo
 * sections that do not validate are refused with file:line and key; the
 * SLO figures (time above, burn rate, recovery) from a known sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_test_util.h"
#include "aggregator.h"
#include "ladder.h"
#include "ledger.h"
#include "policy.h"
#include "rackpulse/clock.h"
#include "slo.h"

static const char ladder_yaml[] = "version: ladder-1\n"
                                  "defaults:\n"
                                  "  max_staleness: 120s\n"
                                  "  clock_skew: 120s\n"
                                  "  supply_temp: {max: 40}\n"
                                  "ladder:\n"
                                  "  supply_temp:\n"
                                  "    clear_after: 3s\n"
                                  "    min_hold: 1s\n"
                                  "    steps:\n"
                                  "      - {flag: scale-back, after: 0s}\n"
                                  "      - {flag: pause-admissions, after: 2s}\n"
                                  "      - {flag: evacuate, after: 4s, target: loop}\n"
                                  "racks:\n"
                                  "  - {id: a1, loop: l1, row: r1}\n"
                                  "  - {id: a2, loop: l1, row: r1}\n"
                                  "  - {id: b1, loop: l2, row: r1}\n";

/* Flag changes as the observer saw them, "SET a1 scale-back" ... */
struct seen {
  char line[32][48];
  size_t n;
};

static void on_flag(void *ctx, const json_t *f, bool set, int64_t now) {
  (void)now;
  struct seen *s = ctx;
  if (s->n < 32)
    snprintf(s->line[s->n++], sizeof(s->line[0]), "%s %s %s", set ? "SET" : "CLEARED",
             json_string_value(json_object_get(f, "rack")),
             json_string_value(json_object_get(f, "flag")));
}

/* A frame of `rack` at ts with its CDU supply temperature, applied as the
 * consumer applies one. */
static void supply(struct agg_fx *x, const char *rack, int64_t ts, double celsius) {
  rp_frame *f = agg_supply_frame(rack, (uint64_t)x->offset + 1, ts, celsius);
  assert_int_equal(agg_fx_apply_decoded(x, f), 0);
}

/* One second of the upkeep: every rack reports, then one pass. */
static void second(struct agg_fx *x, int64_t t0, int t, double a1) {
  int64_t now = t0 + t * 1000;
  supply(x, "a1", now, a1);
  supply(x, "a2", now, 30);
  supply(x, "b1", now, 30);
  rp_flags_reconcile(&x->a, now);
}

static size_t nflags(struct agg_fx *x) {
  json_t *all = rp_ledger_flag_list(x->a.ledger, NULL);
  size_t n = json_array_size(all);
  json_decref(all);
  return n;
}

static void test_ladder_climbs_holds_and_clears(void **state) {
  (void)state;
  struct agg_fx x = {0};
  assert_int_equal(agg_fx_open(&x, "ladder", ladder_yaml), 0);
  x.a.cfg.flags.automatic = true;
  assert_int_equal(rp_ladder_new(&x.a.ladder), 0);
  struct seen seen = {0};
  rp_ladder_set_observer(x.a.ladder, on_flag, &seen);
  int64_t t0 = rp_now_ms();
  second(&x, t0, 0, 30);
  assert_int_equal(seen.n, 0);
  for (int t = 1; t <= 8; t++)
    second(&x, t0, t, 45); /* a breach of 7 s: all three steps */
  const char *climb[] = {"SET a1 scale-back", "SET a1 pause-admissions", "SET a1 evacuate",
                         "SET a2 evacuate"};
  assert_int_equal(seen.n, 4);
  for (size_t i = 0; i < 4; i++)
    assert_string_equal(seen.line[i], climb[i]);
  assert_int_equal(nflags(&x), 4); /* b1, in loop l2, has none */
  /* Back in band at t=9: held for clear_after (3 s), not cleared at once. */
  second(&x, t0, 9, 30);
  second(&x, t0, 10, 30);
  second(&x, t0, 11, 30);
  assert_int_equal(seen.n, 4);
  assert_int_equal(nflags(&x), 4);
  second(&x, t0, 12, 30);
  assert_int_equal(seen.n, 8);
  for (size_t i = 4; i < 8; i++)
    assert_non_null(strstr(seen.line[i], "CLEARED"));
  assert_int_equal(nflags(&x), 0);
  /* A new breach starts the ladder again from its first step. */
  second(&x, t0, 13, 45);
  assert_int_equal(seen.n, 9);
  assert_string_equal(seen.line[8], "SET a1 scale-back");
  rp_ladder_free(x.a.ladder);
  assert_int_equal(agg_fx_close(&x), 0);
}

static void test_no_ladder_keeps_fixed_mapping(void **state) {
  (void)state;
  struct agg_fx x = {0};
  assert_int_equal(agg_fx_open(&x, "ladder0",
                               "version: plain\n"
                               "defaults: {max_staleness: 120s, clock_skew: 120s, "
                               "supply_temp: {max: 40}}\n"),
                   0);
  x.a.cfg.flags.automatic = true;
  assert_int_equal(rp_ladder_new(&x.a.ladder), 0);
  struct seen seen = {0};
  rp_ladder_set_observer(x.a.ladder, on_flag, &seen);
  int64_t t0 = rp_now_ms();
  second(&x, t0, 0, 45);
  assert_int_equal(seen.n, 1);
  assert_string_equal(seen.line[0], "SET a1 pause-admissions");
  second(&x, t0, 1, 30);
  assert_int_equal(seen.n, 2);
  assert_string_equal(seen.line[1], "CLEARED a1 pause-admissions");
  rp_ladder_free(x.a.ladder);
  assert_int_equal(agg_fx_close(&x), 0);
}

static void expect_refused(const char *yaml, const char *needle) {
  char path[] = "/tmp/rp_test_ladder_bad_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(yaml, f);
  fclose(f);
  struct rp_policy *p = NULL;
  char err[512] = "";
  assert_int_not_equal(rp_policy_load(path, &p, err, sizeof(err)), 0);
  remove(path);
  if (strstr(err, needle) == NULL)
    fail_msg("error '%s' does not say '%s'", err, needle);
}

static void test_bad_sections_refused(void **state) {
  (void)state;
  expect_refused("version: x\nladder:\n  supply_temp:\n    steps: [{flag: panic}]\n",
                 ":4: ladder.supply_temp.steps[0]: flag 'panic'");
  expect_refused("version: x\nladder:\n  supply_temp:\n    steps:\n"
                 "      - {flag: evacuate, after: 5m}\n      - {flag: scale-back, after: 1m}\n",
                 "not be shorter");
  expect_refused("version: x\nladder:\n  nosuch: {steps: [{flag: evacuate}]}\n", "nosuch");
  expect_refused("version: x\nladder:\n  flow: {steps: [{flag: evacuate, target: site}]}\n",
                 "target 'site'");
  expect_refused("version: x\nslo:\n  - {name: s, check: supply_temp, period: 1h, budget: 5m}\n",
                 "above");
  expect_refused("version: x\nslo:\n  - {name: s, check: supply_temp, above: 40, period: 1m, "
                 "budget: 5m}\n",
                 "fit in period");
}

/* A decision with one supply_temp answer. */
static json_t *decision(double v) {
  return json_pack("{s:s, s:[{s:s, s:f}]}", "class", "gold", "checks", "name", "supply_temp",
                   "observed", v);
}

static double field(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void test_slo_figures(void **state) {
  (void)state;
  struct rp_slo_policy sp = {.n = 1};
  sp.obj[0] = (struct rp_slo_objective){.name = "hot",
                                        .class_name = "gold",
                                        .check = "supply_temp",
                                        .above = 40,
                                        .period_ms = 600000,
                                        .budget_ms = 60000,
                                        .recovery_ms = 5000,
                                        .burn_window_ms = 60000};
  struct rp_slo *s;
  assert_int_equal(rp_slo_new(&s), 0);
  rp_slo_configure(s, &sp);
  int64_t t0 = 1700000000000;
  /* 100 s at 30, a burst of 8 s at 45 (slower than the 5 s recovery), 30 again. */
  for (int t = 0; t <= 120; t++) {
    json_t *d = decision(t >= 100 && t < 108 ? 45 : 30);
    rp_slo_observe(s, "a1", d, t0 + t * 1000);
    json_decref(d);
  }
  json_t *j = rp_slo_json(s, t0 + 120000);
  json_t *o = json_array_get(json_object_get(j, "objectives"), 0);
  assert_non_null(o);
  assert_true(fabs(field(o, "time_above_s") - 8) < 0.01);
  assert_true(fabs(field(o, "budget_remaining") - (1 - 8.0 / 60)) < 0.001);
  /* 8 s of the last 60 s, against a budget of 60 s in 600 s: (8/60)/(0.1). */
  assert_true(fabs(field(o, "burn_rate") - (8.0 / 60) / 0.1) < 0.01);
  assert_true(fabs(field(o, "worst_recovery_s") - 8) < 0.01);
  assert_int_equal(json_integer_value(json_object_get(o, "late_recoveries")), 1);
  assert_true(json_is_false(json_object_get(o, "met")));
  json_decref(j);
  /* Another class: not counted. */
  json_t *d = json_pack("{s:s, s:[]}", "class", "silver", "checks");
  rp_slo_observe(s, "b1", d, t0);
  json_decref(d);
  j = rp_slo_json(s, t0 + 120000);
  assert_int_equal(json_array_size(json_object_get(j, "objectives")), 1);
  json_decref(j);
  rp_slo_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ladder_climbs_holds_and_clears),
      cmocka_unit_test(test_no_ladder_keeps_fixed_mapping),
      cmocka_unit_test(test_bad_sections_refused),
      cmocka_unit_test(test_slo_figures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
