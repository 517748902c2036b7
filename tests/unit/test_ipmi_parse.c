/*
 * test_ipmi_parse.c: unit tests of agent/ipmi/ipmi_parse.c (and of the
 * classification of what it parsed) over the captured and documented
 * ipmitool outputs in tests/fixtures/ipmitool/ (see its README):
 * exact values, units and statuses; no-reading, disabled and unknown-unit
 * sensors; garbage and truncated output; DCMI supported and unsupported;
 * vendor sensor names classified with their labels (the classifier's own
 * tests are test_ipmi_classify.c).
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

/* --------------------------------------------------- ipmi_sim captures */

static void test_sim_sdr_elist(void **state) {
  struct ipmi_reading r[MAXR];
  struct ipmi_parse_stats st;
  char err[160];
  size_t n = parse_file("ipmi_sim-sdr-elist.txt", r, &st, err, sizeof(err));
  const struct ipmi_reading *x;

  (void)state;
  assert_int_equal(n, 11);
  assert_int_equal(st.lines, 11);
  assert_int_equal(st.malformed, 0);
  assert_false(st.truncated);
  assert_string_equal(err, "");

  x = find(r, n, "Inlet Temp");
  expect(x, 24, "Cel", IPMI_ST_OK);
  assert_int_equal(x->sensor_num, 0x01);
  assert_string_equal(x->entity, "7.1");
  assert_string_equal(x->raw_status, "ok");
  assert_int_equal(x->line, 1);
  expect(find(r, n, "Exhaust Temp"), 38, "Cel", IPMI_ST_OK);
  expect(find(r, n, "GPU1 Temp"), 65, "Cel", IPMI_ST_OK);
  expect(find(r, n, "GPU2 Temp"), 67, "Cel", IPMI_ST_OK);
  expect(find(r, n, "GPU3 Temp"), 71, "Cel", IPMI_ST_OK);
  x = find(r, n, "GPU4 Temp");
  expect(x, 73, "Cel", IPMI_ST_OK);
  assert_string_equal(x->entity, "11.4");
  expect(find(r, n, "CPU1 Temp"), 55, "Cel", IPMI_ST_OK);
  expect(find(r, n, "FAN1 RPM"), 9000, "rpm", IPMI_ST_OK);
  x = find(r, n, "PS2 Input Power");
  expect(x, 1460, "W", IPMI_ST_OK);
  assert_int_equal(x->sensor_num, 0x0a);
  x = find(r, n, "PS1 Status");
  expect_novalue(x, IPMI_ST_DISCRETE, "Presence detected");
  assert_string_equal(x->unit, "");
  assert_true(isnan(x->thresh[IPMI_UCR]));
}

static void test_sim_alarm_sdr_elist(void **state) {
  struct ipmi_reading r[MAXR];
  size_t n = parse_file("ipmi_sim-alarm-sdr-elist.txt", r, NULL, NULL, 0);
  const struct ipmi_reading *x;

  (void)state;
  assert_int_equal(n, 11);
  expect(find(r, n, "Exhaust Temp"), 42, "Cel", IPMI_ST_OK);
  x = find(r, n, "GPU3 Temp");
  expect(x, 92, "Cel", IPMI_ST_CR);
  assert_string_equal(x->raw_status, "ucr");
  x = find(r, n, "GPU4 Temp");
  expect(x, 97, "Cel", IPMI_ST_NR);
  assert_string_equal(x->raw_status, "unr");
  x = find(r, n, "FAN1 RPM");
  expect(x, 800, "rpm", IPMI_ST_CR);
  assert_string_equal(x->raw_status, "lcr");
  expect_novalue(find(r, n, "PS1 Status"), IPMI_ST_DISCRETE, "Presence detected, Failure detected");
}

static void test_sim_sensor(void **state) {
  struct ipmi_reading r[MAXR];
  size_t n = parse_file("ipmi_sim-sensor.txt", r, NULL, NULL, 0);
  const struct ipmi_reading *x;

  (void)state;
  assert_int_equal(n, 11);
  x = find(r, n, "Inlet Temp");
  expect(x, 24, "Cel", IPMI_ST_OK);
  assert_int_equal(x->sensor_num, -1);
  assert_string_equal(x->entity, "");
  assert_true(isnan(x->thresh[IPMI_LNR]));
  assert_true(isnan(x->thresh[IPMI_LCR]));
  assert_true(isnan(x->thresh[IPMI_LNC]));
  assert_true(x->thresh[IPMI_UNC] == 40);
  assert_true(x->thresh[IPMI_UCR] == 45);
  assert_true(x->thresh[IPMI_UNR] == 50);
  x = find(r, n, "FAN1 RPM");
  expect(x, 9000, "rpm", IPMI_ST_OK);
  assert_true(x->thresh[IPMI_LNR] == 500);
  assert_true(x->thresh[IPMI_LCR] == 1000);
  assert_true(x->thresh[IPMI_LNC] == 2000);
  assert_true(isnan(x->thresh[IPMI_UNC]));
  x = find(r, n, "PS1 Input Power");
  expect(x, 1440, "W", IPMI_ST_OK);
  assert_true(x->thresh[IPMI_UNR] == 5000);
  expect_novalue(find(r, n, "PS1 Status"), IPMI_ST_DISCRETE, "0x0100");
}

