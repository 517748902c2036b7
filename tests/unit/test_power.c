/* The power model of the aggregator's decision side (issue 20) against a
 * real store, gate and ledger (aggregator/gate.c, reservations.c): every
 * term of the power headroom (limit, derating, measured draw, each
 * reservation's max(reserved, measured), unaccounted draw, margin) and the
 * double count gone; the thermal headroom counting the heat of reserved
 * work and of the request (heat_fraction); an unused reservation expiring
 * only on sustained low use over reservations.idle_window, never on one
 * reading; and preemption with notice (audit entries, the preempting
 * request refused with the time to retry, revocation when the notice runs
 * out). Frames are packed and decoded as the consumer does. Each test works
 * in a fresh mkdtemp directory under /tmp and removes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agg_test_util.h"
#include "aggregator.h"
#include "gate.h"
#include "ledger.h"
#include "policy.h"
#include "reservations.h"
#include "store.h"

/* r1: 100 kW breaker derated to 80 kW, 2 kW margin, CDU of 90 kW, half of
 * a request's kW becomes the CDU's heat. */
static const char policy_yaml[] =
    "version: power-1\n"
    "defaults:\n"
    "  max_staleness: 60s\n"
    "  power_margin_kw: 2\n"
    "  power: {enabled: true, series: pdu.power, stat: latest, across: sum}\n"
    "  thermal: {enabled: true, series: cdu.heat_removed, stat: latest, across: sum}\n"
    "racks:\n"
    "  - {id: r1, breaker_kw: 100, derating: 0.8, cdu_capacity_kw: 90, heat_fraction: 0.5}\n"
    "  - {id: r2, breaker_kw: 100, derating: 0.8, cdu_capacity_kw: 90}\n"
    "  - {id: r3, breaker_kw: 1000, derating: 1.0, cdu_capacity_kw: 90}\n";

static int setup(void **state) { return agg_fx_setup(state, "power", policy_yaml, 0, 20000, 0.05); }

/* A reservation written to the ledger as admission would have. */
static void put_res(struct agg_fx *x, const char *id, const char *owner, double kw, int64_t start,
                    int64_t end, const char *host, const char *outlet) {
  json_t *r = json_pack("{s:s, s:s, s:f, s:I, s:I, s:s, s:b, s:s, s:s, s:I, s:[], s:[]}", "id", id,
                        "rack", "r1", "kw", kw, "start_ms", (json_int_t)start, "end_ms",
                        (json_int_t)end, "class", "silver", "preemptible", 0, "owner", owner,
                        "state", "active", "created_ms", (json_int_t)start, "hosts", "outlets");
  assert_non_null(r);
  if (host != NULL)
    json_array_append_new(json_object_get(r, "hosts"), json_string(host));
  if (outlet != NULL)
    json_array_append_new(json_object_get(r, "outlets"), json_string(outlet));
  assert_int_equal(rp_ledger_res_put(x->a.ledger, r), 0);
  json_decref(r);
}

/* r1 draws 30 kW (PDU). Running: A 20 kW whose host h1 draws 15 kW (within
 * it), B 10 kW whose outlet o3 draws 12 kW (over it), C 5 kW that names
 * nothing (not measured: counts in full); D (7 kW on h2) starts in two
 * hours, outside the window. committed = max(20,15) + max(10,12) + 5 +
 * unaccounted (30 - 15 - 12) = 40; headroom = 80 - 40 - 2 = 38 (counting A
 * and B twice, as before, gave 80 - 30 - 35 - 2 = 13). */
