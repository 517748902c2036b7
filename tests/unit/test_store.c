/* Unit tests for the aggregator's LMDB state (aggregator/store.c) and the
 * deploy gate that reads it (aggregator/gate.c). Each test opens a store in
 * a fresh mkdtemp directory under /tmp and removes it afterwards. Frames are
 * built with the protobuf-c structs, packed and decoded with rp_frame_decode()
 * exactly as the consumer does, then applied in batches (store_test_util.h).
 * Identity (incarnations, dictionaries by hash) and layout migration are
 * test_store_identity.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator.h"
#include "gate.h"
#include "ledger.h"
#include "policy.h"
#include "store.h"
#include "store_test_util.h"

/* Frame time of the tests. The gate tests move it to the real clock: the
 * store stamps every record with its real receive time, and the gate judges
 * freshness and clock skew by that too. */
static int64_t T0 = 1700000000000LL;

/* ---- store --------------------------------------------------------------- */

static void test_apply_and_read(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2137);
  fb_sample(&b, 1, -15);
  fb_sample(&b, 2, 4200);
  fb_device(&b, "cdu1", "modbus", 1, "", 100, 0);
  fb_device(&b, "pdu1", "snmp", 0, "pdu1: timeout", 40, 7);
  int64_t before = rp_now_ms();
  struct fb *one = &b;
  enum store_outcome o;
  apply_batch(x->s, &one, 1, 3, 41, &o);
  int64_t after = rp_now_ms();
  assert_int_equal(o, STORE_APPLIED);

  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 21.37);
  assert_int_equal(l.ts_ms, T0);
  assert_int_equal(l.status, RACKPULSE__V1__READING_STATUS__READING_OK);
  assert_int_equal(l.decimals, 2);
  assert_string_equal(l.unit, "Cel");
  assert_string_equal(l.detail, "");
  assert_true(latest_value(x->s, "r1", "cdu.flow") == -1.5);
  assert_true(latest_value(x->s, "r1", "pdu.power") == 4200.0);
  /* A prefix of a name, another rack: nothing. */
  assert_int_equal(latest(x->s, "r1", "cdu", &l), -ENOENT);
  assert_int_equal(latest(x->s, "r1", "cdu.supply", &l), -ENOENT);
  assert_int_equal(latest(x->s, "r2", "cdu.flow", &l), -ENOENT);
  assert_int_equal(latest(x->s, "r", "cdu.flow", &l), -ENOENT);

  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(x->s, &r), 0);
  struct keys q = {0};
  assert_int_equal(store_read_each_latest(r, "r1", on_latest, &q), 0);
  assert_int_equal(q.n, 3);
  assert_string_equal(q.key[0], "cdu.flow@cdu1");
  assert_string_equal(q.key[1], "cdu.supply_temp{loop=primary}@cdu1");
  assert_string_equal(q.key[2], "pdu.power@pdu1");
  assert_int_equal(q.l[0].decimals, 1);
  assert_string_equal(q.l[0].unit, "L/min");

  memset(&q, 0, sizeof(q));
  assert_int_equal(store_read_each_device(r, "r1", on_device, &q), 0);
  assert_int_equal(q.n, 2);
  assert_string_equal(q.key[0], "cdu1");
  assert_true(q.d[0].up);
  assert_string_equal(q.d[0].kind, "modbus");
  assert_string_equal(q.d[0].last_error, "");
  assert_int_equal(q.d[0].scrapes, 100);
  assert_int_equal(q.d[0].scrape_ms, 9);
  assert_int_equal(q.d[0].last_ok_ms, T0 - 1000);
  assert_int_equal(q.d[0].reported_ms, T0);
  assert_string_equal(q.key[1], "pdu1");
  assert_false(q.d[1].up);
  assert_string_equal(q.d[1].kind, "snmp");
  assert_string_equal(q.d[1].last_error, "pdu1: timeout");
  assert_int_equal(q.d[1].failures, 7);

  struct store_rack rk;
  assert_int_equal(store_read_rack(r, "r1", &rk), 0);
  assert_int_equal(rk.last_frame_ms, T0);
  assert_true(rk.received_ms >= before && rk.received_ms <= after);
  assert_string_equal(rk.agent, "agent-1");
  assert_int_equal(rk.last_seq, 1);
  assert_int_equal(store_read_rack(r, "r2", &rk), -ENOENT);
  memset(&q, 0, sizeof(q));
  assert_int_equal(store_read_each_rack(r, on_rack, &q), 0);
  assert_int_equal(q.n, 1);
  assert_string_equal(q.key[0], "r1");
  store_read_end(r);

  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.last_seq, 1);
  assert_int_equal(ag.frames, 1);
  assert_int_equal(ag.duplicates, 0);
  assert_int_equal(ag.gaps, 0);
  assert_int_equal(ag.undecodable, 0);
  assert_int_equal(ag.dict_version, 1);
  assert_int_equal(ag.last_ms, T0);
  assert_string_equal(ag.rack, "r1");

  /* Offsets: the next one to consume. */
  int64_t next = -1;
  assert_int_equal(store_get_offset(x->s, TOPIC, 3, &next), 0);
  assert_int_equal(next, 42);
  assert_int_equal(store_get_offset(x->s, TOPIC, 4, &next), -ENOENT);
  assert_int_equal(store_get_offset(x->s, TOPIC, 30, &next), -ENOENT);
  assert_int_equal(store_get_offset(x->s, "other", 3, &next), -ENOENT);
  assert_int_equal(next, 42);
}

