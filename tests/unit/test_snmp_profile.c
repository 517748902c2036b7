/*
 * test_snmp_profile.c: unit tests for SNMP device profiles
 * (agent/snmp/snmp_profile.c): the three shipped profiles load and map the
 * metric names every vendor shares; row-index patterns bind labels and
 * filter rows; a broken profile is an error naming its file, line and key.
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

#include "agent/snmp/snmp_profile.h"

#define PROFILES RP_SOURCE_DIR "/packaging/profiles"

static const struct snmp_metric *find(const struct snmp_profile *p, const char *name) {
  for (size_t i = 0; i < p->nmetrics; i++)
    if (strcmp(p->metrics[i].name, name) == 0)
      return &p->metrics[i];
  return NULL;
}

static void test_shipped_profiles(void **state) {
  (void)state;
  const char *names[] = {"raritan-px", "apc-rpdu2", "servertech-sentry4"};
  const char *common[] = {"pdu.power",          "pdu.energy",         "pdu.phase.current",
                          "pdu.phase.voltage",  "pdu.phase.power",    "pdu.outlet.power",
                          "pdu.outlet.current", "pdu.breaker.current"};
  for (size_t i = 0; i < 3; i++) {
    struct snmp_profile p;
    char err[1024] = "";
    int rc = snmp_profile_load(PROFILES, names[i], &p, err, sizeof(err));
    if (rc != 0)
      fail_msg("%s: %s", names[i], err);
    for (size_t k = 0; k < sizeof(common) / sizeof(common[0]); k++) {
      const struct snmp_metric *m = find(&p, common[k]);
      if (m == NULL)
        fail_msg("%s lacks %s", names[i], common[k]);
    }
    const struct snmp_metric *e = find(&p, "pdu.energy");
    assert_true(e->counter);
    assert_string_equal(e->unit, "kWh");
    assert_string_equal(find(&p, "pdu.power")->unit, "W");
    assert_string_equal(find(&p, "pdu.phase.current")->unit, "A");
    assert_string_equal(find(&p, "pdu.phase.voltage")->unit, "V");
    assert_true(p.has_max_repetitions);
    snmp_profile_free(&p);
    snmp_profile_free(&p); /* safe twice */
  }
  /* Raritan: values with their decimal digits, energy Wh -> kWh */
  struct snmp_profile r;
  char err[1024];
  assert_int_equal(snmp_profile_load(PROFILES, "raritan-px", &r, err, sizeof(err)), 0);
  const struct snmp_metric *oc = find(&r, "pdu.outlet.current");
  assert_int_equal(oc->table >= 0, 1);
  assert_int_equal(oc->digits >= 0, 1);
  assert_double_equal(find(&r, "pdu.energy")->scaling.scale, 0.001, 1e-15);
  assert_int_equal(find(&r, "pdu.energy")->scaling.decimals, 3);
  snmp_profile_free(&r);
  /* APC: -1 is "not supported"; scalars with a fixed inlet label */
  struct snmp_profile a;
  assert_int_equal(snmp_profile_load(PROFILES, "apc-rpdu2", &a, err, sizeof(err)), 0);
  const struct snmp_metric *pw = find(&a, "pdu.power");
  assert_int_equal(pw->table, -1);
  assert_true(pw->scaling.has_invalid);
  assert_int_equal(pw->scaling.invalid, -1);
  assert_double_equal(pw->scaling.scale, 10, 0);
  assert_int_equal(pw->nlabels, 1);
  assert_string_equal(pw->labels[0].key, "inlet");
  snmp_profile_free(&a);
}

static void test_index_match(void **state) {
  (void)state;
  struct snmp_profile r;
  char err[1024];
  assert_int_equal(snmp_profile_load(PROFILES, "raritan-px", &r, err, sizeof(err)), 0);
  const struct snmp_metric *pc = find(&r, "pdu.phase.current"); /* [1, _, phase, 1] */
  const char *keys[SNMP_MAX_LABELS];
  char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
  size_t n = 9;
  uint32_t row[] = {1, 1, 3, 1};
  assert_true(snmp_metric_match(pc, row, 4, keys, values, &n));
  assert_int_equal(n, 1);
  assert_string_equal(keys[0], "phase");
  assert_string_equal(values[0], "3");
  uint32_t voltage_row[] = {1, 1, 3, 4}; /* sensor type 4: not this metric */
  assert_false(snmp_metric_match(pc, voltage_row, 4, keys, values, &n));
  uint32_t other_pdu[] = {2, 1, 3, 1};
  assert_false(snmp_metric_match(pc, other_pdu, 4, keys, values, &n));
  assert_false(snmp_metric_match(pc, row, 3, keys, values, &n)); /* length must match */
  snmp_profile_free(&r);
}

