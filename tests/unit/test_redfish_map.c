/*
 * test_redfish_map.c: unit tests for the Redfish collector's pure part
 * (agent/redfish/redfish_map.c): DMTF resources (as the simulator and
 * real services write them) to readings with the metric names and units
 * of the other collectors; absent readings, Status.State and values that
 * are not numbers as statuses, never zeroes; leak detector states; the
 * forced status of a resource that could not be read; a profile's OEM
 * readings by JSON pointer; expanded collections; ThermalMetrics; the
 * older Thermal and Power resources.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/redfish/redfish_map.h"

static struct rf_out out;

static int setup(void **state) {
  (void)state;
  memset(&out, 0, sizeof(out));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rf_out_free(&out);
  return 0;
}

static json_t *doc(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  if (j == NULL)
    fail_msg("bad fixture JSON: %s at %d", e.text, e.line);
  return j;
}

static size_t map(enum rf_kind k, const char *text, const struct rf_map_ctx *ctx) {
  struct rf_map_ctx none = {.uri = "/x"};
  json_t *j = doc(text);
  size_t n = rf_map(k, j, ctx ? ctx : &none, &out);
  json_decref(j);
  rf_out_finish(&out);
  return n;
}

/* The reading named `name` with label value `lv` (NULL: any). */
static const struct rp_reading *find(const char *name, const char *lv) {
  for (size_t i = 0; i < out.n; i++) {
    const struct rp_reading *r = &out.items[i].r;
    if (strcmp(r->name, name) != 0)
      continue;
    if (lv == NULL)
      return r;
    for (size_t j = 0; j < r->nlabels; j++)
      if (strcmp(r->labels[j].value, lv) == 0)
        return r;
  }
  fail_msg("no reading %s (%s)", name, lv ? lv : "-");
  return NULL;
}

static void test_coolant_connector(void **state) {
  (void)state;
  size_t n =
      map(RF_K_CONN_SECONDARY,
          "{\"@odata.id\": \"/redfish/v1/ThermalEquipment/CDUs/1/SecondaryCoolantConnectors/1\","
          " \"Id\": \"1\", \"Status\": {\"State\": \"Enabled\", \"Health\": \"OK\"},"
          " \"SupplyTemperatureCelsius\": {\"Reading\": 31.7},"
          " \"ReturnTemperatureCelsius\": {\"Reading\": 41.9},"
          " \"FlowLitersPerMinute\": {\"Reading\": 118.4},"
          " \"DeltaPressurekPa\": {\"Reading\": 85}}",
          NULL);
  assert_int_equal(n, 4); /* absent optional pressures are not readings */
  const struct rp_reading *r = find("cdu.supply_temp", NULL);
  assert_string_equal(r->unit, "Cel");
  assert_int_equal(r->status, RP_READING_OK);
  assert_true(fabs(r->value - 31.7) < 1e-9);
  assert_true(fabs(find("cdu.return_temp", NULL)->value - 41.9) < 1e-9);
  assert_string_equal(find("cdu.flow", NULL)->unit, "L/min");
  assert_string_equal(find("cdu.dp", NULL)->unit, "kPa");
  assert_int_equal(find("cdu.flow", NULL)->nlabels, 0);
}

static void test_absent_reading_is_status(void **state) {
  (void)state;
  map(RF_K_CONN_SECONDARY,
      "{\"@odata.id\": \"/c/1\", \"SupplyTemperatureCelsius\": {\"Reading\": null},"
      " \"ReturnTemperatureCelsius\": {\"Reading\": \"hot\"}}",
      NULL);
  const struct rp_reading *s = find("cdu.supply_temp", NULL);
  assert_int_equal(s->status, RP_READING_ABSENT);
  assert_non_null(strstr(s->detail, "/c/1"));
  assert_non_null(strstr(s->detail, "SupplyTemperatureCelsius"));
  assert_int_equal(find("cdu.return_temp", NULL)->status, RP_READING_ERROR);
  /* Flow is a property every connector has: missing is absent, not 0. */
  assert_int_equal(find("cdu.flow", NULL)->status, RP_READING_ABSENT);
}

static void test_state_absent(void **state) {
  (void)state;
  map(RF_K_PUMP,
      "{\"Id\": \"2\", \"Status\": {\"State\": \"Absent\"}, \"PumpSpeedPercent\": {\"Reading\": "
      "0}}",
      NULL);
  const struct rp_reading *r = find("cdu.pump_speed", "2");
  assert_int_equal(r->status, RP_READING_ABSENT);
  assert_non_null(strstr(r->detail, "Status.State Absent"));
}

