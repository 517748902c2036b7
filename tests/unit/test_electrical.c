/* The electrical topology of the gate (aggregator/electrical.c, issue 20)
 * against a real store, gate and ledger: per-feed power with N+N (one feed
 * carries the rack) and without, per-phase and per-branch current against
 * rating x derating (N+N adds both feeds' same phase; new load lands as
 * the rack draws now), row and pool totals,
 * a CDU shared by a loop's racks counted once at loop level, readings that
 * are stale failing closed with the check and the series named, and
 * reservations admitted only within the tightest of these headrooms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg_test_util.h"
#include "gate.h"
#include "policy.h"
#include "ledger.h"
#include "reservations.h"

/* e1: two feeds, N+N, 50 kW a feed, 63 A phases, 32 A branches, 230 V.
 * e2: the same PDUs without redundancy. e3: no feeds. Row row1 (e1, e2)
 * 100 kW x 0.8; pool p1 (all) 150 kW; loop l1 (all) on one CDU of 120 kW. */
static const char policy_yaml[] =
    "version: elec-1\n"
    "defaults:\n"
    "  max_staleness: 60s\n"
    "  supply_temp: {enabled: false}\n"
    "  power: {enabled: true, series: pdu.power, stat: latest, across: sum}\n"
    "  thermal: {enabled: true, series: cdu.heat_removed, stat: latest, across: sum}\n"
    "rows:\n"
    "  row1: {limit_kw: 100, derating: 0.8}\n"
    "pools:\n"
    "  p1: {limit_kw: 150, derating: 1.0}\n"
    "loops:\n"
    "  l1: {cdu_capacity_kw: 120}\n"
    "racks:\n"
    "  - {id: e1, row: row1, pool: p1, loop: l1, breaker_kw: 200, derating: 1.0,\n"
    "     cdu_capacity_kw: 500, feed_a: pdu-a, feed_b: pdu-b, feed_kw: 50, phase_amps: 63,\n"
    "     branch_amps: 32, volts: 230}\n"
    "  - {id: e2, row: row1, pool: p1, loop: l1, breaker_kw: 200, derating: 1.0,\n"
    "     cdu_capacity_kw: 500, feed_a: pdu-a, feed_b: pdu-b, feed_kw: 50, phase_amps: 63,\n"
    "     redundancy: none}\n"
    "  - {id: e3, row: row2, pool: p1, loop: l1, breaker_kw: 200, derating: 1.0,\n"
    "     cdu_capacity_kw: 500}\n";

static int setup(void **state) {
  return agg_fx_setup(state, "elec", policy_yaml, 3600000, 600000, 0.05);
}

/* A rack's two PDUs: inlet power (W) and phase currents (A) per feed, in
 * one frame, and branch currents and the shared CDU's heat in another. */
static void pdus(struct agg_fx *x, const char *rack, int64_t ts, double wa, double wb,
                 const double pa[3], const double pb[3], const double ba[3], const double bb[3]) {
  struct agg_ser s[8] = {{"pdu.power", "W", "pdu-a", "inlet", "1", wa},
                         {"pdu.power", "W", "pdu-b", "inlet", "1", wb}};
  static const char *const lab[3] = {"1", "2", "3"};
  for (int i = 0; i < 3; i++) {
    s[2 + i] = (struct agg_ser){"pdu.phase.current", "A", "pdu-a", "phase", lab[i], pa[i]};
    s[5 + i] = (struct agg_ser){"pdu.phase.current", "A", "pdu-b", "phase", lab[i], pb[i]};
  }
  agg_fx_frame(x, rack, ts, s, 8);
  struct agg_ser t[7];
  for (int i = 0; i < 3; i++) {
    t[i] = (struct agg_ser){"pdu.breaker.current", "A", "pdu-a", "breaker", lab[i], ba[i]};
    t[3 + i] = (struct agg_ser){"pdu.breaker.current", "A", "pdu-b", "breaker", lab[i], bb[i]};
  }
  t[6] = (struct agg_ser){"cdu.heat_removed", "kW", "cdu1", NULL, NULL, 40};
  agg_fx_frame(x, rack, ts, t, 7);
}