static void test_sim_alarm_sensor(void **state) {
  struct ipmi_reading r[MAXR];
  size_t n = parse_file("ipmi_sim-alarm-sensor.txt", r, NULL, NULL, 0);

  (void)state;
  assert_int_equal(n, 11);
  expect(find(r, n, "GPU3 Temp"), 92, "Cel", IPMI_ST_CR);
  expect(find(r, n, "GPU4 Temp"), 97, "Cel", IPMI_ST_NR);
  expect(find(r, n, "FAN1 RPM"), 800, "rpm", IPMI_ST_CR);
  expect_novalue(find(r, n, "PS1 Status"), IPMI_ST_DISCRETE, "0x0300");
}

static void test_sim_csv(void **state) {
  struct ipmi_reading r[MAXR];
  size_t n;
  const struct ipmi_reading *x;

  (void)state;
  n = parse_file("ipmi_sim-sdr-elist-csv.txt", r, NULL, NULL, 0);
  assert_int_equal(n, 11);
  expect(find(r, n, "Inlet Temp"), 24, "Cel", IPMI_ST_OK);
  expect(find(r, n, "PS1 Input Power"), 1440, "W", IPMI_ST_OK);
  x = find(r, n, "PS1 Status");
  expect_novalue(x, IPMI_ST_DISCRETE, "Presence detected");
  assert_int_equal(x->sensor_num, 0x0b);
  assert_string_equal(x->entity, "10.1");

  n = parse_file("ipmi_sim-alarm-sdr-elist-csv.txt", r, NULL, NULL, 0);
  assert_int_equal(n, 11);
  expect(find(r, n, "GPU4 Temp"), 97, "Cel", IPMI_ST_NR);
  expect_novalue(find(r, n, "PS1 Status"), IPMI_ST_DISCRETE, "Presence detected, Failure detected");

  n = parse_file("ipmi_sim-sensor-csv.txt", r, NULL, NULL, 0);
  assert_int_equal(n, 11);
  x = find(r, n, "CPU1 Temp");
  expect(x, 55, "Cel", IPMI_ST_OK);
  assert_true(x->thresh[IPMI_UNR] == 100);
  expect_novalue(find(r, n, "PS1 Status"), IPMI_ST_DISCRETE, "0x0100");

  n = parse_file("ipmi_sim-alarm-sensor-csv.txt", r, NULL, NULL, 0);
  assert_int_equal(n, 11);
  expect(find(r, n, "FAN1 RPM"), 800, "rpm", IPMI_ST_CR);
}

/* sdrcomp without -8 packs "FAN1 RPM" as 6-bit ASCII: ipmitool prints
 * garbage bytes for the name; that line is skipped, the others kept. */
static void test_sim_6bit_name(void **state) {
  struct ipmi_reading r[MAXR];
  struct ipmi_parse_stats st;
  char err[160];
  size_t n = parse_file("ipmi_sim-6bit-name-sdr-elist.txt", r, &st, err, sizeof(err));

  (void)state;
  assert_int_equal(n, 10);
  assert_int_equal(st.malformed, 1);
  assert_non_null(strstr(err, "line 8: unprintable byte"));
  /* the thresholds were not set yet: 0 everywhere, so "unr" */
  expect(find(r, n, "PS2 Input Power"), 1460, "W", IPMI_ST_NR);
}

/* The stdout of `ipmitool shell` with "sdr elist", "dcmi power reading",
 * "sdr elist", "exit": prompts and blank lines are ignored. */
