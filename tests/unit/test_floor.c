/* The floor summaries (aggregator/floor.c): a rack's summary from its gate
 * decision (headroom, limit, committed and reserved kW, failing checks,
 * missing inputs, the incident map's supply trend and checks), the
 * published summaries as GET /v1/floor[?rack=R] answers them, and the
 * per-rack metrics rendered from them, without a store, ledger or policy. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator.h"

/* A decision as rp_gate_evaluate answers it at 0 kW. */
static json_t *decision(const char *verdict, double power, bool thermal_missing) {
  json_t *checks = json_array();
  json_array_append_new(
      checks, json_pack("{s:s, s:f, s:b}", "name", "telemetry_fresh", "observed", 0.5, "pass", 1));
  json_array_append_new(checks, json_pack("{s:s, s:n, s:b}", "name", "flags", "observed", "pass",
                                          strcmp(verdict, "allow") == 0));
  json_array_append_new(checks, json_pack("{s:s, s:f, s:b, s:f}", "name", "supply_temp", "observed",
                                          31.5, "pass", 1, "limit", 40.0));
  json_array_append_new(checks, json_pack("{s:s, s:f, s:b, s:f, s:f, s:f, s:f, s:s}", "name",
                                          "power_headroom", "observed", power, "pass", power >= 0,
                                          "draw_kw", 80.0, "reserved_kw", 6.0, "committed_kw", 83.0,
                                          "derated_limit_kw", 96.0, "reason", "..."));
  if (thermal_missing)
    json_array_append_new(checks,
                          json_pack("{s:s, s:n, s:b, s:s}", "name", "thermal_headroom", "observed",
                                    "pass", 0, "reason", "cdu.heat_removed stale (fails closed)"));
  else
    json_array_append_new(checks, json_pack("{s:s, s:f, s:b}", "name", "thermal_headroom",
                                            "observed", 40.0, "pass", 1));
  return json_pack("{s:s, s:o}", "decision", verdict, "checks", checks);
}

static void test_summary(void **state) {
  (void)state;
  struct rp_aggregator a = {0};
  json_t *d = decision("deny", -2.0, true);
  json_t *s = rp_floor_summarize(&a, "r1", d, 1000);
  assert_non_null(s);
  assert_string_equal(json_string_value(json_object_get(s, "decision")), "deny");
  assert_true(json_number_value(json_object_get(s, "power_headroom_kw")) == -2.0);
  assert_true(json_is_null(json_object_get(s, "thermal_headroom_kw")));
  assert_true(json_number_value(json_object_get(s, "power_limit_kw")) == 96.0);
  assert_true(json_number_value(json_object_get(s, "committed_kw")) == 83.0);
  assert_true(json_number_value(json_object_get(s, "reserved_kw")) == 6.0);
  assert_true(json_number_value(json_object_get(s, "supply_temp")) == 31.5);
  assert_true(json_is_null(json_object_get(s, "delta_t")));
  /* Failing: flags, power, thermal; missing: only thermal (flags has no
   * value by design, power has one). */
  json_t *failing = json_object_get(s, "failing");
  assert_int_equal(json_array_size(failing), 3);
  assert_string_equal(json_string_value(json_object_get(json_array_get(failing, 2), "check")),
                      "thermal_headroom");
  json_t *missing = json_object_get(s, "missing");
  assert_int_equal(json_array_size(missing), 1);
  assert_string_equal(json_string_value(json_array_get(missing, 0)),
                      "thermal_headroom: cdu.heat_removed stale (fails closed)");
  json_decref(s);
  json_decref(d);
}

/* What the incident map needs: the supply limit and slope, the minutes to
 * the limit, the decision's checks; the whole floor without checks, one
 * rack with them. */