static void test_expanded_sensors(void **state) {
  (void)state;
  struct rf_map_ctx ctx = {.uri = "/s", .sensor_psu = true};
  size_t n = map(
      RF_K_SENSOR,
      "{\"Members\": ["
      " {\"@odata.id\": \"/s/GPU3Temp\", \"Id\": \"GPU3Temp\", \"ReadingType\": \"Temperature\","
      "  \"ReadingUnits\": \"Cel\", \"PhysicalContext\": \"GPU\", \"Reading\": 63.5},"
      " {\"Id\": \"Intake\", \"ReadingType\": \"Temperature\", \"PhysicalContext\": \"Intake\","
      "  \"Reading\": 24},"
      " {\"Id\": \"PSU1InputPower\", \"ReadingType\": \"Power\", \"PhysicalContext\": "
      "\"PowerSupply\", \"Reading\": 2590},"
      " {\"Id\": \"TotalPower\", \"ReadingType\": \"Power\", \"PhysicalContext\": \"Chassis\","
      "  \"Reading\": 5200},"
      " {\"@odata.id\": \"/s/not-expanded\"}]}",
      &ctx);
  assert_int_equal(n, 3); /* the chassis total comes from EnvironmentMetrics */
  const struct rp_reading *g = find("gpu.temp", "3");
  assert_string_equal(g->labels[0].key, "gpu");
  assert_true(g->value == 63.5);
  assert_true(find("server.inlet_temp", NULL)->value == 24);
  assert_true(find("psu.input_power", "1")->value == 2590);
}

static void test_sensor_psu_left_to_power_subsystem(void **state) {
  (void)state;
  struct rf_map_ctx ctx = {.uri = "/s", .sensor_psu = false};
  size_t n = map(RF_K_SENSOR,
                 "{\"Id\": \"PSU1InputPower\", \"ReadingType\": \"Power\","
                 " \"PhysicalContext\": \"PowerSupply\", \"Reading\": 2590}",
                 &ctx);
  assert_int_equal(n, 0);
}

static void test_leak_detectors(void **state) {
  (void)state;
  map(RF_K_LEAK,
      "{\"Members\": [{\"Id\": \"1\", \"DetectorState\": \"OK\"},"
      " {\"Id\": \"2\", \"DetectorState\": \"Critical\"},"
      " {\"Id\": \"3\", \"DetectorState\": \"Warning\"},"
      " {\"Id\": \"4\", \"Status\": {\"State\": \"Enabled\"}},"
      " {\"Id\": \"5\", \"DetectorState\": \"Wet?\"}]}",
      NULL);
  assert_int_equal(out.n, 5);
  assert_true(find("cdu.alarms", "1")->value == 0);
  assert_true(find("cdu.alarms", "2")->value == 1);
  assert_true(find("cdu.alarms", "3")->value == 1);
  assert_int_equal(find("cdu.alarms", "4")->status, RP_READING_ABSENT);
  assert_int_equal(find("cdu.alarms", "5")->status, RP_READING_ERROR);
  const struct rp_reading *r = find("cdu.alarms", "2");
  assert_string_equal(r->labels[0].key, "alarm");
  assert_string_equal(r->labels[0].value, "leak");
  assert_string_equal(r->labels[1].key, "detector");
}

static void test_forced_status(void **state) {
  (void)state;
  struct rf_map_ctx ctx = {
      .uri = "/m", .force = RP_READING_ERROR, .force_detail = "/m: malformed JSON"};
  map(RF_K_MAINS, "{\"Id\": \"1\", \"PowerWatts\": {\"Reading\": 21000}}", &ctx);
  const struct rp_reading *r = find("pdu.power", "1");
  assert_int_equal(r->status, RP_READING_ERROR);
  assert_string_equal(r->detail, "/m: malformed JSON");
}

static void test_pdu(void **state) {
  (void)state;
  map(RF_K_MAINS,
      "{\"Id\": \"2\", \"PowerWatts\": {\"Reading\": 20500, \"PowerFactor\": 0.98},"
      " \"CurrentAmps\": {\"Reading\": 29.6}, \"Voltage\": {\"Reading\": 400},"
      " \"EnergykWh\": {\"Reading\": 120001.2}}",
      NULL);
  const struct rp_reading *p = find("pdu.power", "2");
  assert_string_equal(p->unit, "W");
  assert_string_equal(p->labels[0].key, "inlet");
  assert_true(p->value == 20500);
  assert_string_equal(find("pdu.energy", "2")->unit, "kWh");
  map(RF_K_OUTLET, "{\"Id\": \"12\", \"PowerWatts\": {\"Reading\": 450}, \"CurrentAmps\": null}",
      NULL);
  assert_true(find("pdu.outlet.power", "12")->value == 450);
  assert_int_equal(find("pdu.outlet.current", "12")->status, RP_READING_ABSENT);
  map(RF_K_BRANCH,
      "{\"Id\": \"3\", \"CurrentAmps\": {\"Reading\": 14.2}, \"RatedCurrentAmps\": 32}", NULL);
  assert_true(find("pdu.breaker.rating", "3")->value == 32);
}

static void test_environment_and_shelf(void **state) {
  (void)state;
  map(RF_K_ENV, "{\"PowerWatts\": {\"Reading\": 5200}}", NULL);
  assert_true(find("server.power", NULL)->value == 5200);
  rf_out_reset(&out);
  struct rf_map_ctx shelf = {
      .uri = "/e", .shelf = true, .many = true, .unit = "PS1", .unit_key = "chassis"};
  map(RF_K_ENV, "{\"PowerWatts\": {\"Reading\": 31500}}", &shelf);
  const struct rp_reading *r = find("shelf.power", "PS1");
  assert_string_equal(r->labels[0].key, "chassis");
}

