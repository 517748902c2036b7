/*
 * test_ipmi_classify.c: unit tests of agent/ipmi/ipmi_classify.c: globs,
 * the classifier (user patterns, the built-in table, labels), the PSU power
 * sum, unit and status names. The parser's tests are test_ipmi_parse.c.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipmi_test_util.h"

#define MAXR IPMI_TEST_MAXR

/* ----------------------------------------------- classifier and globs */

static void test_glob(void **state) {
  size_t off, len;
  char err[120];

  (void)state;
  assert_true(ipmi_glob_match("GPU# Temp", "gpu12 TEMP", 10, &off, &len));
  assert_int_equal(off, 3);
  assert_int_equal(len, 2);
  assert_false(ipmi_glob_match("GPU# Temp", "GPU Temp", 8, NULL, NULL));
  assert_false(ipmi_glob_match("GPU# Temp", "GPUx Temp", 9, NULL, NULL));
  assert_true(ipmi_glob_match("GPU#*", "GPU12_TEMP", 10, &off, &len));
  assert_int_equal(len, 2); /* '#' takes all digits */
  assert_true(ipmi_glob_match("PS? Input Power", "PS2 Input Power", 15, &off, &len));
  assert_int_equal(off, 2);
  assert_int_equal(len, 1);
  assert_true(ipmi_glob_match("*Inlet*", "01-Inlet Ambient", 16, &off, &len));
  assert_int_equal(len, 3); /* the first '*', shortest */
  assert_true(ipmi_glob_match("[a-c]x[!0-9]", "BxZ", 3, NULL, NULL));
  assert_false(ipmi_glob_match("[a-c]x[!0-9]", "Bx5", 3, NULL, NULL));
  assert_true(ipmi_glob_match("[]]", "]", 1, NULL, NULL));
  assert_true(ipmi_glob_match("a\\*b", "a*b", 3, NULL, NULL));
  assert_false(ipmi_glob_match("a\\*b", "axb", 3, NULL, NULL));
  assert_true(ipmi_glob_match("*", "", 0, NULL, NULL));
  assert_false(ipmi_glob_match("?", "", 0, NULL, NULL));
  assert_false(ipmi_glob_match("[abc", "a", 1, NULL, NULL));
  assert_false(ipmi_glob_match("a\\", "a", 1, NULL, NULL));
  /* many stars: the memo keeps this fast */
  assert_false(ipmi_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b",
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                               120, NULL, NULL));

  assert_int_equal(ipmi_pattern_check("GPU# Temp", err, sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_int_equal(ipmi_pattern_check("", err, sizeof(err)), -EINVAL);
  assert_int_equal(ipmi_pattern_check(NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(ipmi_pattern_check("GPU[1-8 Temp", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "unterminated '['"));
  assert_int_equal(ipmi_pattern_check("Temp\\", err, sizeof(err)), -EINVAL);
  assert_int_equal(ipmi_pattern_check("*******************************"
                                      "**********************************",
                                      err, sizeof(err)),
                   -EINVAL);
}

static struct ipmi_reading mk(const char *name, double v, const char *unit, enum ipmi_status st) {
  struct ipmi_reading r;

  memset(&r, 0, sizeof(r));
  snprintf(r.name, sizeof(r.name), "%s", name);
  snprintf(r.unit, sizeof(r.unit), "%s", unit);
  r.value = v;
  r.status = st;
  r.sensor_num = -1;
  return r;
}

static void test_classify(void **state) {
  static const struct ipmi_pattern user[] = {
      {"Inlet Temp", NULL, NULL, NULL, NULL}, /* ignore */
      {"GPU# Temp", "Cel", NULL, "accel.temp", "slot"},
      {"Board *", NULL, NULL, "board.temp", "where"},
  };
  struct ipmi_reading r;
  struct ipmi_class c;

  (void)state;
  r = mk("GPU3 Temp", 71, "Cel", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "gpu.temp", "gpu", "3");
  expect_class(&r, user, 3, "accel.temp", "slot", "3");
  r = mk("GPU03 Temp", 71, "Cel", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "gpu.temp", "gpu", "3");
  r = mk("GPU3 Temp", 71, "degrees F", IPMI_ST_UNKNOWN_UNIT);
  expect_class(&r, NULL, 0, "gpu.temp", "gpu", "3");
  r = mk("GPU3 Temp", NAN, "", IPMI_ST_DISCRETE);
  expect_class(&r, NULL, 0, NULL, NULL, NULL);
  r = mk("GPU3 Temp", 71, "W", IPMI_ST_OK);
  expect_class(&r, NULL, 0, NULL, NULL, NULL);
  r = mk("CPU2 Temp", 50, "Cel", IPMI_ST_NC);
  expect_class(&r, NULL, 0, "cpu.temp", "cpu", "2");
  r = mk("Inlet Temp", 24, "Cel", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "server.inlet_temp", NULL, NULL);
  assert_int_equal(ipmi_classify(&r, user, 3, 0, &c), 0); /* ignored */
  assert_null(c.metric);
  r = mk("Exhaust Temp", 40, "Cel", IPMI_ST_OK);
  assert_int_equal(ipmi_classify(&r, user, 3, IPMI_CLASSIFY_NO_DEFAULTS, &c), 0);
  assert_int_equal(ipmi_classify(&r, user, 3, 0, &c), 1);
  assert_string_equal(c.metric, "server.exhaust_temp");
  assert_ptr_equal(c.pattern->metric, c.metric);
  r = mk("PS Outlet Temp", 40, "Cel", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "server.exhaust_temp", NULL, NULL);
  r = mk("PS1 Inlet Temp", 30, "Cel", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "psu.temp", "psu", "1");
  r = mk("PS2 Input Power", NAN, "", IPMI_ST_NA);
  expect_class(&r, NULL, 0, "psu.input_power", "psu", "2");
  r = mk("PSU2 AC Power", 900, "W", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "psu.input_power", "psu", "2");
  r = mk("PSU2 Output Power", 850, "W", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "psu.output_power", "psu", "2");
  r = mk("FANA", 3500, "rpm", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "fan.speed", "fan", "A");
  r = mk("FAN1 RPM", 9000, "rpm", IPMI_ST_OK);
  expect_class(&r, NULL, 0, "fan.speed", "fan", "1");
  /* a capture that is empty after trimming: the row does not match */
  r = mk("Board ", 30, "Cel", IPMI_ST_OK);
  assert_int_equal(ipmi_classify(&r, user, 3, IPMI_CLASSIFY_NO_DEFAULTS, &c), 0);
  r = mk("Board _-rear left", 30, "Cel", IPMI_ST_OK);
  expect_class(&r, user, 3, "board.temp", "where", "rear");
  /* no wildcard and no entity: no label value, no match */
  r = mk("Temp", 40, "Cel", IPMI_ST_OK);
  expect_class(&r, NULL, 0, NULL, NULL, NULL);
  snprintf(r.entity, sizeof(r.entity), "7.1");
  expect_class(&r, NULL, 0, NULL, NULL, NULL);
  snprintf(r.entity, sizeof(r.entity), "3.02");
  expect_class(&r, NULL, 0, "cpu.temp", "cpu", "2");

  assert_int_equal(ipmi_classify(NULL, NULL, 0, 0, &c), -EINVAL);
  assert_int_equal(ipmi_classify(&r, NULL, 1, 0, &c), -EINVAL);
  assert_int_equal(ipmi_classify(&r, NULL, 0, 0, NULL), -EINVAL);
  assert_true(ipmi_default_patterns_len > 10);
}

static void test_sum(void **state) {
  struct ipmi_reading r[MAXR];
  struct ipmi_power_sum sum;
  size_t n = parse_file("ipmi_sim-sdr-elist.txt", r, NULL, NULL, 0);

  (void)state;
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_COMPLETE);
  assert_true(sum.watts == 1440 + 1460);
  assert_int_equal(sum.used, 2);
  assert_int_equal(sum.missing, 0);
  /* a critical PSU still has a value */
  r[8].status = IPMI_ST_CR;
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 2, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_COMPLETE);
  /* a third PSU expected but absent */
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 3, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_PARTIAL);
  assert_int_equal(sum.missing, 1);
  assert_true(sum.watts == 2900);
  /* PS2 loses its reading: never counted as 0 W and complete */
  assert_string_equal(r[9].name, "PS2 Input Power");
  r[9].status = IPMI_ST_NA;
  r[9].value = NAN;
  r[9].unit[0] = '\0';
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_PARTIAL);
  assert_true(sum.watts == 1440);
  r[8].status = IPMI_ST_DISABLED;
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_NONE);
  assert_true(isnan(sum.watts));
  assert_int_equal(sum.missing, 2);
  /* the same PSU twice counts once */
  r[8] = mk("PS1 Input Power", 1000, "W", IPMI_ST_OK);
  r[9] = mk("PS1 Input Power", 1000, "W", IPMI_ST_OK);
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_true(sum.watts == 1000);
  assert_int_equal(sum.used, 1);
  assert_int_equal(ipmi_sum_psu_input(NULL, 1, NULL, 0, 0, 0, &sum), -EINVAL);
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, NULL), -EINVAL);
}

static void test_units_and_names(void **state) {
  (void)state;
  assert_string_equal(ipmi_unit_map("degrees C", 9), "Cel");
  assert_string_equal(ipmi_unit_map(" RPM ", 5), "rpm");
  assert_string_equal(ipmi_unit_map("Watts", 5), "W");
  assert_string_equal(ipmi_unit_map("Volts", 5), "V");
  assert_string_equal(ipmi_unit_map("Amps", 4), "A");
  assert_string_equal(ipmi_unit_map("percent", 7), "%");
  assert_null(ipmi_unit_map("degrees F", 9));
  assert_null(ipmi_unit_map("degrees", 7)); /* ipmitool cut it short */
  assert_null(ipmi_unit_map(NULL, 0));
  assert_string_equal(ipmi_status_name(IPMI_ST_UNKNOWN_UNIT), "unknown-unit");
  assert_string_equal(ipmi_status_name(IPMI_ST_DISABLED), "disabled");
  assert_string_equal(ipmi_status_name((enum ipmi_status)99), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_glob),
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_sum),
      cmocka_unit_test(test_units_and_names),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