static void test_page_fields(void **state) {
  (void)state;
  struct rp_aggregator a = {0};
  assert_int_equal(rp_floor_new(&a.floor), 0);
  json_t *d = decision("allow", 12.5, false);
  json_array_append_new(
      json_object_get(d, "checks"),
      json_pack("{s:s, s:f, s:b}", "name", "supply_slope", "observed", 0.5, "pass", 1));
  json_t *s = rp_floor_summarize(&a, "r1", d, 1000);
  assert_non_null(s);
  assert_true(json_number_value(json_object_get(s, "supply_limit")) == 40.0);
  assert_true(json_number_value(json_object_get(s, "supply_slope_per_min")) == 0.5);
  assert_true(json_number_value(json_object_get(s, "time_to_limit_min")) == 17.0);
  assert_true(json_is_null(json_object_get(s, "thermal_capacity_kw"))); /* no policy */
  assert_true(json_equal(json_object_get(s, "checks"), json_object_get(d, "checks")));
  json_decref(d); /* the summary keeps its own checks */
  assert_int_equal(json_array_size(json_object_get(s, "checks")), 6);
  json_t *racks = json_object();
  json_object_set_new(racks, "r1", s);
  rp_floor_publish(&a, racks, 5000);

  json_t *all = rp_floor_json(&a, NULL, 6000);
  json_t *r1 = json_array_get(json_object_get(all, "racks"), 0);
  assert_int_equal(json_array_size(json_object_get(all, "racks")), 1);
  assert_null(json_object_get(r1, "checks"));
  assert_true(json_number_value(json_object_get(r1, "time_to_limit_min")) == 17.0);
  assert_true(json_number_value(json_object_get(r1, "age_s")) == 5.0);
  json_decref(all);
  json_t *one = rp_floor_json(&a, "r1", 6000);
  r1 = json_array_get(json_object_get(one, "racks"), 0);
  assert_int_equal(json_array_size(json_object_get(r1, "checks")), 6);
  json_decref(one);
  json_t *none = rp_floor_json(&a, "r2", 6000);
  assert_int_equal(json_array_size(json_object_get(none, "racks")), 0);
  json_decref(none);
  rp_floor_free(a.floor);
}

static void test_metrics(void **state) {
  (void)state;
  struct rp_aggregator a = {0};
  assert_int_equal(rp_floor_new(&a.floor), 0);
  json_t *racks = json_object();
  json_t *d1 = decision("allow", 12.5, false), *d2 = decision("deny", -2.0, true);
  json_object_set_new(racks, "r1", rp_floor_summarize(&a, "r1", d1, 1000));
  json_object_set_new(racks, "r\"2", rp_floor_summarize(&a, "r\"2", d2, 1000));
  json_decref(d1);
  json_decref(d2);
  rp_floor_publish(&a, racks, 5000);
  rp_floor_agent_health(a.floor, "agent-1", "r1", 100, 42, 3, 250);
  rp_floor_agent_health(a.floor, "agent-1", "r1", 50, 7, 0, 0); /* older: ignored */
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  rp_floor_metrics(&a, out, 6500);
  fclose(out);
  const char *want[] = {
      "rackpulse_rack_headroom_kw{rack=\"r1\",kind=\"power\"} 12.5\n",
      "rackpulse_rack_headroom_kw{rack=\"r1\",kind=\"thermal\"} 40\n",
      "rackpulse_rack_headroom_kw{rack=\"r\\\"2\",kind=\"power\"} -2\n",
      "rackpulse_rack_power_limit_kw{rack=\"r1\"} 96\n",
      "rackpulse_rack_committed_kw{rack=\"r1\"} 83\n",
      "rackpulse_rack_reserved_kw{rack=\"r1\"} 6\n",
      "rackpulse_rack_allowed{rack=\"r1\"} 1\n",
      "rackpulse_rack_allowed{rack=\"r\\\"2\"} 0\n",
      "rackpulse_rack_check_failing{rack=\"r\\\"2\",check=\"thermal_headroom\"} 1\n",
      "rackpulse_rack_missing_inputs{rack=\"r\\\"2\"} 1\n",
      "rackpulse_floor_evaluation_age_seconds 1.500\n",
      "rackpulse_agent_spool_depth{agent=\"agent-1\",rack=\"r1\"} 42\n",
      "rackpulse_agent_frames_dropped_total{agent=\"agent-1\",rack=\"r1\"} 3\n",
      "rackpulse_agent_delivery_latency_seconds{agent=\"agent-1\",rack=\"r1\"} 0.25\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strstr(text, want[i]) == NULL)
      fail_msg("missing line: %s\nin:\n%s", want[i], text);
  /* No headroom line for a value the rack does not have. */
  assert_null(strstr(text, "rackpulse_rack_headroom_kw{rack=\"r\\\"2\",kind=\"thermal\"}"));
  assert_null(strstr(text, "rackpulse_rack_check_failing{rack=\"r1\""));
  free(text);
  rp_floor_free(a.floor);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_summary),
      cmocka_unit_test(test_page_fields),
      cmocka_unit_test(test_metrics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