static void test_batch_of_frames_and_skip(void **state) {
  struct fx *x = *state;
  struct fb b1, b2, b3;
  fb_init(&b1, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b1);
  fb_sample(&b1, 0, 2000);
  fb_init(&b2, "agent-1", "r1", 2, T0 + 1000, 1);
  fb_sample(&b2, 0, 2100);
  fb_init(&b3, "agent-2", "r2", 1, T0 + 1000, 1);
  fb_def(&b3, 0, "cdu.supply_temp", "Cel", "cdu9", 1, NULL, NULL);
  fb_sample(&b3, 0, 255);
  struct fb *frames[] = {&b1, &b2, &b3};
  enum store_outcome o[3];
  apply_batch(x->s, frames, 3, 0, 100, o);
  assert_int_equal(o[0], STORE_APPLIED);
  assert_int_equal(o[1], STORE_APPLIED);
  assert_int_equal(o[2], STORE_APPLIED);
  /* The second frame used the dictionary the first stored in the batch. */
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 21.0);
  assert_true(latest_value(x->s, "r2", "cdu.supply_temp") == 25.5);
  assert_int_equal(count_agents(x->s), 2);
  int64_t next;
  assert_int_equal(store_get_offset(x->s, TOPIC, 0, &next), 0);
  assert_int_equal(next, 103);

  /* A skipped (invalid) message still moves the offset. */
  struct store_batch *bt;
  char err[256];
  assert_int_equal(store_batch_begin(x->s, &bt, err, sizeof(err)), 0);
  assert_int_equal(store_batch_skip(bt, TOPIC, 0, 103, err, sizeof(err)), 0);
  assert_int_equal(store_batch_skip(bt, TOPIC, 1, 7, err, sizeof(err)), 0);
  assert_int_equal(store_batch_commit(bt, err, sizeof(err)), 0);
  assert_int_equal(store_get_offset(x->s, TOPIC, 0, &next), 0);
  assert_int_equal(next, 104);
  assert_int_equal(store_get_offset(x->s, TOPIC, 1, &next), 0);
  assert_int_equal(next, 8);
}