static void test_every_watt_once(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000},
                        {"server.power", "W", "h1", "source", "dcmi", 15000},
                        {"server.power", "W", "h2", "source", "dcmi", 3000},
                        {"pdu.outlet.power", "W", "pdu1", "outlet", "o3", 12000},
                        {"cdu.heat_removed", "kW", "cdu1", NULL, NULL, 25}};
  agg_fx_frame(x, "r1", now, s, 5);
  put_res(x, "A", "a", 20, now - 60000, now + 3600000, "h1", NULL);
  put_res(x, "B", "b", 10, now - 60000, now + 3600000, NULL, "o3");
  put_res(x, "C", "c", 5, now - 60000, now + 3600000, NULL, NULL);
  put_res(x, "D", "d", 7, now + 7200000, now + 9000000, "h2", NULL);

  json_t *d = agg_gate(x, "r1", 10, NULL, now);
  json_t *p = agg_check_of(d, "power_headroom");
  assert_float_equal(agg_num(p, "observed"), 38, 1e-9); /* 13 when counted twice */
  assert_float_equal(agg_num(p, "breaker_kw"), 100, 1e-9);
  assert_float_equal(agg_num(p, "derating"), 0.8, 1e-9);
  assert_float_equal(agg_num(p, "derated_limit_kw"), 80, 1e-9);
  assert_float_equal(agg_num(p, "draw_kw"), 30, 1e-9);
  assert_float_equal(agg_num(p, "reserved_kw"), 35, 1e-9);
  assert_float_equal(agg_num(p, "reservations_committed_kw"), 37, 1e-9);
  assert_float_equal(agg_num(p, "reservations_measured_kw"), 27, 1e-9);
  assert_float_equal(agg_num(p, "unaccounted_kw"), 3, 1e-9);
  assert_float_equal(agg_num(p, "committed_kw"), 40, 1e-9);
  assert_float_equal(agg_num(p, "margin_kw"), 2, 1e-9);
  assert_float_equal(agg_num(p, "request_kw"), 10, 1e-9);
  assert_float_equal(agg_num(p, "observed"), 38, 1e-9);
  assert_true(json_is_true(json_object_get(p, "pass")));
  json_t *res = json_object_get(p, "reservations");
  assert_int_equal(json_array_size(res), 3);
  size_t i;
  json_t *r;
  json_array_foreach(res, i, r) {
    const char *id = json_string_value(json_object_get(r, "id"));
    if (strcmp(id, "A") == 0) {
      assert_float_equal(agg_num(r, "measured_kw"), 15, 1e-9);
      assert_float_equal(agg_num(r, "committed_kw"), 20, 1e-9);
    } else if (strcmp(id, "B") == 0) {
      assert_float_equal(agg_num(r, "measured_kw"), 12, 1e-9);
      assert_float_equal(agg_num(r, "committed_kw"), 12, 1e-9);
    } else {
      assert_string_equal(id, "C");
      assert_true(json_is_null(json_object_get(r, "measured_kw")));
      assert_float_equal(agg_num(r, "committed_kw"), 5, 1e-9);
    }
  }
  /* Thermal: 90 - 25 removed - 0.5 x (37 - 27 not yet drawn) = 60 against
   * 0.5 x 10 kW asked. */
  json_t *t = agg_check_of(d, "thermal_headroom");
  assert_float_equal(agg_num(t, "observed"), 60, 1e-9);
  assert_float_equal(agg_num(t, "limit"), 5, 1e-9);
  assert_float_equal(agg_num(t, "reserved_heat_kw"), 5, 1e-9);
  json_decref(d);

  /* A's owner: A does not count against it, its host's draw is then draw
   * like any other: 12 + 5 + (30 - 12) = 35; 80 - 35 - 2 = 43. */
  d = agg_gate(x, "r1", 10, "a", now);
  p = agg_check_of(d, "power_headroom");
  assert_float_equal(agg_num(p, "unaccounted_kw"), 18, 1e-9);
  assert_float_equal(agg_num(p, "observed"), 43, 1e-9);
  json_decref(d);

  /* 39 kW does not fit (38 free): the answer is exact, not padded. */
  d = agg_gate(x, "r1", 39, NULL, now);
  assert_false(json_is_true(json_object_get(agg_check_of(d, "power_headroom"), "pass")));
  json_decref(d);
}

/* The rack's draw missing (its only PDU reading stale) still fails closed,
 * reservations or not; a host reading gone makes its reservation count in
 * full. */
static void test_missing_draw_fails_closed(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000},
                        {"cdu.heat_removed", "kW", "cdu1", NULL, NULL, 25}};
  agg_fx_frame(x, "r2", now - 120000, s, 2);
  json_t *d = agg_gate(x, "r2", 1, NULL, now);
  json_t *p = agg_check_of(d, "power_headroom");
  assert_true(json_is_null(json_object_get(p, "observed")));
  assert_false(json_is_true(json_object_get(p, "pass")));
  assert_string_equal(json_string_value(json_object_get(d, "decision")), "deny");
  json_decref(d);

  /* r1: A names h1, which has never reported: A counts 20 on top of 30. */
  struct agg_ser s1[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000},
                         {"cdu.heat_removed", "kW", "cdu1", NULL, NULL, 25}};
  agg_fx_frame(x, "r1", now, s1, 2);
  put_res(x, "A", "a", 20, now - 60000, now + 3600000, "h1", NULL);
  d = agg_gate(x, "r1", 1, NULL, now);
  p = agg_check_of(d, "power_headroom");
  assert_float_equal(agg_num(p, "committed_kw"), 50, 1e-9);
  assert_float_equal(agg_num(p, "observed"), 28, 1e-9);
  json_decref(d);
}

