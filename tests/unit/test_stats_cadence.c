/* Unit tests of issue 25's byte savings, end to end through the real
 * encoder and decoder: window statistics at their own cadence as scaled
 * integers (agent/stats_wire.c), status details and device statuses sent
 * only when they change (agent/frames.c), and the aggregator's ingest
 * (store_apply.c): scaled statistics stored as values, statistics kept between frames that
 * carry none with the newest sample of their series as their newest
 * sample, still stale once the series' samples stop, frames of older
 * agents (doubles, every frame) read as before, and kept details. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "rackpulse/frame.h"
#include "series.h"
#include "stats_wire.h"
#include "store_test_util.h"

/* ---- agent: scaling and cadence ------------------------------------------ */

static Rackpulse__V1__WindowStats stats(double mean, double slope) {
  Rackpulse__V1__WindowStats w = RACKPULSE__V1__WINDOW_STATS__INIT;
  w.series = 0;
  w.window_s = 60;
  w.count = 60;
  w.min = mean - 1;
  w.max = mean + 1;
  w.mean = mean;
  w.stddev = 0.123;
  w.p50 = mean;
  w.p95 = mean + 0.9;
  w.p99 = mean + 0.95;
  w.has_slope = true;
  w.slope_per_min = slope;
  w.newest_ms = 1000;
  return w;
}

static void test_scale(void **state) {
  (void)state;
  Rackpulse__V1__WindowStats w = stats(30.04, -0.0567);
  assert_int_equal(rp_stats_wire_scale(&w, 1), 0);
  assert_true(w.scaled);
  assert_int_equal(w.mean_x, 300);
  assert_int_equal(w.min_x, 290);
  assert_int_equal(w.p95_x, 309);
  assert_int_equal(w.stddev_x, 123);                              /* two more digits */
  assert_int_equal(w.slope_x, -57);                               /* -0.057 */
  assert_true(w.mean == 0 && w.p95 == 0 && w.slope_per_min == 0); /* doubles not sent */
  Rackpulse__V1__WindowStats bad = stats(NAN, 0);
  assert_int_equal(rp_stats_wire_scale(&bad, 1), -ERANGE);
  assert_false(bad.scaled);
}

static void test_cadence(void **state) {
  (void)state;
  struct rp_stats_sent s = {0};
  Rackpulse__V1__WindowStats w = stats(30.0, 0.01);
  rp_stats_wire_scale(&w, 1);
  assert_true(rp_stats_wire_due(&s, &w, 10, 0.01)); /* never sent */
  for (int i = 1; i < 10; i++) {
    w.newest_ms += 1000; /* a new sample, the statistics the same */
    assert_false(rp_stats_wire_due(&s, &w, 10, 0.01));
    /* A frame without a new sample (a wobble of a millisecond) ages nothing. */
    w.newest_ms += 1;
    assert_false(rp_stats_wire_due(&s, &w, 10, 0.01));
  }
  w.newest_ms += 1000;
  assert_true(rp_stats_wire_due(&s, &w, 10, 0.01)); /* the 10th frame with a new sample */
  /* Within the tolerance (1% of 30.0 = 0.3 = 3 units): not sent. */
  Rackpulse__V1__WindowStats near = stats(30.2, 0.01);
  rp_stats_wire_scale(&near, 1);
  assert_false(rp_stats_wire_due(&s, &near, 10, 0.01));
  /* Beyond it: at once. */
  Rackpulse__V1__WindowStats far = stats(30.5, 0.01);
  rp_stats_wire_scale(&far, 1);
  assert_true(rp_stats_wire_due(&s, &far, 10, 0.01));
  /* The slope vanishing is news. */
  far.has_slope = false;
  far.slope_x = 0;
  assert_true(rp_stats_wire_due(&s, &far, 10, 0.01));
  /* Doubles (not representable scaled) always go. */
  Rackpulse__V1__WindowStats dbl = stats(30.5, 0.01);
  assert_true(rp_stats_wire_due(&s, &dbl, 10, 0.01));
}

/* ---- agent: status details when they change -------------------------------- */

static rp_frame *build(struct rp_frame_builder *b, struct rp_series_table *t, bool dict) {
  struct rp_frame_meta m = {.agent_id = "a",
                            .rack_id = "r",
                            .seq = 1,
                            .ts_ms = 1000,
                            .interval_ms = 1000,
                            .with_dictionary = dict,
                            .stats_every = 10};
  struct rp_agent_health h = {0};
  uint8_t *buf;
  size_t len;
  assert_int_equal(rp_builder_build(b, &m, t, NULL, 0, &h, &buf, &len), 0);
  rp_frame *f = NULL;
  char err[200];
  int rc = rp_frame_decode(buf, len, &f, err, sizeof(err));
  free(buf);
  if (rc != 0)
    fail_msg("decode: %s", err);
  assert_int_equal(f->stats_every_frames, 10);
  return f;
}