static void test_duplicates(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 5, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2137);
  assert_int_equal(apply_one(x->s, &b, 10), STORE_APPLIED);

  /* The same seq with another value, then a lower one: neither applies. */
  fb_init(&b, "agent-1", "r1", 5, T0 + 5000, 1);
  fb_sample(&b, 0, 9999);
  assert_int_equal(apply_one(x->s, &b, 11), STORE_DUPLICATE);
  fb_init(&b, "agent-1", "r1", 4, T0 + 6000, 1);
  fb_sample(&b, 0, 8888);
  fb_device(&b, "cdu1", "modbus", 0, "should not appear", 1, 1);
  assert_int_equal(apply_one(x->s, &b, 12), STORE_DUPLICATE);

  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 21.37);
  assert_int_equal(l.ts_ms, T0);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.duplicates, 2);
  assert_int_equal(ag.frames, 1);
  assert_int_equal(ag.last_seq, 5);
  assert_int_equal(ag.last_ms, T0);
  struct store_rack rk;
  assert_int_equal(rack_of(x->s, "r1", &rk), 0);
  assert_int_equal(rk.last_frame_ms, T0);
  assert_int_equal(rk.last_seq, 5);
  struct keys q = {0};
  struct store_read *r;
  assert_int_equal(store_read_begin(x->s, &r), 0);
  store_read_each_device(r, "r1", on_device, &q);
  store_read_end(r);
  assert_int_equal(q.n, 0);
  /* Offsets move on past duplicates (they were consumed). */
  int64_t next;
  assert_int_equal(store_get_offset(x->s, TOPIC, 0, &next), 0);
  assert_int_equal(next, 13);

  /* seq 0 from a new agent is a first frame, and seq 0 again a duplicate. */
  fb_init(&b, "agent-0", "r0", 0, T0, 1);
  fb_std_dict(&b);
  assert_int_equal(apply_one(x->s, &b, 13), STORE_APPLIED);
  assert_int_equal(apply_one(x->s, &b, 14), STORE_DUPLICATE);
}

static void test_gaps(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  assert_int_equal(apply_one(x->s, &b, 0), STORE_APPLIED);
  fb_init(&b, "agent-1", "r1", 5, T0 + 4000, 1);
  assert_int_equal(apply_one(x->s, &b, 1), STORE_APPLIED);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.gaps, 3);
  assert_int_equal(ag.last_seq, 5);
  assert_int_equal(ag.frames, 2);
  fb_init(&b, "agent-1", "r1", 6, T0 + 5000, 1);
  apply_one(x->s, &b, 2);
  assert_int_equal(agent_of(x->s, "agent-1").gaps, 3);
  fb_init(&b, "agent-1", "r1", 10, T0 + 9000, 1);
  apply_one(x->s, &b, 3);
  assert_int_equal(agent_of(x->s, "agent-1").gaps, 6);
  /* A late frame from inside a gap is a duplicate, not a fill. */
  fb_init(&b, "agent-1", "r1", 8, T0 + 7000, 1);
  assert_int_equal(apply_one(x->s, &b, 4), STORE_DUPLICATE);
  ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.gaps, 6);
  assert_int_equal(ag.duplicates, 1);
  /* The first frame of an agent starts its sequence: no gap. */
  fb_init(&b, "agent-2", "r2", 1000, T0, 1);
  apply_one(x->s, &b, 5);
  assert_int_equal(agent_of(x->s, "agent-2").gaps, 0);
}

static void test_dictionary_versions(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2000);
  apply_one(x->s, &b, 0);
  /* Another agent whose id extends this one's: its dictionary must survive
   * when agent-1's is replaced. */
  fb_init(&b, "agent-1x", "r9", 1, T0, 1);
  fb_def(&b, 1, "pdu.power", "W", "pdu9", 0, NULL, NULL);
  apply_one(x->s, &b, 1);

  /* Version 2 announced but no dictionary: the samples cannot be read. */
  fb_init(&b, "agent-1", "r1", 2, T0 + 1000, 2);
  fb_sample(&b, 0, 3000);
  fb_sample(&b, 1, 10);
  assert_int_equal(apply_one(x->s, &b, 2), STORE_APPLIED);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.undecodable, 2);
  assert_int_equal(ag.dict_version, 1);
  assert_int_equal(ag.frames, 2);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 20.0);

  /* Version 2 arrives with a smaller dictionary: series 0 only, now with 1
   * decimal. Series 1 is gone from it. */
  fb_init(&b, "agent-1", "r1", 3, T0 + 2000, 2);
  fb_def(&b, 0, "cdu.supply_temp", "Cel", "cdu1", 1, "loop", "primary");
  fb_sample(&b, 0, 301);
  fb_sample(&b, 1, 11);
  apply_one(x->s, &b, 3);
  ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.dict_version, 2);
  assert_int_equal(ag.undecodable, 3);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 30.1);

  /* Without a dictionary, at the stored version: decoded from the store. */
  fb_init(&b, "agent-1", "r1", 4, T0 + 3000, 2);
  fb_sample(&b, 0, 305);
  apply_one(x->s, &b, 4);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 30.5);
  assert_int_equal(agent_of(x->s, "agent-1").undecodable, 3);

  /* agent-1x still decodes with its own dictionary. */
  fb_init(&b, "agent-1x", "r9", 2, T0 + 3000, 1);
  fb_sample(&b, 1, 7000);
  apply_one(x->s, &b, 5);
  assert_true(latest_value(x->s, "r9", "pdu.power") == 7000.0);
  assert_int_equal(agent_of(x->s, "agent-1x").undecodable, 0);
}

