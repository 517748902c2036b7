/* Packing of pool reservations (aggregator/packing.c, res_place.c, issue
 * 20): best fit with a safety margin against worst fit, spreading by row,
 * and the wait queue (admitted with an audit entry when headroom appears,
 * refused when the wait ends), through rp_reservation_create and the
 * upkeep's rp_reservations_expire on a real store, gate and ledger. */
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
#include "packing.h"
#include "reservations.h"

/* Pool p1: a1 (20 kW usable), a2 (50 kW), a3 (100 kW); a1 and a2 in row
 * ra, a3 in row rb. */
static const char policy_yaml[] =
    "version: pack-1\n"
    "defaults:\n"
    "  max_staleness: 60s\n"
    "  supply_temp: {enabled: false}\n"
    "  power: {enabled: true, series: pdu.power, stat: latest, across: sum}\n"
    "racks:\n"
    "  - {id: a1, pool: p1, row: ra, breaker_kw: 20, derating: 1.0}\n"
    "  - {id: a2, pool: p1, row: ra, breaker_kw: 50, derating: 1.0}\n"
    "  - {id: a3, pool: p1, row: rb, breaker_kw: 100, derating: 1.0}\n";

static int setup(void **state) {
  return agg_fx_setup(state, "pack", policy_yaml, 3600000, 600000, 0.05);
}

static void idle_floor(struct agg_fx *x, int64_t ts) {
  static const char *const racks[] = {"a1", "a2", "a3"};
  for (int i = 0; i < 3; i++) {
    struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 0}};
    agg_fx_frame(x, racks[i], ts, s, 1);
  }
}

static json_t *reserve(struct agg_fx *x, const char *owner, double kw, const char *extra_key,
                       const char *extra_val, int64_t now, int *status) {
  json_t *body = json_pack("{s:s, s:s, s:f, s:I}", "pool", "p1", "owner", owner, "kw", kw, "end",
                           (json_int_t)(now + 3600000));
  if (extra_key != NULL)
    json_object_set_new(body, extra_key, json_string(extra_val));
  json_t *r = rp_reservation_create(&x->a, body, now, status);
  json_decref(body);
  return r;
}

static const char *str(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  if (s == NULL)
    fail_msg("%s: not a string", key);
  return s;
}

static void test_choose(void **state) {
  (void)state;
  struct rp_pack_candidate c[] = {
      {.headroom_kw = 20}, {.headroom_kw = 12}, {.headroom_kw = 100}, {.headroom_kw = NAN}};
  assert_int_equal(rp_pack_choose(c, 4, 10, 0, false, RP_PACK_BEST_FIT), 1);
  assert_int_equal(rp_pack_choose(c, 4, 10, 0, false, RP_PACK_WORST_FIT), 2);
  /* A 5 kW margin: 12 would leave 2, so 20 (leaves 10). */
  assert_int_equal(rp_pack_choose(c, 4, 10, 5, false, RP_PACK_BEST_FIT), 0);
  /* 95 + 10 fits nowhere with the margin: the best fit without it. */
  assert_int_equal(rp_pack_choose(c, 4, 95, 10, false, RP_PACK_BEST_FIT), 2);
  assert_int_equal(rp_pack_choose(c, 4, 101, 0, false, RP_PACK_BEST_FIT), 4);
  c[1].group_kw = 30; /* spread: the owner already holds 30 kW in candidate 1's group */
  assert_int_equal(rp_pack_choose(c, 4, 10, 0, true, RP_PACK_BEST_FIT), 0);
}

/* 15 kW lands on a1 (20 free: least stranded), 30 on a2, then 15 more on
 * a2 (20 left there, 100 on a3); with spread: row it goes to row rb. */
