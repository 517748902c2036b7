/* ipmi_test_util.c: helpers shared by the IPMI parser and classifier unit
 * tests (see ipmi_test_util.h). */
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

#ifndef RP_FIXTURES
#error "RP_FIXTURES must name tests/fixtures"
#endif

char *load(const char *name, size_t *len) {
  char path[512];
  FILE *f;
  char *buf;
  long sz;

  snprintf(path, sizeof(path), "%s/ipmitool/%s", RP_FIXTURES, name);
  f = fopen(path, "rb");
  if (f == NULL)
    fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  sz = ftell(f);
  assert_true(sz >= 0);
  rewind(f);
  buf = malloc((size_t)sz + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
  fclose(f);
  buf[sz] = '\0';
  *len = (size_t)sz;
  return buf;
}

/* Parse a fixture; returns the number of readings. */
size_t parse_file(const char *name, struct ipmi_reading *r, struct ipmi_parse_stats *st, char *err,
                  size_t errlen) {
  size_t len, n = 0;
  char *buf = load(name, &len);
  int rc = ipmi_parse_sensors(buf, len, r, IPMI_TEST_MAXR, &n, st, err, errlen);

  assert_int_equal(rc, 0);
  free(buf);
  return n;
}

const struct ipmi_reading *find_nth(const struct ipmi_reading *r, size_t n, const char *name,
                                    int nth) {
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp(r[i].name, name) == 0 && nth-- == 0)
      return &r[i];
  fail_msg("no reading named \"%s\"", name);
  return NULL;
}

const struct ipmi_reading *find(const struct ipmi_reading *r, size_t n, const char *name) {
  return find_nth(r, n, name, 0);
}

/* A reading with a value. */
void expect(const struct ipmi_reading *r, double value, const char *unit, enum ipmi_status st) {
  if (r->value != value || strcmp(r->unit, unit) != 0 || r->status != st)
    fail_msg("%s: got %.17g \"%s\" %s, want %.17g \"%s\" %s", r->name, r->value, r->unit,
             ipmi_status_name(r->status), value, unit, ipmi_status_name(st));
}

/* A reading without a value (NA, DISABLED, DISCRETE). */
void expect_novalue(const struct ipmi_reading *r, enum ipmi_status st, const char *state) {
  if (!isnan(r->value) || r->status != st || strcmp(r->state, state) != 0)
    fail_msg("%s: got %g %s \"%s\", want NAN %s \"%s\"", r->name, r->value,
             ipmi_status_name(r->status), r->state, ipmi_status_name(st), state);
}

void expect_class(const struct ipmi_reading *r, const struct ipmi_pattern *user, size_t nuser,
                  const char *metric, const char *label, const char *value) {
  struct ipmi_class c;
  int rc = ipmi_classify(r, user, nuser, 0, &c);

  if (metric == NULL) {
    if (rc != 0)
      fail_msg("%s: classified as %s, want nothing", r->name, c.metric);
    return;
  }
  if (rc != 1)
    fail_msg("%s: not classified, want %s", r->name, metric);
  assert_string_equal(c.metric, metric);
  if (label == NULL) {
    assert_null(c.label);
    assert_string_equal(c.label_value, "");
  } else {
    assert_non_null(c.label);
    assert_string_equal(c.label, label);
    assert_string_equal(c.label_value, value);
  }
}
