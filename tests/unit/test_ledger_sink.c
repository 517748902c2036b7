/* The ledger's change sink as a veto (ledger.h): a reservation, flag,
 * retirement or published override the sink refuses is not written, the
 * writer gets -EREMOTEIO and rp_ledger_write_error() the sink's reason;
 * one it accepts is written, and the sink saw it before the commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

struct sink {
  int refuse; /* 0: accept */
  int calls;
  char last[128];
};

static int on_change(void *ctx, const char *rack, const char *kind, const char *id,
                     const json_t *value, char *err, size_t errlen) {
  struct sink *s = ctx;
  s->calls++;
  snprintf(s->last, sizeof(s->last), "%s/%s/%s%s", rack, kind, id, value ? "" : " (deleted)");
  if (s->refuse)
    snprintf(err, errlen, "%s not acknowledged (test)", s->last);
  return s->refuse;
}

static void test_refused_changes_are_not_made(void **state) {
  (void)state;
  char dir[] = "/tmp/rp_test_sink_XXXXXX", err[256], cmd[300];
  assert_non_null(mkdtemp(dir));
  struct rp_ledger_limits lim = {.map_size = 4u << 20, .audit_max_age_ms = 3600000};
  struct rp_ledger *l;
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
  struct sink s = {.refuse = 1};
  rp_ledger_set_change_sink(l, on_change, &s);

  json_t *flag = json_pack("{s:s, s:s}", "rack", "r1", "flag", "maintenance");
  json_t *res = json_pack("{s:s, s:s, s:f}", "id", "res-1", "rack", "r1", "kw", 2.5);
  json_t *ret =
      json_pack("{s:s, s:s, s:I}", "rack", "r1", "device", "bmc0", "retired_ms", (json_int_t)1000);
  int rc = rp_ledger_flag_put(l, "r1", "maintenance", flag);
  assert_int_equal(rc, -EREMOTEIO);
  assert_string_equal(rp_ledger_write_error(rc), "r1/flag/maintenance not acknowledged (test)");
  assert_int_equal(rp_ledger_res_put(l, res), -EREMOTEIO);
  assert_int_equal(rp_ledger_retired_put(l, ret), -EREMOTEIO);
  assert_int_equal(rp_ledger_publish(l, "r1", "override", "ovr-1", flag), -EREMOTEIO);
  assert_int_equal(s.calls, 4);
  json_t *all = rp_ledger_flag_list(l, NULL);
  assert_int_equal(json_array_size(all), 0);
  json_decref(all);
  all = rp_ledger_res_list(l);
  assert_int_equal(json_array_size(all), 0);
  json_decref(all);
  all = rp_ledger_retired_list(l, "r1");
  assert_int_equal(json_array_size(all), 0);
  json_decref(all);
  assert_string_equal(rp_ledger_write_error(-EIO), "ledger write failed");

  s.refuse = 0; /* accepted: written */
  assert_int_equal(rp_ledger_flag_put(l, "r1", "maintenance", flag), 0);
  assert_int_equal(rp_ledger_res_put(l, res), 0);
  assert_int_equal(rp_ledger_retired_put(l, ret), 0);
  assert_string_equal(s.last, "r1/retirement/bmc0");
  all = rp_ledger_retired_list(l, "r1");
  assert_int_equal(json_array_size(all), 1);
  json_decref(all);

  s.refuse = 1; /* a refused delete keeps the flag */
  assert_int_equal(rp_ledger_flag_del(l, "r1", "maintenance"), -EREMOTEIO);
  assert_string_equal(s.last, "r1/flag/maintenance (deleted)");
  all = rp_ledger_flag_list(l, "r1");
  assert_int_equal(json_array_size(all), 1);
  json_decref(all);
  rp_ledger_barrier(l); /* no write in progress: returns */

  json_decref(flag);
  json_decref(res);
  json_decref(ret);
  rp_ledger_close(l);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refused_changes_are_not_made),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