static void test_sim_shell(void **state) {
  struct ipmi_reading r[MAXR];
  struct ipmi_parse_stats st;
  struct ipmi_dcmi_power p;
  char err[160];
  size_t n = parse_file("ipmi_sim-shell-stdout.txt", r, &st, err, sizeof(err));
  size_t len;
  char *buf;

  (void)state;
  assert_int_equal(n, 22);
  assert_int_equal(st.malformed, 0);
  assert_int_equal(st.ignored, 5);
  expect(find_nth(r, n, "GPU4 Temp", 1), 73, "Cel", IPMI_ST_OK);

  buf = load("ipmi_sim-shell-stderr.txt", &len);
  assert_int_equal(ipmi_parse_dcmi_power(buf, len, &p, err, sizeof(err)), -ENOTSUP);
  free(buf);
}

/* ------------------------------------------------------------- vendors */

static void test_dell(void **state) {
  struct ipmi_reading r[MAXR];
  size_t n = parse_file("dell-idrac-sdr-elist.txt", r, NULL, NULL, 0);
  const struct ipmi_reading *x;

  (void)state;
  assert_int_equal(n, 24);
  expect(find(r, n, "Fan1A"), 11280, "rpm", IPMI_ST_OK);
  expect_novalue(find(r, n, "Fan6A"), IPMI_ST_NA, "");
  expect(find(r, n, "Current 1"), 5.2, "A", IPMI_ST_OK);
  expect_novalue(find(r, n, "Current 2"), IPMI_ST_NA, "");
  expect(find(r, n, "Voltage 1"), 230, "V", IPMI_ST_OK);
  expect(find(r, n, "Pwr Consumption"), 4620, "W", IPMI_ST_OK);
  expect(find(r, n, "CPU Usage"), 38, "%", IPMI_ST_OK);
  x = find(r, n, "Airflow"); /* CFM: a number in an unknown unit */
  expect(x, 612, "CFM", IPMI_ST_UNKNOWN_UNIT);
  assert_string_equal(x->raw_status, "ok");
  expect_novalue(find(r, n, "Intrusion"), IPMI_ST_DISCRETE, "");
  expect_novalue(find_nth(r, n, "Status", 2), IPMI_ST_DISCRETE,
                 "Presence detected, Power Supply AC lost");

  /* Dell names both CPU temperatures "Temp": the entity tells them */
  expect_class(find_nth(r, n, "Temp", 0), NULL, 0, "cpu.temp", "cpu", "1");
  expect_class(find_nth(r, n, "Temp", 1), NULL, 0, "cpu.temp", "cpu", "2");
  expect_class(find(r, n, "Fan1B"), NULL, 0, "fan.speed", "fan", "1B");
  expect_class(find(r, n, "Fan6A"), NULL, 0, "fan.speed", "fan", "6A");
  expect_class(find(r, n, "Inlet Temp"), NULL, 0, "server.inlet_temp", NULL, NULL);
  expect_class(find(r, n, "Exhaust Temp"), NULL, 0, "server.exhaust_temp", NULL, NULL);
  expect_class(find(r, n, "Pwr Consumption"), NULL, 0, "server.input_power", NULL, NULL);
  expect_class(find(r, n, "Fan Redundancy"), NULL, 0, NULL, NULL, NULL);
  expect_class(find(r, n, "Airflow"), NULL, 0, NULL, NULL, NULL);
}

static void test_hpe(void **state) {
  static const struct ipmi_pattern user[] = {
      {"*-GPU #", "Cel", NULL, "gpu.temp", "gpu"},
  };
  struct ipmi_reading r[MAXR];
  struct ipmi_power_sum sum;
  size_t n = parse_file("hpe-ilo-sdr-elist.txt", r, NULL, NULL, 0);

  (void)state;
  assert_int_equal(n, 18);
  expect(find(r, n, "01-Inlet Ambient"), 22, "Cel", IPMI_ST_OK);
  expect(find(r, n, "22-GPU 2"), 86, "Cel", IPMI_ST_NC);
  expect_novalue(find(r, n, "23-GPU 3"), IPMI_ST_DISABLED, "");
  expect(find(r, n, "Fan 1"), 36.47, "%", IPMI_ST_OK);
  expect(find(r, n, "Power Supply 2"), 1200, "W", IPMI_ST_OK);

  expect_class(find(r, n, "01-Inlet Ambient"), NULL, 0, "server.inlet_temp", NULL, NULL);
  expect_class(find(r, n, "15-P/S 1 Inlet"), NULL, 0, "psu.temp", "psu", "1");
  expect_class(find(r, n, "02-CPU 1"), NULL, 0, "cpu.temp", "cpu", "1");
  expect_class(find(r, n, "30-Sys Exhaust"), NULL, 0, "server.exhaust_temp", NULL, NULL);
  expect_class(find(r, n, "Fan 2"), NULL, 0, "fan.duty", "fan", "2");
  expect_class(find(r, n, "Power Meter"), NULL, 0, "server.input_power", NULL, NULL);
  /* HPE's GPU names need a config row */
  expect_class(find(r, n, "21-GPU 1"), NULL, 0, NULL, NULL, NULL);
  expect_class(find(r, n, "21-GPU 1"), user, 1, "gpu.temp", "gpu", "1");
  expect_class(find(r, n, "23-GPU 3"), user, 1, "gpu.temp", "gpu", "3");

  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_COMPLETE);
  assert_true(sum.watts == 2380);
  assert_int_equal(sum.used, 2);
  assert_int_equal(sum.missing, 0);
}