/* Parses YAML text as a profile; returns the rc and leaves the error in err. */
static int parse(const char *yaml, char *err, size_t errlen) {
  struct rp_cfg_doc *doc = NULL;
  int rc = rp_cfg_load_string("bad.yaml", yaml, strlen(yaml), &doc, err, errlen);
  if (rc != 0)
    return rc;
  struct snmp_profile p;
  rc = snmp_profile_parse(doc, "bad", &p, err, errlen);
  snmp_profile_free(&p);
  rp_cfg_free(doc);
  return rc;
}

static void test_profile_errors(void **state) {
  (void)state;
  struct {
    const char *yaml, *want;
  } cases[] = {
      {"description: x\n", "bad.yaml:1: profile: no metrics"},
      {"scalars:\n  - {name: a, oid: sysUpTime.0}\n",
       "bad.yaml:2: scalars[0]: oid: 'sysUpTime.0' is not a numeric OID"},
      {"scalars:\n  - {name: a, oid: 1.3.6.1.2.1.1.3.0, scale: 0}\n",
       "bad.yaml:2: scalars[0]: scale: must not be 0"},
      {"scalars:\n  - {name: a, oid: 1.3.6.1.2.1.1.3.0, colour: red}\n",
       "bad.yaml:2: scalars[0].colour: unknown key"},
      {"tables:\n  - name: t\n    columns: {v: 1.3.6.1.4.1.1.1}\n    metrics:\n"
       "      - {name: a, column: w, index: [x]}\n",
       "bad.yaml:5: tables[0].metrics[0]: column: 'w' is not a key"},
      {"tables:\n  - name: t\n    columns: {v: 1.3.6.1.4.1.1.1}\n    metrics:\n"
       "      - {name: a, column: v}\n",
       "bad.yaml:5: tables[0].metrics[0]: index: required"},
      {"tables:\n  - name: t\n    columns: {v: 1.3.6.1.4.1.1.1}\n    metrics:\n"
       "      - {name: a, column: v, index: [1, 'x-y']}\n",
       "bad.yaml:5: tables[0].metrics[0]: index[1]: 'x-y' is not a number"},
      {"tables:\n  - name: t\n    columns: {v: 1.3.6.1.4.1.1.1, w: 1.3.6.1.4.1.1.1.2}\n"
       "    metrics:\n      - {name: a, column: v, index: [x]}\n",
       "bad.yaml:3: tables[0]: columns.w: overlaps column v"},
      {"tables:\n  - name: t\n    columns: {v: 1.3.6.1.4.1.1.1}\n    metrics:\n"
       "      - {name: a, column: v, digits: v, index: [x]}\n",
       "bad.yaml:5: tables[0].metrics[0]: digits: 'v' is not another key"},
      {"tables:\n  - name: t\n    columns: {v: 1.3.6.1.4.1.1.1}\n    metrics:\n"
       "      - {name: a, column: v, index: [x]}\n      - {name: b, column: v, index: [x]}\n",
       "metrics b and a read the same rows"},
      {"max_repetitions: 0\nscalars:\n  - {name: a, oid: 1.3.6.1.2.1.1.3.0}\n",
       "bad.yaml:1: profile.max_repetitions: 0 is outside 1..1000"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[1024] = "";
    assert_int_not_equal(parse(cases[i].yaml, err, sizeof(err)), 0);
    if (strstr(err, cases[i].want) == NULL)
      fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
  }
  /* a missing profile names the file it looked for; bad names are refused */
  struct snmp_profile p;
  char err[1024];
  assert_int_not_equal(snmp_profile_load(PROFILES, "no-such-pdu", &p, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "snmp/no-such-pdu.yaml"));
  assert_int_equal(snmp_profile_load(PROFILES, "../etc/passwd", &p, err, sizeof(err)), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_profiles),
      cmocka_unit_test(test_index_match),
      cmocka_unit_test(test_profile_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
