/* ipmi_test_util.h: helpers shared by test_ipmi_parse.c and
 * test_ipmi_classify.c: fixtures of tests/fixtures/ipmitool/ loaded and
 * parsed, readings found by name, and cmocka checks of a reading's value,
 * status and classification. Each check fails the running test. */
#ifndef RP_IPMI_TEST_UTIL_H
#define RP_IPMI_TEST_UTIL_H

#include <stddef.h>

#include "agent/ipmi/ipmi_parse.h"

/* Readings a fixture may hold. */
#define IPMI_TEST_MAXR 64

/* The fixture tests/fixtures/ipmitool/NAME, NUL-terminated; *len its size.
 * The caller frees it. */
char *load(const char *name, size_t *len);
/* Parses fixture NAME into r (IPMI_TEST_MAXR entries); returns how many. */
size_t parse_file(const char *name, struct ipmi_reading *r, struct ipmi_parse_stats *st, char *err,
                  size_t errlen);
/* The nth (0-based) reading called name, or fails the test. */
const struct ipmi_reading *find_nth(const struct ipmi_reading *r, size_t n, const char *name,
                                    int nth);
const struct ipmi_reading *find(const struct ipmi_reading *r, size_t n, const char *name);
/* A reading with a value, unit and status. */
void expect(const struct ipmi_reading *r, double value, const char *unit, enum ipmi_status st);
/* A reading without a value (NA, DISABLED, DISCRETE). */
void expect_novalue(const struct ipmi_reading *r, enum ipmi_status st, const char *state);
/* r classified (user patterns first, then the built-in table) as metric
 * with label=value; metric NULL: not classified at all. */
void expect_class(const struct ipmi_reading *r, const struct ipmi_pattern *user, size_t nuser,
                  const char *metric, const char *label, const char *value);

#endif
