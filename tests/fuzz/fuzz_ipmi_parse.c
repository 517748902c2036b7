/* Fuzzes the ipmitool output parsers of agent/ipmi/ipmi_parse.c and the
 * classifier of ipmi_classify.c with any bytes as a BMC or a broken
 * ipmitool could print them: ipmi_parse_sensors() (sdr
 * list/elist, sensor, their CSV forms, shell mode), ipmi_parse_dcmi_power(),
 * and on every reading found the classifier (built-in table, and a user row
 * whose glob is the input's first line when it is a valid glob) and the PSU
 * power sum. Checks the header's promises: return codes, counts, and
 * NUL-terminated fields. Seeds: tests/fixtures/ipmitool. */
#include <errno.h>
#include <math.h>

#include "fuzz_common.h"
#include "ipmi/ipmi_parse.h"

#define CAP 48

static void check_reading(const struct ipmi_reading *r) {
  FUZZ_ASSERT(fuzz_terminated(r->name, sizeof(r->name)));
  FUZZ_ASSERT(fuzz_terminated(r->unit, sizeof(r->unit)));
  FUZZ_ASSERT(fuzz_terminated(r->state, sizeof(r->state)));
  FUZZ_ASSERT(fuzz_terminated(r->raw_status, sizeof(r->raw_status)));
  FUZZ_ASSERT(fuzz_terminated(r->entity, sizeof(r->entity)));
  FUZZ_ASSERT(ipmi_status_name(r->status)[0] != '?');
  /* value is NAN whenever there is no number, never 0 */
  if (r->status == IPMI_ST_NA || r->status == IPMI_ST_DISABLED || r->status == IPMI_ST_DISCRETE)
    FUZZ_ASSERT(isnan(r->value));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  static struct ipmi_reading out[CAP];
  struct ipmi_parse_stats st;
  char err[160];
  size_t n = 0;

  int rc = ipmi_parse_sensors(buf, size, out, CAP, &n, &st, err, sizeof(err));
  FUZZ_ASSERT(rc == 0 || rc == -ENOBUFS);
  FUZZ_ASSERT(n <= CAP && n == st.readings);
  FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
  FUZZ_ASSERT((rc == -ENOBUFS) == (st.dropped > 0));

  /* A user row from the first line, when it is a glob the config accepts. */
  const char *nl = memchr(buf, '\n', size);
  char *glob = fuzz_strndup(data, nl ? (size_t)(nl - buf) : size);
  struct ipmi_pattern user[1] = {{.glob = glob, .metric = "fuzz.metric", .label = "x"}};
  size_t nuser = ipmi_pattern_check(glob, err, sizeof(err)) == 0 ? 1 : 0;

  for (size_t i = 0; i < n; i++) {
    struct ipmi_class c;
    check_reading(&out[i]);
    int k = ipmi_classify(&out[i], user, nuser, 0, &c);
    FUZZ_ASSERT(k == 0 || k == 1);
    if (k == 1)
      FUZZ_ASSERT(c.metric != NULL && fuzz_terminated(c.label_value, sizeof(c.label_value)));
    k = ipmi_classify(&out[i], user, nuser, IPMI_CLASSIFY_NO_DEFAULTS, &c);
    FUZZ_ASSERT(k == 0 || k == 1);
    if (nuser) {
      size_t off = 0, len = 0, nlen = strlen(out[i].name);
      if (ipmi_glob_match(glob, out[i].name, nlen, &off, &len))
        FUZZ_ASSERT(off + len <= nlen);
    }
  }
  struct ipmi_power_sum sum;
  FUZZ_ASSERT(ipmi_sum_psu_input(out, n, user, nuser, 0, 0, &sum) == 0);
  if (sum.status == IPMI_SUM_NONE)
    FUZZ_ASSERT(isnan(sum.watts));
  FUZZ_ASSERT(ipmi_sum_psu_input(out, n, NULL, 0, 0, 4, &sum) == 0);
  free(glob);

  struct ipmi_dcmi_power p;
  rc = ipmi_parse_dcmi_power(buf, size, &p, err, sizeof(err));
  FUZZ_ASSERT(rc == 0 || rc == -ENOTSUP || rc == -EACCES || rc == -EAGAIN || rc == -EIO ||
              rc == -EBADMSG);
  FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
  FUZZ_ASSERT(fuzz_terminated(p.timestamp, sizeof(p.timestamp)));
  if (rc == 0)
    FUZZ_ASSERT(p.have & IPMI_DCMI_HAVE_INSTANT);
  return 0;
}
