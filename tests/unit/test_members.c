/* Unit tests for combining a gate input's members (aggregator/members.c):
 * unit normalisation, freshness by frame and receive time, clock skew, and
 * max/min/sum where one missing, stale or failing member fails the input
 * with a reason naming the device and series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "members.h"

#define NOW 1800000000000LL

static struct rp_members sum_of(const char *series) {
  return (struct rp_members){
      .across = RP_ACROSS_SUM, .now_ms = NOW, .max_age_ms = 10000, .series = series};
}

static void test_units(void **state) {
  (void)state;
  double v;
  assert_string_equal(rp_unit_normalize("W", 22800, &v), "kW");
  assert_true(fabs(v - 22.8) < 1e-9);
  assert_string_equal(rp_unit_normalize("kW", 21.2, &v), "kW");
  assert_true(v == 21.2);
  assert_string_equal(rp_unit_normalize("MW", 0.5, &v), "kW");
  assert_true(v == 500);
  /* K is a difference (the agent's cdu.delta_t): never shifted to Cel, or
   * a ΔT of 11.5 K would read -261.65. */
  assert_string_equal(rp_unit_normalize("K", 11.5, &v), "K");
  assert_true(v == 11.5);
  assert_string_equal(rp_unit_normalize("Cel", 30.0, &v), "Cel");
  assert_true(v == 30.0);
  assert_string_equal(rp_unit_normalize("L/min", 80, &v), "L/min");
  assert_true(v == 80);
}

static void test_sum_normalises_each_member(void **state) {
  (void)state;
  struct rp_members m = sum_of("pdu.power");
  rp_members_add(&m, "pdu.power@pdu-a", 0, "", 22800, "W", NOW - 1000, NOW - 900);
  rp_members_add(&m, "pdu.power@pdu-b", 0, "", 21.2, "kW", NOW - 2000, NOW - 1900);
  assert_true(rp_members_ok(&m));
  assert_true(fabs(m.v - 44.0) < 1e-9);
  assert_string_equal(m.unit, "kW");
  assert_int_equal(m.n, 2);
  assert_int_equal(m.ts_ms, NOW - 1000);
}

static void test_max_and_min(void **state) {
  (void)state;
  struct rp_members m = sum_of("cdu.supply_temp");
  m.across = RP_ACROSS_MAX;
  rp_members_add(&m, "cdu.supply_temp@cdu1", 0, "", 30.0, "Cel", NOW, NOW);
  rp_members_add(&m, "cdu.supply_temp@cdu2", 0, "", 32.0, "Cel", NOW, NOW);
  assert_true(rp_members_ok(&m));
  assert_true(fabs(m.v - 32.0) < 1e-9);
  /* An absolute temperature and a difference (K) do not combine. */
  m = sum_of("cdu.supply_temp");
  m.across = RP_ACROSS_MAX;
  rp_members_add(&m, "cdu.supply_temp@cdu1", 0, "", 30.0, "Cel", NOW, NOW);
  rp_members_add(&m, "cdu.supply_temp@cdu2", 0, "", 305.15, "K", NOW, NOW);
  assert_false(rp_members_ok(&m));
  assert_non_null(strstr(m.why, "cdu2"));
  m = sum_of("cdu.flow");
  m.across = RP_ACROSS_MIN;
  rp_members_add(&m, "cdu.flow@cdu1", 0, "", 80, "L/min", NOW, NOW);
  rp_members_add(&m, "cdu.flow@cdu2", 0, "", 70, "L/min", NOW, NOW);
  assert_true(rp_members_ok(&m));
  assert_true(m.v == 70);
}

/* A dead PDU never vanishes from the sum: the input fails, naming it. */
static void test_stale_member_fails_the_sum(void **state) {
  (void)state;
  struct rp_members m = sum_of("pdu.power");
  rp_members_add(&m, "pdu.power@pdu-a", 0, "", 22.8, "kW", NOW - 1000, NOW - 1000);
  rp_members_add(&m, "pdu.power@pdu-b", 0, "", 21.2, "kW", NOW - 16000, NOW - 16000);
  assert_false(rp_members_ok(&m));
  assert_non_null(strstr(m.why, "pdu.power of device pdu-b"));
  assert_non_null(strstr(m.why, "stale"));
  /* The order of the members does not matter. */
  m = sum_of("pdu.power");
  rp_members_add(&m, "pdu.power@pdu-b", 0, "", 21.2, "kW", NOW - 16000, NOW - 16000);
  rp_members_add(&m, "pdu.power@pdu-a", 0, "", 22.8, "kW", NOW - 1000, NOW - 1000);
  assert_false(rp_members_ok(&m));
  assert_non_null(strstr(m.why, "pdu-b"));
}

