/* Energy and cost of reservations (aggregator/energy.c, issue 20) through
 * the upkeep's rp_reservations_expire on a real store, gate and ledger:
 * kWh integrated from the measured draw of the reservation's host, cost at
 * a time-of-use tariff that changes at noon UTC, peak and p95 utilisation,
 * the close-out summary at release, a reservation that is not measured
 * estimated at its reserved kW, a gap not integrated, the per-owner
 * /metrics lines, and that the 5 s energy steps reach the change sink (the
 * ledger topic in a cluster) once a minute, not every pass, and that when
 * they last went there is shown nowhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_test_util.h"
#include "ledger.h"
#include "reservations.h"

static const char policy_yaml[] =
    "version: energy-1\n"
    "defaults:\n"
    "  max_staleness: 60s\n"
    "  supply_temp: {enabled: false}\n"
    "  power: {enabled: true, series: pdu.power, stat: latest, across: sum}\n"
    "tariff: {currency: EUR, periods: [{from: \"00:00\", price: 0.10},\n"
    "                                  {from: \"12:00\", price: 0.30}]}\n"
    "racks:\n"
    "  - {id: k1, breaker_kw: 100, derating: 1.0}\n";

/* 2026-12-06T11:58:55Z: the first minute of steps is at 0.10, the next at
 * 0.30. */
#define T0 1796558335000LL

static int setup(void **state) {
  return agg_fx_setup(state, "energy", policy_yaml, 3600000, 600000, 0.05);
}

static void put(struct agg_fx *x, const char *id, const char *owner, double kw, const char *host) {
  json_t *r = json_pack("{s:s, s:s, s:f, s:I, s:I, s:s, s:b, s:s, s:s, s:I, s:[], s:[]}", "id", id,
                        "rack", "k1", "kw", kw, "start_ms", (json_int_t)T0, "end_ms",
                        (json_int_t)(T0 + 3600000), "class", "silver", "preemptible", 0, "owner",
                        owner, "state", "active", "created_ms", (json_int_t)T0, "hosts", "outlets");
  if (host != NULL)
    json_array_append_new(json_object_get(r, "hosts"), json_string(host));
  assert_int_equal(rp_ledger_res_put(x->a.ledger, r), 0);
  json_decref(r);
}

/* The upkeep pass at t with host h1 drawing kw. */
static void step(struct agg_fx *x, int64_t t, double kw) {
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000},
                        {"server.power", "W", "h1", NULL, NULL, kw * 1000}};
  agg_fx_frame(x, "k1", t, s, 2);
  assert_int_equal(rp_reservations_expire(&x->a, t), 0);
}

static void test_energy_cost_and_summary(void **state) {
  struct agg_fx *x = *state;
  put(x, "M", "a", 20, "h1");
  put(x, "E", "b", 5, NULL);
  int64_t t = T0;
  for (int i = 1; i <= 12; i++)
    step(x, t += 5000, 10); /* 60 s at 10 kW (util 0.5), 0.10 a kWh */
  for (int i = 1; i <= 12; i++)
    step(x, t += 5000, 16); /* 60 s at 16 kW (0.8), 0.30 */
  step(x, t += 5000, 20);   /* 5 s at 20 kW (1.0) */
  int status;
  json_t *r = rp_reservation_release(&x->a, "M", t, &status);
  assert_int_equal(status, 200);
  json_t *s = json_object_get(r, "summary");
  assert_non_null(s);
  double kwh = (60 * 10 + 60 * 16 + 5 * 20) / 3600.0;
  double cost = 60 * 10 / 3600.0 * 0.10 + (60 * 16 + 5 * 20) / 3600.0 * 0.30;
  assert_float_equal(agg_num(s, "kwh"), kwh, 1e-9);
  assert_float_equal(agg_num(s, "measured_kwh"), kwh, 1e-9);
  assert_float_equal(agg_num(s, "estimated_kwh"), 0, 1e-12);
  assert_float_equal(agg_num(s, "cost"), cost, 1e-9);
  assert_string_equal(json_string_value(json_object_get(s, "currency")), "EUR");
  assert_float_equal(agg_num(s, "hours"), 125 / 3600.0, 1e-12);
  assert_float_equal(agg_num(s, "cost_per_hour"), cost / (125 / 3600.0), 1e-9);
  assert_float_equal(agg_num(s, "peak_utilization"), 1.0, 1e-12);
  /* 95 % of the 125 s measured is reached in the 0.80-0.85 bin. */
  assert_float_equal(agg_num(s, "p95_utilization"), 0.85, 1e-12);
  json_decref(r);

  /* E names nothing: estimated at its 5 kW; no utilisation. */
  json_t *list = rp_reservation_list(&x->a, "k1", "b", t);
  json_t *e = json_object_get(json_array_get(json_object_get(list, "reservations"), 0), "summary");
  assert_float_equal(agg_num(e, "estimated_kwh"), 5 * 125 / 3600.0, 1e-9);
  assert_float_equal(agg_num(e, "measured_kwh"), 0, 1e-12);
  assert_true(json_is_null(json_object_get(e, "p95_utilization")));
  json_decref(list);

  /* A 2-minute gap (the aggregator down) is not integrated. */
  step(x, t + 120000, 10);
  list = rp_reservation_list(&x->a, "k1", "b", t + 120000);
  e = json_object_get(json_array_get(json_object_get(list, "reservations"), 0), "summary");
  assert_float_equal(agg_num(e, "estimated_kwh"), 5 * 125 / 3600.0, 1e-9);
  json_decref(list);

  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  assert_non_null(out);
  rp_reservations_metrics(&x->a, out, t + 120000);
  fclose(out);
  char want[160];
  snprintf(want, sizeof(want), "rackpulse_energy_kwh_total{owner=\"a\",source=\"measured\"} %.4f",
           kwh);
  if (strstr(buf, want) == NULL)
    fail_msg("no '%s' in:\n%s", want, buf);
  snprintf(want, sizeof(want), "rackpulse_energy_cost_total{owner=\"a\"} %.4f", cost);
  assert_non_null(strstr(buf, want));
  assert_non_null(strstr(buf, "rackpulse_reservation_hours_total{owner=\"a\"} 0.034722"));
  assert_non_null(strstr(buf, "rackpulse_reservation_cost{owner=\"b\",reservation=\"E\"}"));
  free(buf);
}

