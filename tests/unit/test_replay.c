/* The backtest engine (aggregator/replay.c, issue 23) fed from memory, no
 * Kafka: two racks for 20 simulated minutes, r2's supply temperature ramping
 * up from minute 5; a strict candidate (max 36) against a loose current
 * policy (max 44). The report must count the decisions that change on r2
 * only and under supply_temp, flag r2 earlier, give the incident a positive
 * lead time under the candidate and a late one under the current policy,
 * and count a must-deny incident the loose policy allows as a violation
 * (policies swapped). Racks outside --racks are not evaluated; decisions
 * outside [from, to] are not counted. */
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
#include "policy.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"
#include "replay.h"

#define T0 1790000000000LL
#define MINUTES 20

static struct rp_policy *policy(const char *version, double max) {
  struct rp_policy *p;
  assert_int_equal(rp_policy_builtin(version, 10000, max, "cdu.supply_temp", &p), 0);
  return p;
}

/* r2 ramps from 30 °C at minute 5 by 1 °C a minute (36 at minute 11, 44 at
 * minute 19); r1 stays at 30. */
static double supply_of(int rack, long sec) {
  if (rack == 1 || sec < 300)
    return 30;
  return 30 + (double)(sec - 300) / 60.0;
}

static rp_frame *frame(int rack, long sec) {
  char id[16];
  snprintf(id, sizeof(id), "r%d", rack);
  rp_frame *f = agg_supply_frame(id, (uint64_t)sec + 1, T0 + sec * 1000, supply_of(rack, sec));
  assert_non_null(f);
  return f;
}

/* Replays the 20 minutes under cand vs cur and returns the report. */
static json_t *run(double cand, double cur, const struct rp_replay_options *base) {
  char dir[] = "/tmp/rp_test_replay_XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct rp_replay_options o = *base;
  o.dir = dir;
  struct rp_replay *r;
  char err[512];
  if (rp_replay_new(policy("cand", cand), policy("cur", cur), &o, &r, err, sizeof(err)) != 0)
    fail_msg("replay: %s", err);
  for (long sec = 0; sec < MINUTES * 60; sec++)
    for (int rack = 1; rack <= 2; rack++)
      assert_int_equal(rp_replay_frame(r, frame(rack, sec), err, sizeof(err)), 0);
  assert_int_equal(rp_replay_finish(r, T0 + MINUTES * 60000, err, sizeof(err)), 0);
  json_t *rep = rp_replay_report(r);
  rp_replay_free(r);
  char cmd[64];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return rep;
}

static json_int_t geti(json_t *o, const char *path) {
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", path);
  json_t *cur = o;
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
    cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(k)) : json_object_get(cur, k);
  return json_integer_value(cur);
}

static double getf(json_t *o, const char *path) {
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", path);
  json_t *cur = o;
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
    cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(k)) : json_object_get(cur, k);
  return json_is_number(cur) ? json_number_value(cur) : NAN;
}

/* The incident: r2 evacuated by hand at minute 18 (42 °C). */
static const struct rp_replay_incident incident = {
    .rack = "r2", .start_ms = T0 + 18 * 60000, .end_ms = T0 + 19 * 60000, .must_deny = true};

static void test_strict_finds_the_difference_and_the_lead(void **state) {
  (void)state;
  struct rp_replay_options o = {
      .from_ms = T0, .to_ms = T0 + MINUTES * 60000, .incidents = &incident, .nincidents = 1};
  json_t *rep = run(36, 44, &o);
  /* 36 °C is passed at minute 11, 44 at minute 19: ~8 minutes of changes. */
  json_int_t changed = geti(rep, "decisions.allow_to_deny");
  assert_true(changed >= 7 * 60 && changed <= 9 * 60);
  assert_int_equal(geti(rep, "decisions.deny_to_allow"), 0);
  assert_int_equal(geti(rep, "decisions.by_rack.r2.allow_to_deny"), changed);
  assert_null(json_object_get(json_object_get(json_object_get(rep, "decisions"), "by_rack"), "r1"));
  assert_int_equal(geti(rep, "decisions.by_check.supply_temp.allow_to_deny"), changed);
  double lead = getf(rep, "incidents.0.candidate.lead_s");
  assert_true(lead >= 6.5 * 60 && lead <= 7.5 * 60); /* minute 18 - minute 11 */
  double late = getf(rep, "incidents.0.current.lead_s");
  assert_true(isnan(late) || late < 0); /* the loose policy is late or never */
  assert_int_equal(geti(rep, "flags.summary.earlier"), 1);
  assert_int_equal(geti(rep, "must_deny_violations"), 0);
  /* Placement at the incident's start under each policy (the real ranking). */
  json_t *placed = json_object_get(
      json_object_get(json_array_get(json_object_get(rep, "incidents"), 0), "candidate"),
      "placement");
  assert_true(json_is_array(json_object_get(placed, "racks")));
  json_decref(rep);
}

static void test_loose_candidate_violates_must_deny(void **state) {
  (void)state;
  struct rp_replay_options o = {
      .from_ms = T0, .to_ms = T0 + MINUTES * 60000, .incidents = &incident, .nincidents = 1};
  json_t *rep = run(44, 36, &o);
  assert_int_equal(geti(rep, "must_deny_violations"), 1);
  assert_true(geti(rep, "incidents.0.candidate.allowed_during") > 0);
  assert_true(geti(rep, "decisions.deny_to_allow") > 0);
  assert_int_equal(geti(rep, "flags.summary.later"), 1);
  json_decref(rep);
}

static void test_racks_and_period_filter(void **state) {
  (void)state;
  const char *const only[] = {"r1"};
  struct rp_replay_options o = {
      .from_ms = T0, .to_ms = T0 + MINUTES * 60000, .racks = only, .nracks = 1};
  json_t *rep = run(36, 44, &o);
  assert_int_equal(geti(rep, "racks"), 1);
  assert_int_equal(geti(rep, "decisions.allow_to_deny"), 0);
  json_decref(rep);
  /* Only the first 10 minutes counted: r2 is below 36 until minute 11. */
  struct rp_replay_options early = {.from_ms = T0, .to_ms = T0 + 10 * 60000};
  rep = run(36, 44, &early);
  assert_int_equal(geti(rep, "decisions.allow_to_deny"), 0);
  assert_true(geti(rep, "policies.candidate.allow") <= 2 * 10 * 60 + 2);
  json_decref(rep);
}

int main(void) {
  rp_log_set_level(RP_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strict_finds_the_difference_and_the_lead),
      cmocka_unit_test(test_loose_candidate_violates_must_deny),
      cmocka_unit_test(test_racks_and_period_filter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