static void floor_at(struct agg_fx *x, int64_t ts) {
  pdus(x, "e1", ts, 15000, 15000, (double[]){20, 22, 21}, (double[]){20, 23, 21},
       (double[]){10, 12, 11}, (double[]){10, 13, 11});
  pdus(x, "e2", ts, 10000, 12000, (double[]){14, 15, 16}, (double[]){17, 18, 16},
       (double[]){5, 5, 5}, (double[]){5, 5, 5});
  struct agg_ser s[] = {{"pdu.power", "W", "pdu-x", "inlet", "1", 40000},
                        {"cdu.heat_removed", "kW", "cdu1", NULL, NULL, 40}};
  agg_fx_frame(x, "e3", ts, s, 2);
}

static bool passes(json_t *d, const char *check) {
  return json_is_true(json_object_get(agg_check_of(d, check), "pass"));
}

/* Every term of every topology check on e1 (N+N) and e2 (none). */
static void test_feeds_phases_branches_rows(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  floor_at(x, now);
  json_t *d = agg_gate(x, "e1", 4, NULL, now);
  /* N+N: one feed carries 15 + 15 kW: 50 - 30 = 20 (each feed alone has 35). */
  json_t *c = agg_check_of(d, "feed_power");
  assert_float_equal(agg_num(c, "observed"), 20, 1e-9);
  assert_true(json_is_true(json_object_get(c, "redundant")));
  /* Phases on one feed: 40, 45, 42 A of 63; new load lands as the rack
   * draws now, 45/127 of it on phase 2: 18 A spare x 230 V / (45/127). */
  c = agg_check_of(d, "phase_current");
  assert_string_equal(json_string_value(json_object_get(c, "worst")), "2");
  assert_float_equal(agg_num(c, "worst_a"), 45, 1e-9);
  assert_float_equal(agg_num(c, "worst_share"), 45 / 127.0, 1e-12);
  assert_float_equal(agg_num(c, "observed"), 18 * 230 * 127 / 45 / 1000.0, 1e-9);
  /* Branches 20, 25, 22 A of 32: branch 2 takes 25/67: 7 A x 230 V / (25/67). */
  c = agg_check_of(d, "branch_current");
  assert_float_equal(agg_num(c, "worst_a"), 25, 1e-9);
  assert_float_equal(agg_num(c, "observed"), 4.3148, 1e-9);
  /* Row 1: 80 - (30 + 22) = 28; pool: 150 - (30 + 22 + 40) = 58. */
  assert_float_equal(agg_num(agg_check_of(d, "row_power"), "observed"), 28, 1e-9);
  assert_float_equal(agg_num(agg_check_of(d, "pool_power"), "observed"), 58, 1e-9);
  /* Loop: the one CDU every rack reports counts once: 120 - 40 = 80. */
  c = agg_check_of(d, "loop_thermal");
  assert_float_equal(agg_num(c, "heat_removed_kw"), 40, 1e-9);
  assert_float_equal(agg_num(c, "observed"), 80, 1e-9);
  assert_string_equal(json_string_value(json_object_get(d, "decision")), "allow");
  json_decref(d);

  /* 5 kW: the branch breaker (4.31 kW) is the limit, and is named. */
  d = agg_gate(x, "e1", 5, NULL, now);
  assert_string_equal(json_string_value(json_object_get(d, "decision")), "deny");
  assert_false(passes(d, "branch_current"));
  assert_true(passes(d, "phase_current"));
  assert_true(passes(d, "power_headroom"));
  json_decref(d);

  /* e2 without redundancy: the most loaded feed (12 kW) x 2 feeds: (50 -
   * 12) x 2 = 76; the worse feed's phases 17, 18, 16 A: phase 2 takes 18/51
   * of each feed's half: 45 A x 230 V x 2 feeds / (18/51). */
  d = agg_gate(x, "e2", 1, NULL, now);
  assert_false(json_is_true(json_object_get(agg_check_of(d, "feed_power"), "redundant")));
  assert_float_equal(agg_num(agg_check_of(d, "feed_power"), "observed"), 76, 1e-9);
  assert_float_equal(agg_num(agg_check_of(d, "phase_current"), "observed"),
                     45 * 230 * 2 * 51 / 18 / 1000.0, 1e-9);
  json_decref(d);

  /* e3 has no feeds in the policy: no feed checks, but its pool and loop. */
  d = agg_gate(x, "e3", 1, NULL, now);
  size_t i;
  json_t *chk;
  json_array_foreach(json_object_get(d, "checks"), i, chk) {
    const char *name = json_string_value(json_object_get(chk, "name"));
    assert_true(strcmp(name, "feed_power") != 0 && strcmp(name, "phase_current") != 0);
  }
  assert_float_equal(agg_num(agg_check_of(d, "pool_power"), "observed"), 58, 1e-9);
  json_decref(d);
}