/* What the change sink (the ledger topic) was handed: how many
 * reservation records, and the last one's value. */
struct sunk {
  int published;
  json_t *last;
};

static int count_change(void *ctx, const char *rack, const char *kind, const char *id,
                        const json_t *value, char *err, size_t errlen) {
  (void)rack, (void)id, (void)err, (void)errlen;
  struct sunk *s = ctx;
  if (strcmp(kind, "reservation") == 0) {
    s->published++;
    json_decref(s->last);
    s->last = json_deep_copy(value);
  }
  return 0;
}

static void test_energy_steps_published_once_a_minute(void **state) {
  struct agg_fx *x = *state;
  put(x, "M", "a", 20, "h1");
  struct sunk s = {0, NULL};
  rp_ledger_set_change_sink(x->a.ledger, count_change, &s);
  int64_t t = T0;
  for (int i = 1; i <= 25; i++)
    step(x, t += 5000, 10); /* 125 s of passes: at 5 s, 65 s and 125 s */
  assert_int_equal(s.published, 3);
  /* Every step is in the member's own ledger all the same. */
  json_t *list = rp_reservation_list(&x->a, "k1", "a", t);
  json_t *r = json_array_get(json_object_get(list, "reservations"), 0);
  json_t *e = json_object_get(r, "summary");
  assert_float_equal(agg_num(e, "measured_kwh"), 125 * 10 / 3600.0, 1e-9);
  json_decref(list);
  rp_ledger_set_change_sink(x->a.ledger, NULL, NULL);
  json_decref(s.last);
}

/* When a reservation last went to the ledger topic is the owning member's
 * bookkeeping: kept in its own ledger, absent from the listing, from the
 * answers of extend and release (and so from their audit entries) and from
 * the value the changelog produces to the topic. A new owner rebuilt from the topic therefore
 * publishes at its first pass, not a minute after the old owner's clock. */
static void test_energy_publication_time_not_shown(void **state) {
  struct agg_fx *x = *state;
  put(x, "M", "a", 20, "h1");
  struct sunk s = {0, NULL};
  rp_ledger_set_change_sink(x->a.ledger, count_change, &s);
  int64_t t = T0;
  step(x, t += 5000, 10);
  assert_int_equal(s.published, 1);
  json_t *mine = rp_ledger_res_get(x->a.ledger, "M");
  assert_int_equal(json_integer_value(json_object_get(mine, "published_ms")), t);
  json_decref(mine);
  /* What the changelog produces (cluster_ledger_tail reads the topic). */
  assert_non_null(s.last);
  json_t *topic = rp_reservation_public(s.last);
  assert_null(json_object_get(topic, "published_ms"));
  assert_non_null(json_object_get(topic, "energy"));

  json_t *list = rp_reservation_list(&x->a, NULL, NULL, t);
  json_t *r = json_array_get(json_object_get(list, "reservations"), 0);
  assert_string_equal(json_string_value(json_object_get(r, "id")), "M");
  assert_null(json_object_get(r, "published_ms"));
  json_decref(list);
  int status;
  json_t *body = json_pack("{s:I}", "end", (json_int_t)(T0 + 7200000));
  r = rp_reservation_extend(&x->a, "M", body, t, &status);
  json_decref(body);
  assert_int_equal(status, 200);
  assert_null(json_object_get(r, "published_ms"));
  json_decref(r);

  /* A new owner applies the topic's record (not produced again) and
   * publishes at its next pass. */
  rp_ledger_set_change_sink(x->a.ledger, NULL, NULL);
  assert_int_equal(rp_ledger_res_put(x->a.ledger, topic), 0);
  json_decref(topic);
  rp_ledger_set_change_sink(x->a.ledger, count_change, &s);
  s.published = 0;
  step(x, t += 5000, 10);
  assert_int_equal(s.published, 1);

  r = rp_reservation_release(&x->a, "M", t, &status);
  assert_int_equal(status, 200);
  assert_null(json_object_get(r, "published_ms"));
  json_decref(r);
  rp_ledger_set_change_sink(x->a.ledger, NULL, NULL);
  json_decref(s.last);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_energy_cost_and_summary, setup, agg_fx_teardown),
      cmocka_unit_test_setup_teardown(test_energy_steps_published_once_a_minute, setup,
                                      agg_fx_teardown),
      cmocka_unit_test_setup_teardown(test_energy_publication_time_not_shown, setup,
                                      agg_fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
