/* Unit tests for the derived thermal series (lib/heat.c): coolant presets,
 * ΔT, heat removed against the known answer of shared/REFERENCE.md ("Heat"),
 * and the heat balance, including every invalid input the header names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>

#include "rackpulse/heat.h"

static void test_presets(void **state) {
  (void)state;
  struct rp_coolant c;
  assert_int_equal(rp_coolant_preset(RP_COOLANT_WATER, &c), 0);
  assert_true(c.rho_kg_m3 == 995.6 && c.cp_kj_kg_k == 4.18);
  assert_int_equal(rp_coolant_preset(RP_COOLANT_PG25, &c), 0);
  assert_true(c.rho_kg_m3 == 1019.2 && c.cp_kj_kg_k == 3.94);
  assert_int_equal(rp_coolant_preset((enum rp_coolant_preset)99, &c), -EINVAL);

  assert_int_equal(rp_coolant_custom(1000, 4.2, &c), 0);
  assert_true(c.rho_kg_m3 == 1000 && c.cp_kj_kg_k == 4.2);
  struct rp_coolant before = c;
  assert_int_equal(rp_coolant_custom(0, 4.2, &c), -EINVAL);
  assert_int_equal(rp_coolant_custom(1000, -1, &c), -EINVAL);
  assert_int_equal(rp_coolant_custom(NAN, 4.2, &c), -EINVAL);
  assert_int_equal(rp_coolant_custom(1000, INFINITY, &c), -EINVAL);
  assert_true(c.rho_kg_m3 == before.rho_kg_m3 && c.cp_kj_kg_k == before.cp_kj_kg_k);
}

static void test_delta_t(void **state) {
  (void)state;
  assert_true(rp_delta_t(45.0, 35.0) == 10.0);
  assert_true(rp_delta_t(30.0, 32.5) == -2.5); /* passed through, not hidden */
  assert_true(isnan(rp_delta_t(NAN, 30.0)));
  assert_true(isnan(rp_delta_t(30.0, INFINITY)));
}

static void test_heat_removed(void **state) {
  (void)state;
  struct rp_coolant water, pg25;
  rp_coolant_preset(RP_COOLANT_WATER, &water);
  rp_coolant_preset(RP_COOLANT_PG25, &pg25);
  double q = 0;
  /* 100 L/min of water at ΔT 10 K. */
  assert_int_equal(rp_heat_removed_kw(&water, 10.0, 100.0, &q), 0);
  assert_true(fabs(q - 995.6 * 4.18 * 10.0 * 100.0 / 60000.0) < 1e-12);
  assert_true(fabs(q - 69.36) < 0.001);      /* this formula's exact value */
  assert_true(fabs(q - 69.4) < 0.05);        /* REFERENCE.md's rounding */
  assert_true(fabs(q - 69.7) / 69.7 < 0.01); /* the issue's, other constants */
  /* Per L/min·K: 0.0694 for water, 0.0669 for PG25. */
  assert_int_equal(rp_heat_removed_kw(&water, 1.0, 1.0, &q), 0);
  assert_true(fabs(q - 0.0694) < 0.00005);
  assert_int_equal(rp_heat_removed_kw(&pg25, 1.0, 1.0, &q), 0);
  assert_true(fabs(q - 0.0669) < 0.00005);
  /* Linear in flow and ΔT; zero flow is zero heat; negative ΔT is negative. */
  double q2 = 0;
  rp_heat_removed_kw(&pg25, 8.0, 120.0, &q);
  rp_heat_removed_kw(&pg25, 4.0, 240.0, &q2);
  assert_true(fabs(q - q2) < 1e-12 && q > 0);
  assert_int_equal(rp_heat_removed_kw(&water, 10.0, 0.0, &q), 0);
  assert_true(q == 0.0);
  assert_int_equal(rp_heat_removed_kw(&water, -2.0, 100.0, &q), 0);
  assert_true(q < 0);
  /* Invalid inputs: -EDOM and NaN. */
  assert_int_equal(rp_heat_removed_kw(&water, 10.0, -1.0, &q), -EDOM);
  assert_true(isnan(q));
  q = 0;
  assert_int_equal(rp_heat_removed_kw(&water, NAN, 100.0, &q), -EDOM);
  assert_true(isnan(q));
  q = 0;
  assert_int_equal(rp_heat_removed_kw(&water, 10.0, INFINITY, &q), -EDOM);
  assert_true(isnan(q));
}

static void test_heat_balance(void **state) {
  (void)state;
  double r = 0;
  assert_int_equal(rp_heat_balance(60.0, 80.0, &r), 0);
  assert_true(r == 0.75);
  /* ΔT from sensors, heat from flow, balance against the PDU's power. */
  struct rp_coolant water;
  rp_coolant_preset(RP_COOLANT_WATER, &water);
  double q = 0;
  assert_int_equal(rp_heat_removed_kw(&water, rp_delta_t(41.0, 33.0), 150.0, &q), 0);
  assert_int_equal(rp_heat_balance(q, 100.0, &r), 0);
  assert_true(fabs(r - 0.0693601333 * 8 * 150 / 100) < 1e-6);
  assert_true(r > 0.8 && r < 0.85);
  /* No division by zero or by negative power: -EDOM and NaN. */
  r = 0;
  assert_int_equal(rp_heat_balance(60.0, 0.0, &r), -EDOM);
  assert_true(isnan(r));
  r = 0;
  assert_int_equal(rp_heat_balance(60.0, -5.0, &r), -EDOM);
  assert_true(isnan(r));
  r = 0;
  assert_int_equal(rp_heat_balance(NAN, 80.0, &r), -EDOM);
  assert_true(isnan(r));
  r = 0;
  assert_int_equal(rp_heat_balance(60.0, NAN, &r), -EDOM);
  assert_true(isnan(r));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_presets),
      cmocka_unit_test(test_delta_t),
      cmocka_unit_test(test_heat_removed),
      cmocka_unit_test(test_heat_balance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