static void test_supermicro(void **state) {
  struct ipmi_reading r[MAXR];
  struct ipmi_power_sum sum;
  size_t n = parse_file("supermicro-sdr-elist.txt", r, NULL, NULL, 0);
  const struct ipmi_reading *x;

  (void)state;
  assert_int_equal(n, 24);
  expect(find(r, n, "GPU1 Temp"), 52, "Cel", IPMI_ST_OK);
  expect_novalue(find(r, n, "GPU5 Temp"), IPMI_ST_NA, "");
  expect(find(r, n, "GPU7 Temp"), 88, "Cel", IPMI_ST_NC);
  expect(find(r, n, "FAN6"), 420, "rpm", IPMI_ST_CR);
  expect(find(r, n, "12V"), 12.19, "V", IPMI_ST_OK);
  expect_novalue(find(r, n, "PS4 Status"), IPMI_ST_DISCRETE,
                 "Presence detected, Power Supply AC lost");
  expect_class(find(r, n, "GPU8 Temp"), NULL, 0, "gpu.temp", "gpu", "8");
  expect_class(find(r, n, "GPU5 Temp"), NULL, 0, "gpu.temp", "gpu", "5");
  expect_class(find(r, n, "CPU2 Temp"), NULL, 0, "cpu.temp", "cpu", "2");
  expect_class(find(r, n, "FAN1"), NULL, 0, "fan.speed", "fan", "1");
  expect_class(find(r, n, "System Temp"), NULL, 0, NULL, NULL, NULL);
  expect_class(find(r, n, "PS1 Status"), NULL, 0, NULL, NULL, NULL);
  /* no PSU power sensors at all: DCMI is the only source */
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_NONE);
  assert_true(isnan(sum.watts));

  n = parse_file("supermicro-sensor.txt", r, NULL, NULL, 0);
  assert_int_equal(n, 11);
  x = find(r, n, "12V");
  expect(x, 12.188, "V", IPMI_ST_OK);
  assert_true(x->thresh[IPMI_LNR] == 10.173);
  assert_true(x->thresh[IPMI_UNR] == 13.386);
  x = find(r, n, "GPU5 Temp"); /* no reading, but still degrees C */
  expect_novalue(x, IPMI_ST_NA, "");
  assert_string_equal(x->unit, "Cel");
  expect(find(r, n, "GPU7 Temp"), 88, "Cel", IPMI_ST_NC);
  x = find(r, n, "FAN5");
  expect_novalue(x, IPMI_ST_NA, "");
  assert_string_equal(x->unit, "rpm");
  expect(find(r, n, "FAN6"), 420, "rpm", IPMI_ST_CR);
  expect_novalue(find(r, n, "PS4 Status"), IPMI_ST_DISCRETE, "0x0900");
}