static void test_pool_best_fit_and_spread(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  idle_floor(x, now);
  int status;
  json_t *r = reserve(x, "o", 15, NULL, NULL, now, &status);
  assert_int_equal(status, 201);
  assert_string_equal(str(r, "rack"), "a1");
  json_decref(r);
  r = reserve(x, "o", 30, NULL, NULL, now, &status);
  assert_string_equal(str(r, "rack"), "a2");
  json_decref(r);
  r = reserve(x, "o", 15, NULL, NULL, now, &status);
  assert_string_equal(str(r, "rack"), "a2");
  json_decref(r);
  r = reserve(x, "o", 2, "spread", "row", now, &status);
  assert_int_equal(status, 201);
  assert_string_equal(str(r, "rack"), "a3"); /* row ra holds o's 60 kW already */
  json_decref(r);
  r = reserve(x, "o", 1, "spread", "aisle", now, &status);
  assert_int_equal(status, 400);
  json_decref(r);
}

static size_t audit_count(struct agg_fx *x, const char *action) {
  rp_ledger_audit_flush(x->a.ledger);
  json_t *all = rp_ledger_audit_query(x->a.ledger, NULL, 0, INT64_MAX, 1000);
  size_t n = 0, i;
  json_t *e;
  json_array_foreach(all, i, e) n += strcmp(str(e, "action"), action) == 0;
  json_decref(all);
  return n;
}

static const char *state_of(struct agg_fx *x, const char *id, char *buf, size_t len) {
  json_t *r = rp_ledger_res_get(x->a.ledger, id);
  assert_non_null(r);
  snprintf(buf, len, "%s", str(r, "state"));
  json_decref(r);
  return buf;
}

/* 90 kW holds a3; 30 kW more with wait 30m waits (202); once the 90 is
 * released the upkeep admits it best fit (a2), audited; 200 kW with wait
 * 1m is refused when the minute is up, audited. */
static void test_wait_queue(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  idle_floor(x, now);
  int status;
  json_t *big = reserve(x, "o", 90, NULL, NULL, now, &status);
  assert_int_equal(status, 201);
  json_t *w = reserve(x, "p", 60, "wait", "30m", now, &status);
  assert_int_equal(status, 202);
  assert_string_equal(str(w, "state"), "waiting");
  assert_int_equal(json_integer_value(json_object_get(w, "wait_until_ms")), now + 1800000);
  char wid[32], buf[32];
  snprintf(wid, sizeof(wid), "%s", str(w, "id"));
  json_decref(w);
  /* Without "wait" it is refused at once, as before. */
  json_decref(reserve(x, "q", 60, NULL, NULL, now, &status));
  assert_int_equal(status, 409);

  assert_int_equal(rp_reservations_expire(&x->a, now + 5000), 0);
  assert_string_equal(state_of(x, wid, buf, sizeof(buf)), "waiting");
  json_decref(rp_reservation_release(&x->a, str(big, "id"), now + 6000, &status));
  json_decref(big);
  idle_floor(x, now + 10000);
  assert_int_equal(rp_reservations_expire(&x->a, now + 10000), 1);
  json_t *r = rp_ledger_res_get(x->a.ledger, wid);
  assert_string_equal(str(r, "state"), "active");
  assert_string_equal(str(r, "rack"), "a3"); /* the only rack with 60 kW */
  assert_int_equal(json_integer_value(json_object_get(r, "waited_ms")), 10000);
  /* it keeps its hour from its admission */
  assert_int_equal(json_integer_value(json_object_get(r, "end_ms")), now + 10000 + 3600000);
  json_decref(r);
  assert_int_equal(audit_count(x, "reservation_admitted"), 1);

  w = reserve(x, "p", 200, "wait", "1m", now + 10000, &status);
  assert_int_equal(status, 202);
  snprintf(wid, sizeof(wid), "%s", str(w, "id"));
  json_decref(w);
  assert_int_equal(rp_reservations_expire(&x->a, now + 69999), 0);
  assert_int_equal(rp_reservations_expire(&x->a, now + 70000), 1);
  assert_string_equal(state_of(x, wid, buf, sizeof(buf)), "refused");
  assert_int_equal(audit_count(x, "reservation_refused"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_choose),
      cmocka_unit_test_setup_teardown(test_pool_best_fit_and_spread, setup, agg_fx_teardown),
      cmocka_unit_test_setup_teardown(test_wait_queue, setup, agg_fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