/* A reservation not yet drawn counts at its rack and in its row and pool. */
static void test_reservations_count_in_totals(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  floor_at(x, now);
  json_t *r = json_pack("{s:s, s:s, s:f, s:I, s:I, s:s, s:b, s:s, s:s, s:I, s:[], s:[]}", "id", "R",
                        "rack", "e2", "kw", 10.0, "start_ms", (json_int_t)now, "end_ms",
                        (json_int_t)(now + 3600000), "class", "silver", "preemptible", 0, "owner",
                        "o", "state", "active", "created_ms", (json_int_t)now, "hosts", "outlets");
  assert_int_equal(rp_ledger_res_put(x->a.ledger, r), 0);
  json_decref(r);
  json_t *d = agg_gate(x, "e1", 1, NULL, now);
  assert_float_equal(agg_num(agg_check_of(d, "row_power"), "observed"), 18, 1e-9);
  assert_float_equal(agg_num(agg_check_of(d, "pool_power"), "observed"), 48, 1e-9);
  assert_float_equal(agg_num(agg_check_of(d, "loop_thermal"), "observed"), 70, 1e-9);
  json_decref(d);
  d = agg_gate(x, "e2", 1, NULL, now);
  assert_float_equal(agg_num(agg_check_of(d, "feed_power"), "observed"), 66, 1e-9);
  json_decref(d);
}

/* Feed B's PDU goes silent while feed A reports: every check that needs
 * it fails closed and names the series and the device. A rack of the row without readings fails the row. */
static void test_missing_readings_fail_closed(void **state) {
  struct agg_fx *x = *state;
  int64_t t0 = rp_now_ms();
  floor_at(x, t0);
  int64_t now = t0 + 90000; /* everything is 90 s old; max_staleness is 60 s */
  struct agg_ser s[] = {{"pdu.power", "W", "pdu-a", "inlet", "1", 15000},
                        {"pdu.phase.current", "A", "pdu-a", "phase", "1", 20},
                        {"pdu.phase.current", "A", "pdu-a", "phase", "2", 22},
                        {"pdu.phase.current", "A", "pdu-a", "phase", "3", 21},
                        {"pdu.breaker.current", "A", "pdu-a", "breaker", "1", 10},
                        {"pdu.breaker.current", "A", "pdu-a", "breaker", "2", 12},
                        {"pdu.breaker.current", "A", "pdu-a", "breaker", "3", 11}};
  agg_fx_frame(x, "e1", now, s, 7);
  json_t *d = agg_gate(x, "e1", 1, NULL, now);
  assert_string_equal(json_string_value(json_object_get(d, "decision")), "deny");
  json_t *c = agg_check_of(d, "phase_current");
  assert_false(json_is_true(json_object_get(c, "pass")));
  assert_true(json_is_null(json_object_get(c, "observed")));
  const char *why = json_string_value(json_object_get(c, "reason"));
  if (strstr(why, "@pdu-b: stale") == NULL)
    fail_msg("reason: %s", why);
  assert_non_null(strstr(why, "fails closed"));
  assert_false(passes(d, "feed_power"));
  assert_false(passes(d, "branch_current"));
  why = json_string_value(json_object_get(agg_check_of(d, "row_power"), "reason"));
  assert_non_null(strstr(why, "stale"));
  json_decref(d);
}