static void test_lenovo(void **state) {
  static const struct ipmi_pattern fans[] = {
      {"Fan # Front Tach", "rpm", NULL, "fan.front_speed", "fan"},
      {"Fan # Rear Tach", "rpm", NULL, "fan.rear_speed", "fan"},
  };
  struct ipmi_reading r[MAXR];
  struct ipmi_power_sum sum;
  size_t n = parse_file("lenovo-xcc-sdr-elist-csv.txt", r, NULL, NULL, 0);
  const struct ipmi_reading *x;

  (void)state;
  assert_int_equal(n, 17);
  expect(find(r, n, "Ambient Temp"), 24, "Cel", IPMI_ST_OK);
  expect_novalue(find(r, n, "GPU 3 Temp"), IPMI_ST_NA, "");
  expect(find(r, n, "GPU 4 Temp"), 91, "Cel", IPMI_ST_CR);
  x = find(r, n, "Sys Perf");
  expect(x, 87, "unspecified", IPMI_ST_UNKNOWN_UNIT);
  x = find(r, n, "PSU3");
  expect_novalue(x, IPMI_ST_DISCRETE, "Presence detected, Power Supply AC lost");
  assert_int_equal(x->sensor_num, 0xa3);
  expect_novalue(find(r, n, "Fan 2"), IPMI_ST_NA, "");

  expect_class(find(r, n, "Ambient Temp"), NULL, 0, "server.inlet_temp", NULL, NULL);
  expect_class(find(r, n, "GPU 1 Temp"), NULL, 0, "gpu.temp", "gpu", "1");
  expect_class(find(r, n, "GPU 3 Temp"), NULL, 0, "gpu.temp", "gpu", "3");
  expect_class(find(r, n, "PSU1 Output Power"), NULL, 0, "psu.output_power", "psu", "1");
  expect_class(find(r, n, "PSU2 Input Power"), NULL, 0, "psu.input_power", "psu", "2");
  /* two rotors of fan 1: the default rule gives both fan="1" ... */
  expect_class(find(r, n, "Fan 1 Front Tach"), NULL, 0, "fan.speed", "fan", "1");
  /* ... config rows keep them apart */
  expect_class(find(r, n, "Fan 1 Front Tach"), fans, 2, "fan.front_speed", "fan", "1");
  expect_class(find(r, n, "Fan 1 Rear Tach"), fans, 2, "fan.rear_speed", "fan", "1");

  /* PSU3 has no reading: the sum is a lower bound */
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_PARTIAL);
  assert_true(sum.watts == 1520 + 1490);
  assert_int_equal(sum.used, 2);
  assert_int_equal(sum.missing, 1);

  n = parse_file("lenovo-xcc-sensor-csv.txt", r, NULL, NULL, 0);
  assert_int_equal(n, 6);
  x = find(r, n, "Fan 1 Front Tach");
  expect(x, 9800, "rpm", IPMI_ST_OK);
  assert_true(x->thresh[IPMI_LCR] == 720);
  assert_true(isnan(x->thresh[IPMI_LNC]));
  expect(find(r, n, "GPU 4 Temp"), 91, "Cel", IPMI_ST_CR);
  expect_novalue(find(r, n, "GPU 3 Temp"), IPMI_ST_NA, "");
  expect_novalue(find(r, n, "PSU1"), IPMI_ST_DISCRETE, "0x0100");
}