static void test_statuses(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2137);
  apply_one(x->s, &b, 0);
  fb_init(&b, "agent-1", "r1", 2, T0 + 1000, 1);
  fb_status(&b, 0, RACKPULSE__V1__READING_STATUS__READING_ERROR, "exception 2");
  fb_status(&b, 6, RACKPULSE__V1__READING_STATUS__READING_ABSENT, "no such series");
  apply_one(x->s, &b, 1);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_int_equal(l.status, RACKPULSE__V1__READING_STATUS__READING_ERROR);
  assert_string_equal(l.detail, "exception 2");
  assert_int_equal(l.ts_ms, T0 + 1000);
  assert_int_equal(agent_of(x->s, "agent-1").undecodable, 1);
}

static void test_abort_leaves_no_trace(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2137);
  fb_device(&b, "cdu1", "modbus", 1, "", 1, 0);
  rp_frame *f = fb_decode(&b);
  struct store_batch *bt;
  char err[256];
  enum store_outcome o;
  assert_int_equal(store_batch_begin(x->s, &bt, err, sizeof(err)), 0);
  assert_int_equal(store_batch_apply(bt, f, TOPIC, 2, 50, &o, err, sizeof(err)), 0);
  assert_int_equal(store_batch_skip(bt, TOPIC, 3, 60, err, sizeof(err)), 0);
  store_batch_abort(bt);
  store_batch_abort(NULL);

  struct store_latest l;
  struct store_rack rk;
  int64_t next;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), -ENOENT);
  assert_int_equal(rack_of(x->s, "r1", &rk), -ENOENT);
  assert_int_equal(store_get_offset(x->s, TOPIC, 2, &next), -ENOENT);
  assert_int_equal(store_get_offset(x->s, TOPIC, 3, &next), -ENOENT);
  assert_int_equal(count_agents(x->s), 0);

  /* The same frame applies afresh afterwards: it is not a duplicate, and its
   * dictionary was not kept either (the next frame must carry one). */
  assert_int_equal(store_batch_begin(x->s, &bt, err, sizeof(err)), 0);
  assert_int_equal(store_batch_apply(bt, f, TOPIC, 2, 50, &o, err, sizeof(err)), 0);
  assert_int_equal(o, STORE_APPLIED);
  assert_int_equal(store_batch_commit(bt, err, sizeof(err)), 0);
  rp_frame_free(f);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 21.37);
  assert_int_equal(store_get_offset(x->s, TOPIC, 2, &next), 0);
  assert_int_equal(next, 51);
  assert_int_equal(agent_of(x->s, "agent-1").frames, 1);
}

static void test_older_sample_never_replaces_newer(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0 + 5000, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2500);
  apply_one(x->s, &b, 0);
  /* A newer frame carrying an older sample (a late scrape). */
  fb_init(&b, "agent-1", "r1", 2, T0 + 6000, 1);
  b.block.ts_ms = T0 + 4000;
  fb_sample(&b, 0, 1000);
  fb_sample(&b, 1, 77);
  apply_one(x->s, &b, 1);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 25.0);
  assert_int_equal(l.ts_ms, T0 + 5000);
  /* ...while a series with no newer value takes it. */
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 7.7);
  /* An equal time replaces. */
  fb_init(&b, "agent-1", "r1", 3, T0 + 7000, 1);
  b.block.ts_ms = T0 + 5000;
  fb_sample(&b, 0, 2600);
  apply_one(x->s, &b, 2);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 26.0);

  /* The rack keeps the newest frame time across agents. */
  fb_init(&b, "agent-2", "r1", 1, T0 + 1000, 1);
  fb_def(&b, 0, "pdu.power", "W", "pdu2", 0, NULL, NULL);
  fb_sample(&b, 0, 5);
  apply_one(x->s, &b, 3);
  struct store_rack rk;
  assert_int_equal(rack_of(x->s, "r1", &rk), 0);
  assert_int_equal(rk.last_frame_ms, T0 + 7000);
  assert_string_equal(rk.agent, "agent-1");
  assert_int_equal(rk.last_seq, 3);
}