static json_t *reserve(struct agg_fx *x, const char *rack_or_pool, bool pool, double kw,
                       int64_t now, int *status) {
  json_t *body = json_pack("{s:s, s:s, s:f, s:I}", pool ? "pool" : "rack", rack_or_pool, "owner",
                           "t", "kw", kw, "end", (json_int_t)(now + 3600000));
  json_t *r = rp_reservation_create(&x->a, body, now, status);
  json_decref(body);
  return r;
}

/* Admission takes the tightest headroom: e1's branch breakers (4.3148 kW). */
static void test_admission_within_topology(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  floor_at(x, now);
  int status;
  json_t *r = reserve(x, "e1", false, 5, now, &status);
  assert_int_equal(status, 409);
  json_decref(r);
  r = reserve(x, "e1", false, 4, now, &status);
  assert_int_equal(status, 201);
  json_decref(r);
  /* 0.3148 kW left on the branches: 0.4 kW does not fit, 0.3 does. */
  r = reserve(x, "e1", false, 0.4, now, &status);
  assert_int_equal(status, 409);
  json_decref(r);
  r = reserve(x, "e1", false, 0.3, now, &status);
  assert_int_equal(status, 201);
  json_decref(r);
}

/* Topology keys that do not make sense are refused with file:line and key. */
static void test_policy_errors(void **state) {
  (void)state;
  static const struct {
    const char *yaml, *want;
  } bad[] = {
      {"version: x\nracks:\n  - {id: a, feed_b: p}\n", ":3: racks[0]: feed_b without feed_a"},
      {"version: x\nracks:\n  - {id: a, feed_a: p, feed_b: p}\n", "the same PDU 'p'"},
      {"version: x\nracks:\n  - {id: a, feed_a: p, redundancy: n+n}\n", "needs feed_a and feed_b"},
      {"version: x\nracks:\n  - {id: a, feed_a: p, redundancy: 2n}\n", "'2n' is not n+n or none"},
      {"version: x\nracks:\n  - {id: a, phase_amps: 63}\n", "need feed_a"},
      {"version: x\nrows: {r: {limit_kw: -1}}\n", "rows.r.limit_kw"},
      {"version: x\ntariff: {periods: [{from: \"25:00\", price: 1}]}\n",
       ":2: tariff.periods[0]: from '25:00' is not HH:MM"},
      {"version: x\ntariff: {periods: [{from: \"12:00\", price: 1}, {from: \"06:00\", price: "
       "1}]}\n",
       "increasing order"},
      {"version: x\ntariff: {currency: EUR}\n", "give flat or periods"},
  };
  char path[] = "/tmp/rp_test_policy_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(bad[i].yaml, f);
    fclose(f);
    struct rp_policy *p = NULL;
    char err[512] = "";
    assert_int_not_equal(rp_policy_load(path, &p, err, sizeof(err)), 0);
    if (strstr(err, bad[i].want) == NULL)
      fail_msg("case %zu: '%s' not in '%s'", i, bad[i].want, err);
  }
  close(fd);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_errors),
      cmocka_unit_test_setup_teardown(test_feeds_phases_branches_rows, setup, agg_fx_teardown),
      cmocka_unit_test_setup_teardown(test_reservations_count_in_totals, setup, agg_fx_teardown),
      cmocka_unit_test_setup_teardown(test_missing_readings_fail_closed, setup, agg_fx_teardown),
      cmocka_unit_test_setup_teardown(test_admission_within_topology, setup, agg_fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