static void test_dgx_style(void **state) {
  static const struct ipmi_pattern psu[] = {
      {"PSU#_PIN", "W", NULL, "psu.input_power", "psu"},
  };
  struct ipmi_reading r[MAXR];
  struct ipmi_power_sum sum;
  size_t n = parse_file("nvidia-dgx-style-sdr-elist-csv.txt", r, NULL, NULL, 0);

  (void)state;
  assert_int_equal(n, 28);
  expect(find(r, n, "GPU0_TEMP"), 38, "Cel", IPMI_ST_OK);
  expect_novalue(find(r, n, "GPU6_TEMP"), IPMI_ST_NA, "");
  expect(find(r, n, "GPU3_PWR"), 420, "W", IPMI_ST_OK);
  expect_novalue(find(r, n, "PSU4_STATUS"), IPMI_ST_NA, "");

  expect_class(find(r, n, "GPU0_TEMP"), NULL, 0, "gpu.temp", "gpu", "0");
  expect_class(find(r, n, "GPU6_TEMP"), NULL, 0, "gpu.temp", "gpu", "6");
  expect_class(find(r, n, "GPU7_PWR"), NULL, 0, "gpu.power", "gpu", "7");
  expect_class(find(r, n, "INLET_TEMP"), NULL, 0, "server.inlet_temp", NULL, NULL);
  expect_class(find(r, n, "FAN_1_F"), NULL, 0, "fan.speed", "fan", "1_F");
  expect_class(find(r, n, "FAN_1_R"), NULL, 0, "fan.speed", "fan", "1_R");

  /* The default table does not know "PSU0_PIN" ... */
  assert_int_equal(ipmi_sum_psu_input(r, n, NULL, 0, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_NONE);
  /* ... a config row does; PSU4 has no reading */
  assert_int_equal(ipmi_sum_psu_input(r, n, psu, 1, 0, 0, &sum), 0);
  assert_int_equal(sum.status, IPMI_SUM_PARTIAL);
  assert_true(sum.watts == 1650 + 1630 + 1645 + 1660 + 1640);
  assert_int_equal(sum.used, 5);
  assert_int_equal(sum.missing, 1);
  /* eight PSUs expected: two more missing */
  assert_int_equal(ipmi_sum_psu_input(r, n, psu, 1, 0, 8, &sum), 0);
  assert_int_equal(sum.missing, 3);
  assert_int_equal(sum.status, IPMI_SUM_PARTIAL);
}

/* ------------------------------------------------ garbage, truncation */

static void test_garbage(void **state) {
  static const char *const want[] = {"Inlet Temp",      "GPU1 Temp",       "FAN1 RPM",
                                     "PS1 Input Power", "PS2 Input Power", "CPU1 Temp"};
  struct ipmi_reading r[MAXR];
  struct ipmi_parse_stats st;
  char err[160];
  size_t n = parse_file("handmade-garbage-sdr-elist.txt", r, &st, err, sizeof(err));
  size_t i;

  (void)state;
  assert_int_equal(n, 6);
  for (i = 0; i < n; i++)
    assert_string_equal(r[i].name, want[i]);
  assert_int_equal(st.lines, 18);
  assert_int_equal(st.malformed, 10);
  assert_int_equal(st.ignored, 2);
  assert_false(st.truncated);
  assert_string_equal(err, "line 2: not a sensor line: "
                           "\"this is not a sensor line\"");
  expect(&r[5], 55, "Cel", IPMI_ST_OK);
  assert_int_equal(r[5].line, 18);
}

static void test_malformed_lines(void **state) {
  static const struct {
    const char *line;
    const char *why;
  } bad[] = {
      {"GPU2 Temp        | 04h | ok  | 11.2 | 6x5 degrees C", "reading is not a number"},
      {"GPU3 Temp        | ZZh | ok  | 11.3 | 71 degrees C", "bad sensor number"},
      {"GPU4 Temp        | 06h | hot | 11.4 | 73 degrees C", "unknown sensor status"},
      {"Exhaust Temp     | 02h | ok  | 7 | 38 degrees C", "bad entity id"},
      {"Inlet Temp       | 24.000     | degrees C  | warm  | na  | na"
       "  | na  | na  | na  | na",
       "unknown sensor status"},
      {"Inlet Temp       | 2.4.0      | degrees C  | ok    | na  | na"
       "  | na  | na  | na  | na",
       "reading is not a number"},
      {"Inlet Temp,24,degrees C", "not a sensor line"},
      {"Inlet Temp,24,degrees C,ok,extra", "unexpected number of CSV"},
      {"1234567890123456789012345678901234 | 01h | ok  |  7.1 | 1 RPM", "sensor name too long"},
      {"X | 01h | ok | 7.1 | 12345678901234567890 Watts", "reading is not a number"},
  };
  struct ipmi_reading r;
  char err[160];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = ipmi_parse_line(bad[i].line, strlen(bad[i].line), 3, &r, err, sizeof(err));
    if (rc != -EBADMSG || strstr(err, bad[i].why) == NULL || strncmp(err, "line 3: ", 8) != 0)
      fail_msg("\"%s\": rc %d, err \"%s\", want \"%s\"", bad[i].line, rc, err, bad[i].why);
  }
  /* a NUL byte inside a line */
  assert_int_equal(ipmi_parse_line("FAN1 | 10\0 RPM | ok", 19, 1, &r, err, sizeof(err)), -EBADMSG);
  /* CRLF line endings are fine */
  assert_int_equal(ipmi_parse_line("FAN1 | 10 RPM | ok\r", 19, 1, &r, err, sizeof(err)), 1);
  expect(&r, 10, "rpm", IPMI_ST_OK);
  /* an unnamed record is ignored, not a reading */
  assert_int_equal(ipmi_parse_line(" | 00h | ns  |  7.1 | Event-Only", 32, 1, &r, err, sizeof(err)),
                   0);
  /* err is optional, and is cut to errlen */
  assert_int_equal(ipmi_parse_line("garbage", 7, 1, &r, NULL, 0), -EBADMSG);
  assert_int_equal(ipmi_parse_line("garbage", 7, 1, &r, err, 8), -EBADMSG);
  assert_string_equal(err, "line 1:");
}

/* Copy buf[0..len) into a buffer of exactly len bytes, so that the
 * sanitizer sees any read past the end. */
static char *exact_copy(const char *buf, size_t len) {
  char *p = malloc(len ? len : 1);

  assert_non_null(p);
  memcpy(p, buf, len);
  return p;
}