static void test_error_and_absent_members_fail(void **state) {
  (void)state;
  struct rp_members m = sum_of("cdu.supply_temp");
  m.across = RP_ACROSS_MAX;
  rp_members_add(&m, "cdu.supply_temp@cdu1", 0, "", 30, "Cel", NOW, NOW);
  rp_members_add(&m, "cdu.supply_temp@cdu2", 3, "exception 2 at 40001", 0, "Cel", NOW, NOW);
  assert_false(rp_members_ok(&m));
  assert_non_null(strstr(m.why, "cdu.supply_temp of device cdu2: in error: exception 2"));
  m = sum_of("gpu.temp");
  rp_members_add(&m, "gpu.temp{gpu=3}@bmc1", 0, "", 60, "Cel", NOW, NOW);
  rp_members_fail(&m, "gpu.temp{gpu=4}@bmc1|300", "no p95 over the 300 s window reported");
  assert_false(rp_members_ok(&m));
  assert_string_equal(m.why,
                      "gpu.temp{gpu=4} of device bmc1: no p95 over the 300 s window reported");
  m = sum_of("pdu.power");
  assert_false(rp_members_ok(&m));
  assert_string_equal(m.why, "no pdu.power reported");
}

static void test_mixed_dimensions_fail(void **state) {
  (void)state;
  struct rp_members m = sum_of("pdu.power");
  rp_members_add(&m, "pdu.power@pdu-a", 0, "", 22.8, "kW", NOW, NOW);
  rp_members_add(&m, "pdu.power@pdu-b", 0, "", 100, "A", NOW, NOW);
  assert_false(rp_members_ok(&m));
  assert_non_null(strstr(m.why, "pdu-b"));
  assert_non_null(strstr(m.why, "unit 'A'"));
}

/* A clock ahead keeps the frame time "fresh"; the receive time ages. */
static void test_age_by_both_clocks(void **state) {
  (void)state;
  assert_int_equal(rp_member_age_ms(NOW, NOW + 30000, NOW - 20000), 20000);
  assert_int_equal(rp_member_age_ms(NOW, NOW - 20000, NOW - 1000), 20000); /* stepped back */
  assert_int_equal(rp_member_age_ms(NOW, NOW - 3000, 0), 3000);
  struct rp_members m = sum_of("pdu.power");
  rp_members_add(&m, "pdu.power@pdu-a", 0, "", 22.8, "kW", NOW + 30000, NOW - 20000);
  assert_false(rp_members_ok(&m));
  assert_non_null(strstr(m.why, "stale (last heard 20.0 s ago"));
}

static void test_skew(void **state) {
  (void)state;
  assert_int_equal(rp_clock_skew_ms(NOW + 30000, NOW), 30000);
  assert_true(rp_clock_skew_bad(30000, 2000));
  assert_true(rp_clock_skew_bad(-2001, 2000));
  assert_false(rp_clock_skew_bad(2000, 2000));
  assert_false(rp_clock_skew_bad(-150, 2000));
  char dev[32];
  rp_member_device("pdu.outlet.power{outlet=3}@pdu-a|300", dev, sizeof(dev));
  assert_string_equal(dev, "pdu-a");
  rp_member_device("cdu.alarms{alarm=leak}@cdu1", dev, sizeof(dev));
  assert_string_equal(dev, "cdu1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_units),
      cmocka_unit_test(test_sum_normalises_each_member),
      cmocka_unit_test(test_max_and_min),
      cmocka_unit_test(test_stale_member_fails_the_sum),
      cmocka_unit_test(test_error_and_absent_members_fail),
      cmocka_unit_test(test_mixed_dimensions_fail),
      cmocka_unit_test(test_age_by_both_clocks),
      cmocka_unit_test(test_skew),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