static void test_reopen_keeps_everything(void **state) {
  struct fx *x = *state;
  struct fb b;
  fb_init(&b, "agent-1", "r1", 7, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2137);
  fb_device(&b, "cdu1", "modbus", 1, "", 3, 0);
  struct fb *one = &b;
  apply_batch(x->s, &one, 1, 5, 900, NULL);
  fx_reopen(x);

  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 21.37);
  int64_t next;
  assert_int_equal(store_get_offset(x->s, TOPIC, 5, &next), 0);
  assert_int_equal(next, 901);
  struct store_rack rk;
  assert_int_equal(rack_of(x->s, "r1", &rk), 0);
  assert_int_equal(rk.last_seq, 7);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.last_seq, 7);
  assert_int_equal(ag.dict_version, 1);
  struct keys q = {0};
  struct store_read *r;
  assert_int_equal(store_read_begin(x->s, &r), 0);
  store_read_each_device(r, "r1", on_device, &q);
  store_read_end(r);
  assert_int_equal(q.n, 1);
  assert_string_equal(q.key[0], "cdu1");

  /* The dictionary survived too: a frame without one decodes. */
  fb_init(&b, "agent-1", "r1", 8, T0 + 1000, 1);
  fb_sample(&b, 1, 123);
  apply_batch(x->s, &one, 1, 5, 901, NULL);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 12.3);
  assert_int_equal(agent_of(x->s, "agent-1").undecodable, 0);
  /* And seq 8 is remembered as applied after another fx_reopen. */
  fx_reopen(x);
  assert_int_equal(apply_one(x->s, &b, 902), STORE_DUPLICATE);
}

/* Series near the series-key limit frame validation allows
 * (RP_SERIES_KEY_MAX: a 120-byte name and two 120-byte label values) are
 * stored as distinct series, each under its own key. */
static void test_long_series_keys_stay_distinct(void **state) {
  struct fx *x = *state;
  char name[121], val[121];
  memset(name, 'n', 120);
  name[120] = '\0';
  memset(val, 'v', 120);
  val[120] = '\0';
  Rackpulse__V1__Label l1 = RACKPULSE__V1__LABEL__INIT, l2 = RACKPULSE__V1__LABEL__INIT;
  l1.key = "a";
  l1.value = val;
  l2.key = "b";
  l2.value = val;
  Rackpulse__V1__Label *labels[] = {&l1, &l2};
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_def(&b, 0, name, "Cel", "cdu1", 0, NULL, NULL);
  fb_def(&b, 1, name, "Cel", "cdu2", 0, NULL, NULL);
  for (size_t i = 0; i < 2; i++) {
    b.defs[i].labels = labels;
    b.defs[i].n_labels = 2;
  }
  fb_sample(&b, 0, 11);
  fb_sample(&b, 1, 22);
  apply_one(x->s, &b, 0);
  assert_int_equal(agent_of(x->s, "agent-1").undecodable, 0);
  struct keys q = {0};
  struct store_read *r;
  assert_int_equal(store_read_begin(x->s, &r), 0);
  store_read_each_latest(r, "r1", on_latest, &q);
  store_read_end(r);
  /* Regression: keys were once cut at 300 bytes, so cdu1's and cdu2's
   * series shared one key and the second overwrote the first. */
  assert_int_equal(q.n, 2);
}

/* A series definition with many long labels (each label within its own
 * limit, together past RP_SERIES_KEY_MAX) is refused by frame validation
 * before it can reach the store: the store's keys are bounded by it. */