static void test_detail_on_change(void **state) {
  (void)state;
  struct rp_series_table t;
  assert_int_equal(rp_series_table_init(&t, 8), 0);
  struct rp_reading r = {.name = "psu.input_power", .unit = "W"};
  uint32_t id;
  assert_int_equal(rp_series_lookup(&t, "gpu1", &r, &id), 0);
  struct rp_frame_builder *b = rp_builder_new(64);
  const char *want[][2] = {
      {"PS1: sensor disabled", "0"}, /* first: in full */
      {"", "1"},                     /* the same: kept */
      {"PS1: no reading (ns)", "0"}, /* changed: in full */
      {"", "1"},
  };
  const char *details[] = {"PS1: sensor disabled", "PS1: sensor disabled", "PS1: no reading (ns)",
                           "PS1: no reading (ns)"};
  for (size_t i = 0; i < 4; i++) {
    rp_builder_add_status(b, id, RP_READING_ABSENT, details[i]);
    rp_frame *f = build(b, &t, i == 0);
    assert_int_equal(f->n_statuses, 1);
    assert_int_equal(f->statuses[0]->status, RACKPULSE__V1__READING_STATUS__READING_ABSENT);
    assert_string_equal(f->statuses[0]->detail, want[i][0]);
    assert_int_equal(f->statuses[0]->detail_kept, want[i][1][0] == '1');
    rp_frame_free(f);
  }
  /* With the dictionary: in full again. */
  rp_builder_add_status(b, id, RP_READING_ABSENT, details[3]);
  rp_frame *f = build(b, &t, true);
  assert_string_equal(f->statuses[0]->detail, details[3]);
  assert_false(f->statuses[0]->detail_kept);
  rp_frame_free(f);
  /* A value in between: the same failure again is news. */
  int64_t v = 1400;
  rp_builder_add_block(b, 2000, &id, &v, 1);
  rp_frame_free(build(b, &t, false));
  rp_builder_add_status(b, id, RP_READING_ABSENT, details[3]);
  f = build(b, &t, false);
  assert_string_equal(f->statuses[0]->detail, details[3]);
  rp_frame_free(f);
  rp_builder_free(b);
  rp_series_table_free(&t);
}

static void test_devices_on_change(void **state) {
  (void)state;
  static const struct rp_collector ipmi = {.name = "ipmi"};
  struct rp_target t[2] = {{.name = "gpu1", .collector = &ipmi, .up = true, .scrapes = 1},
                           {.name = "gpu2", .collector = &ipmi, .up = true, .scrapes = 1}};
  struct rp_target *tp[2] = {&t[0], &t[1]};
  struct rp_series_table st;
  assert_int_equal(rp_series_table_init(&st, 8), 0);
  struct rp_frame_builder *b = rp_builder_new(64);
  struct rp_frame_meta m = {.agent_id = "a",
                            .rack_id = "r",
                            .seq = 1,
                            .ts_ms = 1000,
                            .interval_ms = 1000,
                            .with_dictionary = true};
  struct rp_agent_health h = {0};
  size_t want[] = {2, 0, 1, 1, 2}; /* dictionary; nothing new; gpu2 scraped; gpu1 down; dict */
  for (size_t i = 0; i < 5; i++) {
    m.with_dictionary = i == 0 || i == 4;
    if (i == 2)
      t[1].scrapes++;
    if (i == 3) {
      t[0].up = false;
      t[0].failures++;
    }
    uint8_t *buf;
    size_t len;
    assert_int_equal(rp_builder_build(b, &m, &st, tp, 2, &h, &buf, &len), 0);
    rp_frame *f = NULL;
    char err[200];
    assert_int_equal(rp_frame_decode(buf, len, &f, err, sizeof(err)), 0);
    free(buf);
    assert_int_equal(f->n_devices, want[i]);
    if (i == 2)
      assert_string_equal(f->devices[0]->device, "gpu2");
    if (i == 3)
      assert_true(strcmp(f->devices[0]->device, "gpu1") == 0 && !f->devices[0]->up);
    rp_frame_free(f);
  }
  rp_builder_free(b);
  rp_series_table_free(&st);
}

/* ---- aggregator: ingest ---------------------------------------------------- */

static Rackpulse__V1__WindowStats ws_store[2], *ws_ptrs[2];

/* Frame seq at ts of agent-1 (standard dictionary): supply temp sample
 * (decimals 2) and, when with_stats, its 60 s statistics. */