static void check_prefixes(const char *fixture) {
  struct ipmi_reading full[MAXR], r[MAXR];
  struct ipmi_parse_stats st;
  size_t len, nfull, cut, i;
  char *buf = load(fixture, &len);
  char err[160];

  assert_int_equal(ipmi_parse_sensors(buf, len, full, MAXR, &nfull, NULL, NULL, 0), 0);
  for (cut = 0; cut <= len; cut++) {
    char *p = exact_copy(buf, cut);
    size_t n, complete = 0;
    int rc = ipmi_parse_sensors(p, cut, r, MAXR, &n, &st, err, sizeof(err));

    assert_int_equal(rc, 0);
    for (i = 0; i < cut; i++)
      complete += buf[i] == '\n';
    assert_int_equal(st.lines - (st.truncated ? 1 : 0), complete);
    assert_int_equal(st.truncated, cut > 0 && buf[cut - 1] != '\n');
    if (st.truncated && st.malformed == 0) /* err tells the first */
      assert_non_null(strstr(err, "truncated"));
    /* what was parsed is exactly a prefix of the full parse */
    assert_true(n <= nfull);
    for (i = 0; i < n; i++) {
      assert_string_equal(r[i].name, full[i].name);
      assert_memory_equal(&r[i].status, &full[i].status, sizeof(r[i].status));
      assert_true(r[i].value == full[i].value || (isnan(r[i].value) && isnan(full[i].value)));
    }
    free(p);
  }
  free(buf);
}

static void test_truncated(void **state) {
  (void)state;
  check_prefixes("ipmi_sim-sdr-elist.txt");
  check_prefixes("ipmi_sim-alarm-sensor.txt");
  check_prefixes("lenovo-xcc-sdr-elist-csv.txt");
  check_prefixes("handmade-garbage-sdr-elist.txt");
}

static void test_enobufs(void **state) {
  struct ipmi_reading r[3];
  struct ipmi_parse_stats st;
  size_t len, n;
  char *buf = load("ipmi_sim-sdr-elist.txt", &len);

  (void)state;
  assert_int_equal(ipmi_parse_sensors(buf, len, r, 3, &n, &st, NULL, 0), -ENOBUFS);
  assert_int_equal(n, 3);
  assert_int_equal(st.readings, 3);
  assert_int_equal(st.dropped, 8);
  assert_string_equal(r[2].name, "GPU1 Temp");
  assert_int_equal(ipmi_parse_sensors(buf, len, NULL, 0, &n, &st, NULL, 0), -ENOBUFS);
  assert_int_equal(n, 0);
  assert_int_equal(ipmi_parse_sensors(NULL, 0, r, 3, &n, &st, NULL, 0), 0);
  assert_int_equal(n, 0);
  assert_int_equal(ipmi_parse_sensors(NULL, 5, r, 3, &n, &st, NULL, 0), -EINVAL);
  assert_int_equal(ipmi_parse_sensors(buf, len, r, 3, NULL, &st, NULL, 0), -EINVAL);
  free(buf);
}

/* ---------------------------------------------------------------- DCMI */

static int dcmi_file(const char *name, struct ipmi_dcmi_power *p, char *err, size_t errlen) {
  size_t len;
  char *buf = load(name, &len);
  char *exact = exact_copy(buf, len);
  int rc = ipmi_parse_dcmi_power(exact, len, p, err, errlen);

  free(exact);
  free(buf);
  return rc;
}

static int dcmi_text(const char *text, struct ipmi_dcmi_power *p) {
  return ipmi_parse_dcmi_power(text, strlen(text), p, NULL, 0);
}