static void test_oversized_series_def_is_refused(void **state) {
  (void)state;
  enum { NL = 8 };
  char keys[NL][RP_FRAME_MAX_NAME + 1], val[RP_FRAME_MAX_NAME + 1];
  Rackpulse__V1__Label labels[NL], *ptrs[NL];
  memset(val, 'v', RP_FRAME_MAX_NAME);
  val[RP_FRAME_MAX_NAME] = '\0';
  for (size_t i = 0; i < NL; i++) {
    memset(keys[i], 'k', RP_FRAME_MAX_NAME);
    keys[i][0] = (char)('a' + i);
    keys[i][RP_FRAME_MAX_NAME] = '\0';
    rackpulse__v1__label__init(&labels[i]);
    labels[i].key = keys[i];
    labels[i].value = val;
    ptrs[i] = &labels[i];
  }
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_def(&b, 0, "cdu.supply_temp", "Cel", "cdu1", 1, NULL, NULL);
  b.defs[0].labels = ptrs;
  b.defs[0].n_labels = NL;
  fb_sample(&b, 0, 215);
  size_t len = rackpulse__v1__frame__get_packed_size(&b.f);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  rackpulse__v1__frame__pack(&b.f, buf);
  rp_frame *f = NULL;
  char err[256] = "";
  int rc = rp_frame_decode(buf, len, &f, err, sizeof(err));
  free(buf);
  assert_int_equal(rc, -EPROTO);
  assert_null(f);
  assert_non_null(strstr(err, "limit 400"));
}

/* ---- gate ---------------------------------------------------------------- */

/* The built-in policy's settings these tests vary. */
struct policy_args {
  double supply_temp_max;
  const char *series;
};
static const struct policy_args policy = {30.0, "cdu.supply_temp"};

/* Evaluates with a fresh gate (built-in policy "policy-7", staleness 10 s)
 * and a throwaway ledger. Returns the decision, or NULL with *status. */
static json_t *evaluate(struct fx *x, const struct policy_args *pa, const char *rack, int64_t now,
                        int *status) {
  struct rp_policy *p;
  struct rp_gate *g;
  struct rp_ledger *l;
  char dir[96], err[256], cmd[160];
  snprintf(dir, sizeof(dir), "%s/ledger-XXXXXX", x->dir);
  assert_non_null(mkdtemp(dir));
  struct rp_ledger_limits lim = {
      .map_size = 1 << 20, .audit_max_age_ms = 1000000, .audit_max_entries = 100};
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
  assert_int_equal(rp_policy_builtin("policy-7", 10000, pa->supply_temp_max, pa->series, &p), 0);
  assert_int_equal(rp_gate_new(p, &g), 0);
  struct rp_gate_request q = {.rack = rack, .kw = 12.5};
  json_t *d = rp_gate_evaluate(g, x->s, l, &q, now, status, err, sizeof(err));
  rp_gate_free(g);
  rp_ledger_close(l);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return d;
}

/* Rack r1 at T0 with supply temperature 21.37 °C. */
static void gate_world(struct fx *x) {
  struct fb b;
  T0 = rp_now_ms();
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2137);
  apply_one(x->s, &b, 0);
}

static const json_t *check_named(const json_t *d, const char *name) {
  const json_t *checks = json_object_get(d, "checks");
  assert_true(json_is_array(checks));
  for (size_t i = 0; i < json_array_size(checks); i++) {
    const json_t *c = json_array_get(checks, i);
    if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
      return c;
  }
  fail_msg("no check %s", name);
  return NULL;
}

static bool check_passes(const json_t *d, const char *name) {
  const json_t *p = json_object_get(check_named(d, name), "pass");
  assert_true(json_is_boolean(p));
  return json_is_true(p);
}

static const char *decision(const json_t *d) {
  const char *s = json_string_value(json_object_get(d, "decision"));
  assert_non_null(s);
  return s;
}

static json_t *gate(struct fx *x, const struct policy_args *p, const char *rack, int64_t now) {
  int status = 0;
  json_t *d = evaluate(x, p, rack, now, &status);
  assert_non_null(d);
  return d;
}

