/*
 * test_snmp_value.c: unit tests for the SNMP collector's pure parts
 * (agent/snmp/snmp_value.c): OID text, order and subtrees; value conversion with
 * fixed scales, Raritan decimal digits, "not supported" sentinels, SNMP
 * exceptions and wrong types; the monotonic energy counter across
 * Counter32 wraps, device restarts and resets; sysUpTime restart detection.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* cmocka 1.1 compares floats only; values here need doubles. */
#define assert_double_equal(a, b, eps)                    \
  do {                                                    \
    double a_ = (a), b_ = (b);                            \
    if (!(fabs(a_ - b_) <= (eps)))                        \
      fail_msg("%s = %.12g, expected %.12g", #a, a_, b_); \
  } while (0)

#include "agent/snmp/snmp_value.h"
#include "rackpulse/frame.h"

static void test_oid_parse_format(void **state) {
  (void)state;
  struct snmp_oid o;
  char buf[256];
  assert_int_equal(snmp_oid_parse("1.3.6.1.2.1.1.3.0", &o), 0);
  assert_int_equal(o.len, 9);
  assert_string_equal(snmp_oid_format(&o, buf, sizeof(buf)), "1.3.6.1.2.1.1.3.0");
  assert_int_equal(snmp_oid_parse(".1.3.6.1.4.1.13742.6.5.2.3.1.4", &o), 0);
  assert_int_equal(o.sub[6], 13742);
  assert_int_equal(snmp_oid_parse("1.3.6.1.4294967295", &o), 0);
  assert_int_equal(o.sub[4], 4294967295u);
  const char *bad[] = {
      "", ".", "1", "1..3", "1.3.", "1.3.x", "sysUpTime.0", "1.3.4294967296", "1.3 .6", "-1.3"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(snmp_oid_parse(bad[i], &o), -EINVAL);
  char many[512] = "1";
  for (int i = 0; i < SNMP_OID_MAX; i++)
    strcat(many, ".1");
  assert_int_equal(snmp_oid_parse(many, &o), -EINVAL);
  /* formatting truncates safely */
  snmp_oid_parse("1.3.6.1.2.1.1.3.0", &o);
  assert_string_equal(snmp_oid_format(&o, buf, 6), "1.3.6");
}

static void test_oid_order_and_subtree(void **state) {
  (void)state;
  struct snmp_oid a, b, root;
  snmp_oid_parse("1.3.6.1.4.1.318.1.1.26.6.3.1.5", &root);
  snmp_oid_parse("1.3.6.1.4.1.318.1.1.26.6.3.1.5.1", &a);
  snmp_oid_parse("1.3.6.1.4.1.318.1.1.26.6.3.1.6.1", &b);
  assert_true(snmp_oid_cmp(&a, &b) < 0);
  assert_true(snmp_oid_cmp(&b, &a) > 0);
  assert_int_equal(snmp_oid_cmp(&a, &a), 0);
  assert_true(snmp_oid_cmp(&root, &a) < 0); /* a prefix sorts first */
  assert_true(snmp_oid_under(&root, &a));
  assert_false(snmp_oid_under(&root, &b));
  assert_false(snmp_oid_under(&root, &root)); /* strictly inside */
  /* numeric, not textual: .10 after .9 */
  snmp_oid_parse("1.3.6.9", &a);
  snmp_oid_parse("1.3.6.10", &b);
  assert_true(snmp_oid_cmp(&a, &b) < 0);
}

static struct snmp_value vint(int64_t i) { return (struct snmp_value){SNMP_V_INTEGER, i, 0}; }
static struct snmp_value vgauge(uint64_t u) { return (struct snmp_value){SNMP_V_GAUGE, 0, u}; }
static struct snmp_value vtype(enum snmp_vtype t) { return (struct snmp_value){t, 0, 0}; }

static void test_convert_scale(void **state) {
  (void)state;
  char why[128];
  double out;
  int dec;
  /* APC: hundredths of kW to W (x 10); tenths of A */
  struct snmp_scaling kw = {10, 0, true, -1}, tenth = {0.1, 1, true, -1};
  struct snmp_value v = vint(345);
  assert_int_equal(snmp_value_convert(&v, &kw, NULL, &out, &dec, why, sizeof(why)), SNMP_CONV_OK);
  assert_double_equal(out, 3450, 1e-9);
  assert_int_equal(dec, 0);
  v = vint(52);
  assert_int_equal(snmp_value_convert(&v, &tenth, NULL, &out, &dec, why, sizeof(why)),
                   SNMP_CONV_OK);
  assert_double_equal(out, 5.2, 1e-9);
  assert_int_equal(dec, 1);
  /* -1 is "not supported": a status, never a number */
  v = vint(-1);
  assert_int_equal(snmp_value_convert(&v, &tenth, NULL, &out, &dec, why, sizeof(why)),
                   SNMP_CONV_ABSENT);
  assert_double_equal(out, 0, 0);
  assert_non_null(strstr(why, "not supported"));
  /* without an invalid value, -1 is a value */
  struct snmp_scaling plain = {1, 0, false, 0};
  assert_int_equal(snmp_value_convert(&v, &plain, NULL, &out, &dec, why, sizeof(why)),
                   SNMP_CONV_OK);
  assert_double_equal(out, -1, 0);
  /* unsigned types keep their full range */
  v = (struct snmp_value){SNMP_V_COUNTER64, 0, UINT64_C(1) << 40};
  assert_int_equal(snmp_value_convert(&v, &plain, NULL, &out, &dec, why, sizeof(why)),
                   SNMP_CONV_OK);
  assert_double_equal(out, 1099511627776.0, 0);
}

static void test_convert_digits(void **state) {
  (void)state;
  char why[128];
  double out;
  int dec;
  struct snmp_scaling one = {1, 0, false, 0}, wh_to_kwh = {0.001, 3, false, 0};
  /* Raritan: rmsCurrent raw 1424 with 3 digits is 1.424 A */
  struct snmp_value v = vgauge(1424), d = vgauge(3);
  assert_int_equal(snmp_value_convert(&v, &one, &d, &out, &dec, why, sizeof(why)), SNMP_CONV_OK);
  assert_double_equal(out, 1.424, 1e-12);
  assert_int_equal(dec, 3);
  /* activeEnergy Wh -> kWh with 1 digit: 0.001 / 10 */
  v = vgauge(12345);
  d = vgauge(1);
  assert_int_equal(snmp_value_convert(&v, &wh_to_kwh, &d, &out, &dec, why, sizeof(why)),
                   SNMP_CONV_OK);
  assert_double_equal(out, 1.2345, 1e-12);
  assert_int_equal(dec, 4);
  /* digits that are unusable: an error on the reading, never a guess */
  d = vgauge(12);
  assert_int_equal(snmp_value_convert(&v, &one, &d, &out, &dec, why, sizeof(why)), SNMP_CONV_ERROR);
  assert_non_null(strstr(why, "decimal digits 12"));
  d = vtype(SNMP_V_MISSING);
  assert_int_equal(snmp_value_convert(&v, &one, &d, &out, &dec, why, sizeof(why)), SNMP_CONV_ERROR);
  assert_non_null(strstr(why, "decimal digits"));
  d = vtype(SNMP_V_STRING);
  assert_int_equal(snmp_value_convert(&v, &one, &d, &out, &dec, why, sizeof(why)),
                   SNMP_CONV_BAD_TYPE);
}

static void test_convert_exceptions_and_types(void **state) {
  (void)state;
  char why[128];
  double out;
  int dec;
  struct snmp_scaling one = {1, 0, false, 0};
  struct {
    enum snmp_vtype t;
    enum snmp_conv want;
    const char *text;
  } cases[] = {
      {SNMP_V_NOSUCHOBJECT, SNMP_CONV_ABSENT, "noSuchObject"},
      {SNMP_V_NOSUCHINSTANCE, SNMP_CONV_ABSENT, "noSuchInstance"},
      {SNMP_V_ENDOFMIBVIEW, SNMP_CONV_ABSENT, "endOfMibView"},
      {SNMP_V_MISSING, SNMP_CONV_ABSENT, "missing"},
      {SNMP_V_STRING, SNMP_CONV_BAD_TYPE, "OCTET STRING where a number was expected"},
      {SNMP_V_OTHER, SNMP_CONV_BAD_TYPE, "non-numeric"},
      {SNMP_V_ERROR, SNMP_CONV_ERROR, "request failed"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct snmp_value v = vtype(cases[i].t);
    out = 42;
    assert_int_equal(snmp_value_convert(&v, &one, NULL, &out, &dec, why, sizeof(why)),
                     cases[i].want);
    assert_double_equal(out, 0, 0); /* never a zero passed off as a value: status says so */
    assert_non_null(strstr(why, cases[i].text));
  }
  assert_int_equal(rp_scale_decimals(0.01), 2);
  assert_int_equal(rp_scale_decimals(10), 0);
  assert_int_equal(rp_scale_decimals(0.001), 3);
  assert_int_equal(rp_scale_decimals(1), 0);
  assert_int_equal(rp_scale_decimals(0.5), 1);
}

static void test_counter_steps_and_wrap(void **state) {
  (void)state;
  struct snmp_counter c = {0};
  enum snmp_counter_event ev;
  /* first value: the device's own total (tenths of kWh) */
  assert_double_equal(snmp_counter_update(&c, 98765, 32, false, 0.1, &ev), 9876.5, 1e-9);
  assert_int_equal(ev, SNMP_CTR_FIRST);
  assert_double_equal(snmp_counter_update(&c, 98770, 32, false, 0.1, &ev), 9877.0, 1e-9);
  assert_int_equal(ev, SNMP_CTR_STEP);
  /* Counter32 wrap: 2^32 - 10 -> 5 is 15 steps */
  struct snmp_counter w = {0};
  snmp_counter_update(&w, UINT32_MAX - 9, 32, false, 1, &ev);
  assert_double_equal(snmp_counter_update(&w, 5, 32, false, 1, &ev), (double)UINT32_MAX - 9 + 15,
                      1e-3);
  assert_int_equal(ev, SNMP_CTR_WRAP);
  assert_int_equal(w.wraps, 1);
  /* Counter64 wrap: a wrap, not a reset (a double cannot show 4 steps on
   * a total near 2^64, so only the event and the direction are checked) */
  struct snmp_counter w64 = {0};
  snmp_counter_update(&w64, UINT64_MAX - 1, 64, false, 1, &ev);
  double before = w64.total;
  assert_true(snmp_counter_update(&w64, 2, 64, false, 1, &ev) >= before);
  assert_int_equal(ev, SNMP_CTR_WRAP);
  assert_int_equal(w64.wraps, 1);
}

static void test_counter_restart_and_reset(void **state) {
  (void)state;
  struct snmp_counter c = {0};
  enum snmp_counter_event ev;
  snmp_counter_update(&c, 1000, 32, false, 1, &ev);
  snmp_counter_update(&c, 1500, 32, false, 1, &ev);
  /* the device restarted and its counter began again from 0: continue
   * from the last value (1500) plus what it counted since (20) */
  assert_double_equal(snmp_counter_update(&c, 20, 32, true, 1, &ev), 1520, 1e-9);
  assert_int_equal(ev, SNMP_CTR_RESET);
  assert_int_equal(c.resets, 1);
  assert_double_equal(snmp_counter_update(&c, 30, 32, false, 1, &ev), 1530, 1e-9);
  /* restarted but the counter survived (it did not go down): a step */
  assert_double_equal(snmp_counter_update(&c, 40, 32, true, 1, &ev), 1540, 1e-9);
  assert_int_equal(ev, SNMP_CTR_STEP);
  /* a non-wrapping INTEGER counter (APC, resettable) going down: a reset,
   * even without a restart */
  struct snmp_counter a = {0};
  snmp_counter_update(&a, 5000, 0, false, 0.1, &ev);
  assert_double_equal(snmp_counter_update(&a, 3, 0, false, 0.1, &ev), 500.3, 1e-9);
  assert_int_equal(ev, SNMP_CTR_RESET);
  /* the series never goes down, whatever the sequence */
  struct snmp_counter m = {0};
  uint64_t seq[] = {10, 20, 5, 4000000000u, 7, 7, 100, 0, 3};
  double last = -1;
  for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
    double v = snmp_counter_update(&m, seq[i], i % 2 ? 32 : 0, i == 7, 1, &ev);
    assert_true(v >= last);
    last = v;
  }
}

static void test_uptime_restart(void **state) {
  (void)state;
  assert_false(snmp_uptime_restarted(1000, 2000));
  assert_false(snmp_uptime_restarted(1000, 1000));
  assert_true(snmp_uptime_restarted(4200000, 300));
  /* TimeTicks wrap after 497 days is not a restart */
  assert_false(snmp_uptime_restarted(UINT32_MAX - 100, 50));
  assert_true(snmp_uptime_restarted(UINT32_MAX / 2, 50));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oid_parse_format),
      cmocka_unit_test(test_oid_order_and_subtree),
      cmocka_unit_test(test_convert_scale),
      cmocka_unit_test(test_convert_digits),
      cmocka_unit_test(test_convert_exceptions_and_types),
      cmocka_unit_test(test_counter_steps_and_wrap),
      cmocka_unit_test(test_counter_restart_and_reset),
      cmocka_unit_test(test_uptime_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