static void frame(struct fb *b, uint64_t seq, int64_t ts, bool sample, bool with_stats, bool scaled,
                  uint32_t every) {
  fb_init(b, "agent-1", "r1", seq, ts, 1);
  fb_std_dict(b);
  if (sample)
    fb_sample(b, 0, 3012);
  fb_sample(b, 2, 1500);
  b->f.stats_every_frames = every;
  if (!with_stats)
    return;
  ws_store[0] = stats(30.12, 0.05);
  ws_store[0].newest_ms = ts;
  if (scaled)
    rp_stats_wire_scale(&ws_store[0], 2);
  ws_ptrs[0] = &ws_store[0];
  b->f.stats = ws_ptrs;
  b->f.n_stats = 1;
}

static struct store_stats read_stats(struct store *s) {
  struct store_read *r = NULL;
  struct store_stats st;
  assert_int_equal(store_read_begin(s, &r), 0);
  int rc = store_read_stats_by_name(r, "r1", "cdu.supply_temp", 60, &st);
  store_read_end(r);
  assert_int_equal(rc, 0);
  return st;
}

static void test_ingest_cadence(void **state) {
  struct fx *x = *state;
  struct fb b;
  frame(&b, 1, 10000, true, true, true, 10);
  assert_int_equal(apply_one(x->s, &b, 0), STORE_APPLIED);
  struct store_stats st = read_stats(x->s);
  assert_true(fabs(st.mean - 30.12) < 1e-9 && fabs(st.p95 - 31.02) < 1e-9);
  assert_true(fabs(st.stddev - 0.123) < 1e-9 && fabs(st.slope_per_min - 0.05) < 1e-9);
  assert_int_equal(st.newest_ms, 10000);
  /* Frames without statistics: kept, newest sample = the series' sample. */
  frame(&b, 2, 11000, true, false, false, 10);
  assert_int_equal(apply_one(x->s, &b, 1), STORE_APPLIED);
  st = read_stats(x->s);
  assert_true(fabs(st.mean - 30.12) < 1e-9);
  assert_int_equal(st.newest_ms, 11000);
  assert_int_equal(st.ts_ms, 11000);
  /* The series' samples stop (its device is down): the statistics age. */
  frame(&b, 3, 12000, false, false, false, 10);
  assert_int_equal(apply_one(x->s, &b, 2), STORE_APPLIED);
  assert_int_equal(read_stats(x->s).newest_ms, 11000);
}

static void test_ingest_old_agent(void **state) {
  struct fx *x = *state;
  struct fb b;
  frame(&b, 1, 10000, true, true, false, 0); /* doubles, every frame */
  assert_int_equal(apply_one(x->s, &b, 0), STORE_APPLIED);
  struct store_stats st = read_stats(x->s);
  assert_true(fabs(st.mean - 30.12) < 1e-9 && fabs(st.stddev - 0.123) < 1e-9);
  /* An older agent's frame without statistics refreshes nothing. */
  frame(&b, 2, 11000, true, false, false, 0);
  assert_int_equal(apply_one(x->s, &b, 1), STORE_APPLIED);
  assert_int_equal(read_stats(x->s).newest_ms, 10000);
}

static void test_ingest_detail_kept(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, 10000, 1);
  fb_std_dict(&b);
  fb_status(&b, 2, RACKPULSE__V1__READING_STATUS__READING_ERROR, "pdu1: timeout");
  assert_int_equal(apply_one(x->s, &b, 0), STORE_APPLIED);
  fb_init(&b, "agent-1", "r1", 2, 11000, 1);
  fb_std_dict(&b);
  fb_status(&b, 2, RACKPULSE__V1__READING_STATUS__READING_ERROR, "");
  b.sts[0].detail_kept = true;
  assert_int_equal(apply_one(x->s, &b, 1), STORE_APPLIED);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "pdu.power", &l), 0);
  assert_string_equal(l.detail, "pdu1: timeout");
  assert_int_equal(l.ts_ms, 11000);
  /* Another code with a kept detail: the old text is not taken over. */
  fb_init(&b, "agent-1", "r1", 3, 12000, 1);
  fb_std_dict(&b);
  fb_status(&b, 2, RACKPULSE__V1__READING_STATUS__READING_ABSENT, "");
  b.sts[0].detail_kept = true;
  assert_int_equal(apply_one(x->s, &b, 2), STORE_APPLIED);
  assert_int_equal(latest(x->s, "r1", "pdu.power", &l), 0);
  assert_string_equal(l.detail, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scale),
      cmocka_unit_test(test_cadence),
      cmocka_unit_test(test_detail_on_change),
      cmocka_unit_test(test_devices_on_change),
      cmocka_unit_test_setup_teardown(test_ingest_cadence, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_ingest_old_agent, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_ingest_detail_kept, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