static void test_gate_allow(void **state) {
  struct fx *x = *state;
  gate_world(x);
  json_t *d = gate(x, &policy, "r1", T0 + 2000);
  assert_string_equal(decision(d), "allow");
  assert_string_equal(json_string_value(json_object_get(d, "rack")), "r1");
  assert_true(json_number_value(json_object_get(d, "kw")) == 12.5);
  assert_string_equal(json_string_value(json_object_get(d, "policy_version")), "policy-7");
  assert_int_equal(json_integer_value(json_object_get(d, "evaluated_at_ms")), T0 + 2000);
  const char *id = json_string_value(json_object_get(d, "decision_id"));
  assert_non_null(id);
  assert_int_equal(strlen(id), 32);
  for (size_t i = 0; i < 32; i++)
    if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
      fail_msg("decision_id %s is not lower-case hex", id);

  assert_true(check_passes(d, "flags"));
  assert_true(check_passes(d, "alarms")); /* none reported: fail_closed is off for alarms */
  const json_t *fresh = check_named(d, "telemetry_fresh");
  assert_true(json_number_value(json_object_get(fresh, "observed")) == 2.0);
  assert_true(json_number_value(json_object_get(fresh, "limit")) == 10.0);
  assert_true(json_is_true(json_object_get(fresh, "pass")));
  assert_null(json_object_get(fresh, "reason"));
  const json_t *supply = check_named(d, "supply_temp");
  assert_true(json_number_value(json_object_get(supply, "observed")) == 21.37);
  assert_true(json_number_value(json_object_get(supply, "limit")) == 30.0);
  assert_string_equal(json_string_value(json_object_get(supply, "unit")), "Cel");
  assert_true(json_is_true(json_object_get(supply, "pass")));

  /* Every decision has its own id. */
  json_t *d2 = gate(x, &policy, "r1", T0 + 2000);
  assert_string_not_equal(json_string_value(json_object_get(d2, "decision_id")), id);
  json_decref(d2);
  json_decref(d);

  /* The limit itself passes (<=). */
  struct policy_args at = policy;
  at.supply_temp_max = 21.37;
  d = gate(x, &at, "r1", T0 + 10000);
  assert_string_equal(decision(d), "allow");
  json_decref(d);
}

static void test_gate_deny_hot(void **state) {
  struct fx *x = *state;
  gate_world(x);
  struct policy_args p = policy;
  p.supply_temp_max = 20.0;
  json_t *d = gate(x, &p, "r1", T0 + 2000);
  assert_string_equal(decision(d), "deny");
  assert_true(check_passes(d, "telemetry_fresh"));
  assert_false(check_passes(d, "supply_temp"));
  const json_t *c = check_named(d, "supply_temp");
  assert_true(json_number_value(json_object_get(c, "observed")) == 21.37);
  assert_true(json_number_value(json_object_get(c, "limit")) == 20.0);
  assert_non_null(json_string_value(json_object_get(c, "reason")));
  json_decref(d);
}

static void test_gate_deny_stale(void **state) {
  struct fx *x = *state;
  gate_world(x);
  json_t *d = gate(x, &policy, "r1", T0 + 10001);
  assert_string_equal(decision(d), "deny");
  assert_false(check_passes(d, "telemetry_fresh"));
  const json_t *c = check_named(d, "telemetry_fresh");
  assert_true(json_number_value(json_object_get(c, "observed")) == 10.001);
  assert_non_null(json_string_value(json_object_get(c, "reason")));
  /* The supply reading is as old: it fails closed too. */
  assert_false(check_passes(d, "supply_temp"));
  json_decref(d);
}

static void test_gate_missing_series_fails_closed(void **state) {
  struct fx *x = *state;
  gate_world(x);
  struct policy_args p = policy;
  p.series = "cdu.return_temp";
  json_t *d = gate(x, &p, "r1", T0 + 1000);
  assert_string_equal(decision(d), "deny");
  assert_true(check_passes(d, "telemetry_fresh"));
  assert_false(check_passes(d, "supply_temp"));
  const json_t *c = check_named(d, "supply_temp");
  assert_true(json_is_null(json_object_get(c, "observed")));
  assert_true(json_number_value(json_object_get(c, "limit")) == 30.0);
  assert_non_null(json_string_value(json_object_get(c, "reason")));
  json_decref(d);

  /* A reading whose last status is not OK fails closed as well. */
  struct fb b;
  fb_init(&b, "agent-1", "r1", 2, T0 + 1000, 1);
  fb_status(&b, 0, RACKPULSE__V1__READING_STATUS__READING_ERROR, "exception 2");
  apply_one(x->s, &b, 1);
  d = gate(x, &policy, "r1", T0 + 1500);
  assert_string_equal(decision(d), "deny");
  c = check_named(d, "supply_temp");
  assert_false(json_is_true(json_object_get(c, "pass")));
  assert_true(json_is_null(json_object_get(c, "observed")));
  assert_non_null(strstr(json_string_value(json_object_get(c, "reason")), "exception 2"));
  json_decref(d);
}