/* r3's CDU removes 25 of 90 kW; a running 150 kW reservation not yet
 * drawing takes the thermal headroom below zero (the gate denies more
 * work), but the rack is not over: no automatic scale-back flag. */
static void test_reserved_heat_is_not_scale_back(void **state) {
  struct agg_fx *x = *state;
  x->a.cfg.flags.automatic = true;
  int64_t now = rp_now_ms();
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000},
                        {"cdu.heat_removed", "kW", "cdu1", NULL, NULL, 25}};
  agg_fx_frame(x, "r3", now, s, 2);
  json_t *r =
      json_pack("{s:s, s:s, s:f, s:I, s:I, s:s, s:b, s:s, s:s, s:I, s:[], s:[]}", "id", "big",
                "rack", "r3", "kw", 150.0, "start_ms", (json_int_t)(now - 1000), "end_ms",
                (json_int_t)(now + 3600000), "class", "silver", "preemptible", 0, "owner", "a",
                "state", "active", "created_ms", (json_int_t)now, "hosts", "outlets");
  assert_int_equal(rp_ledger_res_put(x->a.ledger, r), 0);
  json_decref(r);
  json_t *d = agg_gate(x, "r3", 1, NULL, now);
  json_t *t = agg_check_of(d, "thermal_headroom");
  assert_float_equal(agg_num(t, "observed"), 90 - 25 - 150, 1e-9);
  assert_false(json_is_true(json_object_get(t, "pass")));
  json_decref(d);
  rp_flags_reconcile(&x->a, now);
  json_t *flags = rp_ledger_flag_list(x->a.ledger, "r3");
  assert_int_equal(json_array_size(flags), 0);
  json_decref(flags);
}

static const char *state_of(struct agg_fx *x, const char *id) {
  static char buf[32];
  json_t *r = rp_ledger_res_get(x->a.ledger, id);
  assert_non_null(r);
  snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(r, "state")));
  json_decref(r);
  return buf;
}

static void host_reading(struct agg_fx *x, int64_t ts, double watts) {
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000},
                        {"server.power", "W", "h1", "source", "dcmi", watts}};
  agg_fx_frame(x, "r1", ts, s, 2);
}

/* A 20 kW reservation whose host draws 0.5 kW (under 5 %): one low reading
 * does not expire it, nor does a window broken by a high reading; only
 * low readings for the whole idle_window (20 s here) do. */
static void test_idle_expiry_needs_a_window(void **state) {
  struct agg_fx *x = *state;
  int64_t t = rp_now_ms();
  put_res(x, "A", "a", 20, t - 1000, t + 3600000, "h1", NULL);
  host_reading(x, t, 500);
  assert_int_equal(rp_reservations_expire(&x->a, t), 0);
  assert_string_equal(state_of(x, "A"), "active");
  host_reading(x, t + 5000, 500);
  assert_int_equal(rp_reservations_expire(&x->a, t + 5000), 0);
  host_reading(x, t + 6000, 10000); /* in use again: starts over */
  assert_int_equal(rp_reservations_expire(&x->a, t + 6000), 0);
  host_reading(x, t + 7000, 500);
  assert_int_equal(rp_reservations_expire(&x->a, t + 7000), 0);
  /* 25 s after the first low reading, but only 18 s of low use. */
  host_reading(x, t + 25000, 500);
  assert_int_equal(rp_reservations_expire(&x->a, t + 25000), 0);
  assert_string_equal(state_of(x, "A"), "active");
  host_reading(x, t + 27000, 500);
  assert_int_equal(rp_reservations_expire(&x->a, t + 27000), 1);
  assert_string_equal(state_of(x, "A"), "expired");
}