static void test_oem_profile(void **state) {
  (void)state;
  struct rf_oem oem[] = {
      {.kind = RF_K_CDU,
       .pointer = "/Oem/Contoso/FacilityValvePercent",
       .metric = "cdu.valve_position",
       .unit = "%",
       .scale = 1,
       .decimals = 1},
      {.kind = RF_K_CDU,
       .pointer = "/Oem/Contoso/Missing",
       .metric = "cdu.x",
       .unit = "",
       .scale = 1},
      {.kind = RF_K_PDU, .pointer = "/Oem/Other", .metric = "pdu.y", .scale = 1},
  };
  struct rf_map_ctx ctx = {.uri = "/cdu", .oem = oem, .noem = 3};
  map(RF_K_CDU, "{\"Oem\": {\"Contoso\": {\"FacilityValvePercent\": 45.5}}}", &ctx);
  assert_int_equal(out.n, 2);
  assert_true(find("cdu.valve_position", NULL)->value == 45.5);
  assert_int_equal(find("cdu.x", NULL)->status, RP_READING_ABSENT);
}

static void test_pointer(void **state) {
  (void)state;
  json_t *j = doc("{\"a/b\": {\"c~d\": [1, {\"e\": 7}]}}");
  assert_true(json_integer_value(rf_pointer(j, "/a~1b/c~0d/1/e")) == 7);
  assert_null(rf_pointer(j, "/a~1b/c~0d/9"));
  assert_null(rf_pointer(j, "/a~1b/c~0d/x"));
  assert_null(rf_pointer(j, "nope"));
  assert_ptr_equal(rf_pointer(j, ""), j);
  json_decref(j);
}

static void test_legacy_thermal_power(void **state) {
  (void)state;
  struct rf_map_ctx ctx = {.uri = "/p", .legacy_total = true, .legacy_psu = true};
  map(RF_K_LEGACY_POWER,
      "{\"PowerControl\": [{\"PowerConsumedWatts\": 5100}],"
      " \"PowerSupplies\": [{\"MemberId\": \"0\", \"PowerInputWatts\": 2600},"
      "  {\"MemberId\": \"1\", \"PowerInputWatts\": null, \"Status\": {\"State\": \"Absent\"}}]}",
      &ctx);
  assert_true(find("server.power", NULL)->value == 5100);
  assert_true(find("psu.input_power", "0")->value == 2600);
  assert_int_equal(find("psu.input_power", "1")->status, RP_READING_ABSENT);
  map(RF_K_LEGACY_THERMAL,
      "{\"Temperatures\": [{\"Name\": \"GPU2 Temp\", \"ReadingCelsius\": 60, \"PhysicalContext\": "
      "\"GPU\"}, {\"Name\": \"Inlet\", \"ReadingCelsius\": 23.5, \"PhysicalContext\": \"Intake\"}],"
      " \"Fans\": [{\"MemberId\": \"0\", \"Reading\": 9100, \"ReadingUnits\": \"RPM\"}]}",
      NULL);
  assert_true(find("gpu.temp", "2")->value == 60);
  assert_true(find("server.inlet_temp", NULL)->value == 23.5);
  assert_string_equal(find("fan.speed", "0")->unit, "rpm");
}

static void test_thermal_metrics(void **state) {
  (void)state;
  map(RF_K_THERMAL_METRICS,
      "{\"TemperatureSummaryCelsius\": {\"Intake\": {\"Reading\": 24}, \"Exhaust\": {\"Reading\": "
      "null}},"
      " \"TemperatureReadingsCelsius\": [{\"DataSourceUri\": \"/c/Sensors/GPU1Temp\","
      " \"PhysicalContext\": \"GPU\", \"Reading\": 62.5}, {\"DeviceName\": \"Intake\","
      " \"PhysicalContext\": \"Intake\", \"Reading\": 99}]}",
      NULL);
  assert_int_equal(out.n, 3); /* the intake excerpt is the summary's */
  assert_true(find("server.inlet_temp", NULL)->value == 24);
  assert_int_equal(find("server.exhaust_temp", NULL)->status, RP_READING_ABSENT);
  assert_true(find("gpu.temp", "1")->value == 62.5);
}

static void test_kind_names(void **state) {
  (void)state;
  for (int k = 0; k < RF_K_COUNT; k++)
    assert_int_equal(rf_kind_parse(rf_kind_name((enum rf_kind)k)), k);
  assert_int_equal(rf_kind_parse("nope"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_coolant_connector, setup, teardown),
      cmocka_unit_test_setup_teardown(test_absent_reading_is_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_state_absent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expanded_sensors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sensor_psu_left_to_power_subsystem, setup, teardown),
      cmocka_unit_test_setup_teardown(test_leak_detectors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forced_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pdu, setup, teardown),
      cmocka_unit_test_setup_teardown(test_environment_and_shelf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oem_profile, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pointer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_legacy_thermal_power, setup, teardown),
      cmocka_unit_test_setup_teardown(test_thermal_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kind_names, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