static void test_gate_unknown_rack(void **state) {
  struct fx *x = *state;
  gate_world(x);
  int status = 0;
  json_t *d = evaluate(x, &policy, "r2", T0, &status);
  assert_null(d);
  assert_int_equal(status, 404);
  status = 0;
  d = evaluate(x, &policy, "", T0, &status);
  assert_null(d);
  assert_int_equal(status, 404);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

/* Two CDUs: a dead one never drops out of the max; the check fails naming
 * it until it is retired, and a retirement is only for devices that
 * reported. */
static void test_gate_dead_member_fails_until_retired(void **state) {
  struct fx *x = *state;
  struct fb b;
  T0 = rp_now_ms();
  fb_init(&b, "agent-1", "r1", 1, T0 - 12000, 1); /* both CDUs, 12 s ago */
  fb_std_dict(&b);
  fb_def(&b, 3, "cdu.supply_temp", "Cel", "cdu2", 2, "loop", "primary");
  fb_sample(&b, 0, 2137);
  fb_sample(&b, 3, 2500); /* 25.00 Cel */
  apply_one(x->s, &b, 0);
  fb_init(&b, "agent-1", "r1", 2, T0, 1); /* now: cdu1 only */
  fb_sample(&b, 0, 2200);
  apply_one(x->s, &b, 1);

  json_t *d = gate(x, &policy, "r1", T0 + 500);
  assert_string_equal(decision(d), "deny");
  const json_t *c = check_named(d, "supply_temp");
  const char *why = json_string_value(json_object_get(c, "reason"));
  assert_non_null(why);
  if (strstr(why, "cdu.supply_temp{loop=primary} of device cdu2: stale") == NULL ||
      strstr(why, "fails closed") == NULL)
    fail_msg("reason: %s", why);
  assert_true(json_is_null(json_object_get(c, "observed")));
  json_decref(d);

  size_t removed = 99;
  char err[256];
  assert_int_equal(store_retire_device(x->s, "r1", "nosuch", "ops", T0, &removed, err, sizeof(err)),
                   0);
  assert_int_equal(removed, 0);
  assert_int_equal(store_retire_device(x->s, "r1", "cdu2", "ops", T0, &removed, err, sizeof(err)),
                   0);
  assert_int_equal(removed, 1);
  d = gate(x, &policy, "r1", T0 + 500);
  assert_true(check_passes(d, "supply_temp"));
  assert_true(json_number_value(json_object_get(check_named(d, "supply_temp"), "observed")) ==
              22.0);
  json_decref(d);

  /* A newer sample makes it a member again. */
  fb_init(&b, "agent-1", "r1", 3, T0 + 100, 1);
  fb_sample(&b, 0, 2200);
  fb_sample(&b, 3, 2700); /* 27.00 Cel */
  apply_one(x->s, &b, 2);
  d = gate(x, &policy, "r1", T0 + 600);
  c = check_named(d, "supply_temp");
  assert_true(fabs(json_number_value(json_object_get(c, "observed")) - 27.0) < 1e-9);
  assert_string_equal(json_string_value(json_object_get(c, "unit")), "Cel");
  json_decref(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_apply_and_read),
      T(test_batch_of_frames_and_skip),
      T(test_duplicates),
      T(test_gaps),
      T(test_dictionary_versions),
      T(test_statuses),
      T(test_abort_leaves_no_trace),
      T(test_older_sample_never_replaces_newer),
      T(test_reopen_keeps_everything),
      T(test_long_series_keys_stay_distinct),
      T(test_oversized_series_def_is_refused),
      T(test_gate_allow),
      T(test_gate_deny_hot),
      T(test_gate_deny_stale),
      T(test_gate_missing_series_fails_closed),
      T(test_gate_unknown_rack),
      T(test_gate_dead_member_fails_until_retired),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