static void test_dcmi_supported(void **state) {
  struct ipmi_dcmi_power p;
  char err[160];

  (void)state;
  assert_int_equal(dcmi_file("dell-idrac-dcmi-power-reading.txt", &p, err, sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_true(p.instant_w == 4620);
  assert_true(p.min_w == 812);
  assert_true(p.max_w == 6710);
  assert_true(p.avg_w == 4575);
  assert_string_equal(p.timestamp, "Thu Nov 21 14:02:11 2024");
  assert_int_equal(p.period_s, 1);
  assert_int_equal(p.active, 1);
  assert_int_equal(p.have, 0x7f);

  assert_int_equal(dcmi_file("supermicro-dcmi-power-reading.txt", &p, err, sizeof(err)), 0);
  assert_true(p.instant_w == 5120);
  assert_true(p.avg_w == 5088);
  assert_string_equal(p.timestamp, "11/22/24 16:41:03");

  /* deactivated: parsed, but the caller must not use the watts */
  assert_int_equal(dcmi_file("lenovo-xcc-dcmi-power-reading-deactivated.txt", &p, err, sizeof(err)),
                   0);
  assert_int_equal(p.active, 0);
  assert_true(p.instant_w == 0);

  /* only the instantaneous line: the rest stays absent */
  assert_int_equal(dcmi_text("Instantaneous power reading: 118 Watts\n", &p), 0);
  assert_true(p.instant_w == 118);
  assert_true(isnan(p.min_w));
  assert_int_equal(p.active, -1);
  assert_int_equal(p.have, IPMI_DCMI_HAVE_INSTANT);
}

static void test_dcmi_unsupported(void **state) {
  struct ipmi_dcmi_power p;
  char err[160];

  (void)state;
  /* real ipmi_sim answer (captured with 2>&1) */
  assert_int_equal(dcmi_file("ipmi_sim-dcmi-power-reading.txt", &p, err, sizeof(err)), -ENOTSUP);
  assert_true(isnan(p.instant_w));
  assert_int_equal(dcmi_file("hpe-ilo-dcmi-power-reading.txt", &p, err, sizeof(err)), -ENOTSUP);
  /* ipmitool shell's stdout has only a blank line: nothing to go on */
  assert_int_equal(dcmi_text("\n", &p), -EBADMSG);
  assert_int_equal(dcmi_text("Invalid command\n", &p), -ENOTSUP);
  assert_int_equal(dcmi_text("Error: DCMI power reading is not supported"
                             "\n",
                             &p),
                   -ENOTSUP);
  assert_int_equal(dcmi_text("    A valid DCMI command was not returned!"
                             " (c1)\n",
                             &p),
                   -ENOTSUP);
  assert_int_equal(dcmi_text("    DCMI request failed because: "
                             "Insufficient privilege level (d4)\n",
                             &p),
                   -EACCES);
  assert_int_equal(dcmi_text("    DCMI request failed because: "
                             "Node busy (c0)\n",
                             &p),
                   -EAGAIN);
  assert_int_equal(dcmi_text("    Unable to get DCMI information\n", &p), -EAGAIN);
  assert_int_equal(dcmi_text("Error: Unable to establish IPMI v2 / "
                             "RMCP+ session\n",
                             &p),
                   -EIO);
}

static void test_dcmi_malformed(void **state) {
  struct ipmi_dcmi_power p;
  char err[160];
  size_t len, cut;
  char *buf;
  const char *t = "    Instantaneous power reading:   12x Watts\n";

  (void)state;
  assert_int_equal(ipmi_parse_dcmi_power(t, strlen(t), &p, err, sizeof(err)), -EBADMSG);
  assert_non_null(strstr(err, "line 1: bad DCMI value"));
  t = "    Power reading state is:  sleepy\n"
      "    Instantaneous power reading:   120 Watts\n";
  assert_int_equal(ipmi_parse_dcmi_power(t, strlen(t), &p, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "line 1: bad DCMI value"));
  assert_true(p.instant_w == 120);
  assert_int_equal(ipmi_parse_dcmi_power(NULL, 1, &p, NULL, 0), -EINVAL);
  assert_int_equal(ipmi_parse_dcmi_power(t, 1, NULL, NULL, 0), -EINVAL);

  /* every prefix of a good answer: 0 only once the reading's line is
	 * complete, never a half-read number */
  buf = load("dell-idrac-dcmi-power-reading.txt", &len);
  for (cut = 0; cut <= len; cut++) {
    char *p2 = exact_copy(buf, cut);
    const char *eol = strchr(strstr(buf, "Instantaneous"), '\n');
    int rc = ipmi_parse_dcmi_power(p2, cut, &p, err, sizeof(err));

    if (cut > (size_t)(eol - buf)) {
      assert_int_equal(rc, 0);
      assert_true(p.instant_w == 4620);
    } else {
      assert_int_equal(rc, -EBADMSG);
    }
    free(p2);
  }
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sim_sdr_elist),
      cmocka_unit_test(test_sim_alarm_sdr_elist),
      cmocka_unit_test(test_sim_sensor),
      cmocka_unit_test(test_sim_alarm_sensor),
      cmocka_unit_test(test_sim_csv),
      cmocka_unit_test(test_sim_6bit_name),
      cmocka_unit_test(test_sim_shell),
      cmocka_unit_test(test_dell),
      cmocka_unit_test(test_hpe),
      cmocka_unit_test(test_supermicro),
      cmocka_unit_test(test_lenovo),
      cmocka_unit_test(test_dgx_style),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_malformed_lines),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_enobufs),
      cmocka_unit_test(test_dcmi_supported),
      cmocka_unit_test(test_dcmi_unsupported),
      cmocka_unit_test(test_dcmi_malformed),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