static json_t *reserve(struct agg_fx *x, const char *owner, const char *cls, double kw,
                       bool preemptible, int64_t now, int *status) {
  json_t *body =
      json_pack("{s:s, s:s, s:s, s:f, s:b, s:I}", "rack", "r1", "owner", owner, "class", cls, "kw",
                kw, "preemptible", preemptible, "end", (json_int_t)(now + 3600000));
  json_t *r = rp_reservation_create(&x->a, body, now, status);
  json_decref(body);
  return r;
}

static size_t audit_count(struct agg_fx *x, const char *action) {
  rp_ledger_audit_flush(x->a.ledger);
  json_t *all = rp_ledger_audit_query(x->a.ledger, "r1", 0, INT64_MAX, 1000);
  size_t n = 0, i;
  json_t *e;
  json_array_foreach(all, i, e) {
    const char *a = json_string_value(json_object_get(e, "action"));
    n += a != NULL && strcmp(a, action) == 0;
  }
  json_decref(all);
  return n;
}

/* 48 kW free (80 - 30 drawn - 2). A preemptible bronze 40 kW reservation;
 * a gold 30 kW request gives it ten minutes' notice and is refused with
 * the time to retry; asking again gives no second notice; when the notice
 * runs out the bronze one is revoked (audited) and the gold one fits. */
static void test_preemption_with_notice(void **state) {
  struct agg_fx *x = *state;
  x->a.cfg.reservations.preempt_notice_ms = 600000;
  int64_t now = rp_now_ms();
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000}};
  agg_fx_frame(x, "r1", now, s, 1);
  int status;
  json_t *low = reserve(x, "low", "bronze", 40, true, now, &status);
  assert_int_equal(status, 201);
  char id[32];
  snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(low, "id")));
  json_decref(low);

  json_t *e = reserve(x, "high", "gold", 30, false, now, &status);
  assert_int_equal(status, 409);
  assert_int_equal(json_integer_value(json_object_get(e, "retry_at_ms")), now + 600000);
  assert_string_equal(json_string_value(json_array_get(json_object_get(e, "noticed"), 0)), id);
  assert_non_null(strstr(json_string_value(json_object_get(e, "error")), "retry then"));
  json_decref(e);
  assert_string_equal(state_of(x, id), "active");
  assert_int_equal(audit_count(x, "reservation_notice"), 1);

  e = reserve(x, "high", "gold", 30, false, now + 1000, &status);
  assert_int_equal(status, 409);
  assert_int_equal(json_integer_value(json_object_get(e, "retry_at_ms")), now + 600000);
  json_decref(e);
  assert_int_equal(audit_count(x, "reservation_notice"), 1);

  /* Not yet: one millisecond before the notice runs out. */
  assert_int_equal(rp_reservations_expire(&x->a, now + 599999), 0);
  assert_string_equal(state_of(x, id), "active");
  assert_int_equal(rp_reservations_expire(&x->a, now + 600000), 1);
  assert_string_equal(state_of(x, id), "preempted");
  assert_int_equal(audit_count(x, "reservation_preempted"), 1);

  agg_fx_frame(x, "r1", now + 600000, s, 1); /* admission measures at its own time */
  json_t *gold = reserve(x, "high", "gold", 30, false, now + 600000, &status);
  assert_int_equal(status, 201);
  json_decref(gold);
}

/* preempt_notice 0: revoked at once, as before, and audited. */
static void test_preemption_without_notice(void **state) {
  struct agg_fx *x = *state;
  int64_t now = rp_now_ms();
  struct agg_ser s[] = {{"pdu.power", "W", "pdu1", "inlet", "1", 30000}};
  agg_fx_frame(x, "r1", now, s, 1);
  int status;
  json_t *low = reserve(x, "low", "bronze", 40, true, now, &status);
  assert_int_equal(status, 201);
  json_decref(low);
  json_t *gold = reserve(x, "high", "gold", 30, false, now, &status);
  assert_int_equal(status, 201);
  assert_int_equal(json_array_size(json_object_get(gold, "preempted")), 1);
  json_decref(gold);
  assert_int_equal(audit_count(x, "reservation_preempted"), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, agg_fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_every_watt_once),
      T(test_missing_draw_fails_closed),
      T(test_idle_expiry_needs_a_window),
      T(test_preemption_with_notice),
      T(test_preemption_without_notice),
      T(test_reserved_heat_is_not_scale_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
