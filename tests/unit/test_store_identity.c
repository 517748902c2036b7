/* Unit tests for the identity of frames in the aggregator's store
 * (aggregator/store_apply.c, store.h "Identity"): agent incarnations and
 * their sequence marks, dictionaries stored by content hash and bounded per
 * agent, and opening databases of layouts 1 and 2 (store_migrate.c). Each
 * test opens a store in a fresh mkdtemp directory under /tmp and removes it
 * afterwards (store_test_util.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lmdb.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_test_util.h"

/* Frame time of the tests. */
#define T0 1700000000000LL

/* ---- identity: incarnations and dictionaries by hash ---------------------- */

/* Sets the frame's dictionary_hash to the content hash of its own
 * dictionary, as the agent does, and returns it. */
static uint64_t fb_hash(struct fb *b) {
  uint64_t h = 0;
  assert_int_equal(rp_frame_dictionary_hash(&b->f, &h), 0);
  b->f.dictionary_hash = h;
  return h;
}

/* Applies one frame through store_apply(), as the consumer does; returns
 * the events it noticed and *o its outcome. */
static unsigned apply_ev(struct store *s, struct fb *b, int64_t offset, enum store_outcome *o) {
  rp_frame *f = fb_decode(b);
  struct store_msg m = {.frame = f, .topic = TOPIC, .partition = 0, .offset = offset};
  char err[256];
  if (store_apply(s, &m, 1, err, sizeof(err)) != 0)
    fail_msg("store_apply: %s", err);
  rp_frame_free(f);
  if (o != NULL)
    *o = m.outcome;
  return m.events;
}

/* Issue 17 item 5: a re-imaged agent (new incarnation, seq from 1) is
 * applied at once; each incarnation keeps its own high-water mark. */
static void test_new_incarnation_is_applied_at_once(void **state) {
  struct fx *x = *state;
  struct fb b;
  enum store_outcome o;
  const uint64_t A = 0x1111111111111111ull, B = 0x2222222222222222ull;
  for (uint64_t seq = 1; seq <= 500; seq += 499) { /* seq 1 and 500 */
    fb_init(&b, "agent-1", "r1", seq, T0 + (int64_t)seq * 1000, 1);
    b.f.incarnation = A;
    fb_std_dict(&b);
    fb_hash(&b);
    fb_sample(&b, 0, 2000 + (int64_t)seq);
    assert_int_equal(apply_ev(x->s, &b, (int64_t)seq, &o), 0);
    assert_int_equal(o, STORE_APPLIED);
  }
  /* The host is re-imaged: incarnation B from seq 1, far below 500. */
  fb_init(&b, "agent-1", "r1", 1, T0 + 600000, 1);
  b.f.incarnation = B;
  fb_std_dict(&b);
  fb_hash(&b);
  fb_sample(&b, 0, 3150);
  assert_int_equal(apply_ev(x->s, &b, 600, &o), STORE_EV_NEW_INCARNATION);
  assert_int_equal(o, STORE_APPLIED);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 31.5);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_true(ag.incarnation == B);
  assert_int_equal(ag.incarnations, 2);
  assert_int_equal(ag.incarnation_ms, T0 + 600000);
  assert_int_equal(ag.last_seq, 1);
  assert_int_equal(ag.duplicates, 0);
  assert_int_equal(ag.gaps, 498); /* A's 2..499; none counted for B's start */
  assert_int_equal(ag.nprevious, 1);
  assert_true(ag.previous[0].id == A);
  assert_int_equal(ag.previous[0].last_seq, 500);
  struct store_rack rk;
  assert_int_equal(rack_of(x->s, "r1", &rk), 0);
  assert_int_equal(rk.last_seq, 1);

  /* B's seq 1 again is a duplicate; B's seq 2 is new. */
  assert_int_equal(apply_ev(x->s, &b, 601, &o), 0);
  assert_int_equal(o, STORE_DUPLICATE);
  fb_init(&b, "agent-1", "r1", 2, T0 + 601000, 1);
  b.f.incarnation = B;
  b.f.dictionary_hash = agent_of(x->s, "agent-1").dicts[0]; /* no dictionary in it */
  fb_sample(&b, 0, 3160);
  assert_int_equal(apply_ev(x->s, &b, 602, &o), 0);
  assert_int_equal(o, STORE_APPLIED);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 31.6);

  /* A late frame of A: new for A (seq 501) is applied but never replaces
   * B's newer value; A's seq 500 again is a duplicate. Neither makes A the
   * current incarnation again. */
  fb_init(&b, "agent-1", "r1", 501, T0 + 501000, 1);
  b.f.incarnation = A;
  fb_std_dict(&b);
  fb_hash(&b);
  fb_sample(&b, 0, 2501);
  fb_sample(&b, 1, 99);
  assert_int_equal(apply_ev(x->s, &b, 603, &o), 0);
  assert_int_equal(o, STORE_APPLIED);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 31.6);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 9.9);
  b.f.seq = 500;
  apply_ev(x->s, &b, 604, &o);
  assert_int_equal(o, STORE_DUPLICATE);
  ag = agent_of(x->s, "agent-1");
  assert_true(ag.incarnation == B);
  assert_int_equal(ag.last_seq, 2);
  assert_int_equal(ag.previous[0].last_seq, 501);
  assert_int_equal(ag.duplicates, 2);

  /* The marks are bounded: after three more incarnations A is forgotten
   * (its frames would count as a new incarnation again), B is remembered. */
  for (uint64_t inc = 3; inc <= 5; inc++) {
    fb_init(&b, "agent-1", "r1", 1, T0 + 700000 + (int64_t)inc * 1000, 1);
    b.f.incarnation = inc;
    assert_int_equal(apply_ev(x->s, &b, 700 + (int64_t)inc, &o), STORE_EV_NEW_INCARNATION);
  }
  ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.incarnations, 5);
  assert_int_equal(ag.nprevious, STORE_AGENT_INCARNATIONS - 1);
  assert_true(ag.previous[2].id == B);
  assert_int_equal(ag.previous[2].last_seq, 2);
  /* ...and it all survives a fx_reopen. */
  fx_reopen(x);
  fb_init(&b, "agent-1", "r1", 2, T0 + 800000, 1);
  b.f.incarnation = B;
  apply_ev(x->s, &b, 800, &o);
  assert_int_equal(o, STORE_DUPLICATE);
}

/* Issue 17 item 6: after a restart the agent's dictionary has other ids
 * but the same dictionary_version (a counter); the frame carrying it is
 * lost. Later frames name the new dictionary by hash: their samples are
 * skipped and counted, never decoded with the previous run's mapping. */
static void test_unknown_dictionary_hash_is_skipped(void **state) {
  struct fx *x = *state;
  struct fb b;
  enum store_outcome o;
  /* First run: 0 = supply temperature, 1 = flow. */
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  b.f.incarnation = 7;
  fb_def(&b, 0, "cdu.supply_temp", "Cel", "cdu1", 1, NULL, NULL);
  fb_def(&b, 1, "cdu.flow", "L/min", "cdu1", 1, NULL, NULL);
  uint64_t h1 = fb_hash(&b);
  fb_sample(&b, 0, 317);
  fb_sample(&b, 1, 1184);
  apply_ev(x->s, &b, 0, &o);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 31.7);

  /* Second run: the devices answered in another order, 0 = flow. */
  struct fb d2;
  fb_init(&d2, "agent-1", "r1", 1, T0 + 10000, 1);
  d2.f.incarnation = 8;
  fb_def(&d2, 0, "cdu.flow", "L/min", "cdu1", 1, NULL, NULL);
  fb_def(&d2, 1, "cdu.supply_temp", "Cel", "cdu1", 1, NULL, NULL);
  uint64_t h2 = fb_hash(&d2);
  assert_true(h1 != h2);
  fb_sample(&d2, 0, 1200);
  fb_sample(&d2, 1, 330);
  /* d2 is lost; seq 2 refers to its dictionary without carrying it. */
  fb_init(&b, "agent-1", "r1", 2, T0 + 11000, 1);
  b.f.incarnation = 8;
  b.f.dictionary_hash = h2;
  fb_sample(&b, 0, 1210); /* flow 121.0: must never land under supply_temp */
  fb_sample(&b, 1, 331);
  fb_status(&b, 1, RACKPULSE__V1__READING_STATUS__READING_ERROR, "exception 2");
  assert_int_equal(apply_ev(x->s, &b, 1, &o),
                   STORE_EV_NEW_INCARNATION | STORE_EV_UNKNOWN_DICTIONARY);
  assert_int_equal(o, STORE_APPLIED);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 31.7); /* untouched: not 121.0 */
  assert_int_equal(l.status, RACKPULSE__V1__READING_STATUS__READING_OK);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 118.4);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.unknown_dict_frames, 1);
  assert_int_equal(ag.undecodable, 2);
  assert_true(ag.last_unknown_dict == h2);
  assert_int_equal(ag.last_unknown_dict_ms, T0 + 11000);
  assert_true(ag.last_unknown_dict_ms > ag.last_decoded_ms);
  /* The frame itself counts (the rack is alive), its samples do not. */
  struct store_rack rk;
  assert_int_equal(rack_of(x->s, "r1", &rk), 0);
  assert_int_equal(rk.last_frame_ms, T0 + 11000);

  /* The dictionary arrives with seq 3: decoded with the right mapping. */
  fb_init(&d2, "agent-1", "r1", 3, T0 + 12000, 1);
  d2.f.incarnation = 8;
  fb_def(&d2, 0, "cdu.flow", "L/min", "cdu1", 1, NULL, NULL);
  fb_def(&d2, 1, "cdu.supply_temp", "Cel", "cdu1", 1, NULL, NULL);
  assert_true(fb_hash(&d2) == h2);
  fb_sample(&d2, 0, 1220);
  fb_sample(&d2, 1, 332);
  assert_int_equal(apply_ev(x->s, &d2, 2, &o), 0);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 33.2);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 122.0);
  ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.unknown_dict_frames, 1);
  assert_true(ag.dicts[0] == h2 && ag.dicts[1] == h1);
  assert_true(ag.last_decoded_ms > ag.last_unknown_dict_ms);

  /* A frame of the first dictionary still decodes with it (kept by hash). */
  fb_init(&b, "agent-1", "r1", 4, T0 + 13000, 1);
  b.f.incarnation = 8;
  b.f.dictionary_hash = h1;
  fb_sample(&b, 1, 1230); /* id 1 is flow in h1 */
  apply_ev(x->s, &b, 3, &o);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 123.0);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 33.2);

  /* A frame without samples, statuses or statistics is not counted. */
  fb_init(&b, "agent-1", "r1", 5, T0 + 14000, 1);
  b.f.incarnation = 8;
  b.f.dictionary_hash = 0x5555;
  assert_int_equal(apply_ev(x->s, &b, 4, &o), 0);
  assert_int_equal(agent_of(x->s, "agent-1").unknown_dict_frames, 1);
}

/* A dictionary whose content does not match its hash is refused and
 * counted: its samples are not decoded with it. */
static void test_dictionary_hash_mismatch_is_refused(void **state) {
  struct fx *x = *state;
  struct fb b;
  enum store_outcome o;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  b.f.incarnation = 9;
  fb_std_dict(&b);
  uint64_t h = fb_hash(&b);
  b.defs[2].decimals = 3; /* content changed after hashing */
  fb_sample(&b, 2, 5000);
  assert_int_equal(apply_ev(x->s, &b, 0, &o),
                   STORE_EV_BAD_DICTIONARY | STORE_EV_UNKNOWN_DICTIONARY);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "pdu.power", &l), -ENOENT);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.bad_dict_frames, 1);
  assert_int_equal(ag.unknown_dict_frames, 1);
  assert_true(ag.dicts[0] == 0);
  /* The true content under that hash is accepted afterwards. */
  b.defs[2].decimals = 0;
  b.f.seq = 2;
  assert_true(fb_hash(&b) == h);
  assert_int_equal(apply_ev(x->s, &b, 1, &o), 0);
  assert_true(latest_value(x->s, "r1", "pdu.power") == 5000.0);
}

/* Each agent keeps its last STORE_AGENT_DICTS dictionaries; the oldest is
 * evicted (from LMDB too: after a fx_reopen it is still unknown). */
static void test_dictionaries_are_bounded(void **state) {
  struct fx *x = *state;
  struct fb b;
  enum store_outcome o;
  static const char *units[] = {"W", "kW", "VA", "kVA", "A"};
  uint64_t h[5];
  for (int i = 0; i < 5; i++) {
    fb_init(&b, "agent-1", "r1", (uint64_t)i + 1, T0 + i * 1000, 1);
    b.f.incarnation = 1;
    fb_def(&b, 0, "pdu.power", units[i], "pdu1", 0, NULL, NULL);
    h[i] = fb_hash(&b);
    fb_sample(&b, 0, i);
    apply_ev(x->s, &b, i, &o);
  }
  fx_reopen(x);
  struct store_agent ag = agent_of(x->s, "agent-1");
  for (int i = 0; i < STORE_AGENT_DICTS; i++)
    assert_true(ag.dicts[i] == h[4 - i]);
  fb_init(&b, "agent-1", "r1", 6, T0 + 6000, 1);
  b.f.incarnation = 1;
  b.f.dictionary_hash = h[0];
  fb_sample(&b, 0, 42);
  assert_int_equal(apply_ev(x->s, &b, 6, &o), STORE_EV_UNKNOWN_DICTIONARY);
  b.f.seq = 7;
  b.f.dictionary_hash = h[1];
  assert_int_equal(apply_ev(x->s, &b, 7, &o), 0);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "pdu.power", &l), 0);
  assert_true(l.value == 42.0);
  assert_string_equal(l.unit, "kW");
}

/* The agent record of layout 1, as the previous version wrote it. */
struct agent_v1 {
  uint64_t last_seq, frames, duplicates, gaps, undecodable;
  uint32_t dict_version;
  int64_t last_ms;
  char rack[RP_ID_MAX + 1];
};

/* Closes the fixture's store and removes its files, for a test to write
 * the database an earlier version left. */
static void close_and_remove(struct fx *x) {
  store_close(x->s);
  x->s = NULL;
  char data[128];
  snprintf(data, sizeof(data), "%s/data.mdb", x->dir);
  unlink(data);
  snprintf(data, sizeof(data), "%s/lock.mdb", x->dir);
  unlink(data);
}

/* A database of layout 1 (before incarnations) opens: agents keep their
 * marks and counters, dictionaries are dropped (resent by the agents). */
static void test_migrates_layout_1(void **state) {
  struct fx *x = *state;
  close_and_remove(x);
  /* Write what the previous version left: layout 1, one agent, one
   * dictionary entry under the old key (agent "\0" series id). */
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta, agents, dict;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
  assert_int_equal(mdb_env_set_mapsize(env, MAP_SIZE), 0);
  assert_int_equal(mdb_env_open(env, x->dir, MDB_NOTLS, 0640), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
  assert_int_equal(mdb_dbi_open(txn, "agents", MDB_CREATE, &agents), 0);
  assert_int_equal(mdb_dbi_open(txn, "dict", MDB_CREATE, &dict), 0);
  uint32_t layout = 1;
  MDB_val k = {6, "layout"}, v = {sizeof(layout), &layout};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  struct agent_v1 old = {.last_seq = 40,
                         .frames = 40,
                         .duplicates = 3,
                         .gaps = 2,
                         .undecodable = 5,
                         .dict_version = 6,
                         .last_ms = T0};
  snprintf(old.rack, sizeof(old.rack), "r1");
  k = (MDB_val){7, "agent-1"};
  v = (MDB_val){sizeof(old), &old};
  assert_int_equal(mdb_put(txn, agents, &k, &v, 0), 0);
  char dkey[12] = "agent-1\0\0\0\0";
  k = (MDB_val){12, dkey};
  v = (MDB_val){3, "\x08\x00\x12"};
  assert_int_equal(mdb_put(txn, dict, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  fx_reopen(x);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.last_seq, 40);
  assert_int_equal(ag.duplicates, 3);
  assert_int_equal(ag.gaps, 2);
  assert_int_equal(ag.undecodable, 5);
  assert_int_equal(ag.dict_version, 6);
  assert_string_equal(ag.rack, "r1");
  assert_true(ag.incarnation == 0);
  assert_int_equal(ag.incarnations, 1);
  assert_true(ag.dicts[0] == 0);
  /* The same (old) agent goes on: seq 40 is still a duplicate, seq 41 is
   * applied, its dictionary version 6 must be resent before decoding. */
  struct fb b;
  enum store_outcome o;
  fb_init(&b, "agent-1", "r1", 40, T0 + 1000, 6);
  fb_sample(&b, 0, 1);
  apply_ev(x->s, &b, 0, &o);
  assert_int_equal(o, STORE_DUPLICATE);
  b.f.seq = 41;
  assert_int_equal(apply_ev(x->s, &b, 1, &o), STORE_EV_UNKNOWN_DICTIONARY);
  assert_int_equal(o, STORE_APPLIED);
  fb_init(&b, "agent-1", "r1", 42, T0 + 2000, 6);
  fb_std_dict(&b);
  fb_sample(&b, 0, 2222);
  assert_int_equal(apply_ev(x->s, &b, 2, &o), 0);
  assert_true(latest_value(x->s, "r1", "cdu.supply_temp") == 22.22);
}

/* Writes a database of an earlier `layout` holding n latest-value records
 * of rec_size bytes each (recs) under rack r1, keys[i] their series keys. */
static void write_layout(const char *dir, uint32_t layout, const void *recs, size_t rec_size,
                         const char *const *keys, size_t n) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta, latest_db;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
  assert_int_equal(mdb_env_set_mapsize(env, MAP_SIZE), 0);
  assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0640), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
  assert_int_equal(mdb_dbi_open(txn, "latest", MDB_CREATE, &latest_db), 0);
  MDB_val k = {6, "layout"}, v = {sizeof(layout), &layout};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  for (size_t i = 0; i < n; i++) {
    char key[128];
    int len = snprintf(key, sizeof(key), "r1%c%s", '\0', keys[i]);
    k = (MDB_val){(size_t)len, key};
    v = (MDB_val){rec_size, (char *)recs + i * rec_size};
    assert_int_equal(mdb_put(txn, latest_db, &k, &v, 0), 0);
  }
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* A database of layout 2 (before receive times) opens: its latest values
 * take their sample time as receive time, so their age is kept. */
static void test_migrates_layout_2(void **state) {
  struct fx *x = *state;
  close_and_remove(x);
  struct latest_v2 {
    double value;
    int64_t ts_ms;
    int32_t status, decimals;
    char unit[24];
    char detail[96];
  } old = {.value = 21.5, .ts_ms = T0, .decimals = 1, .unit = "Cel"};
  static const char *const keys[] = {"cdu.supply_temp@cdu1"};
  write_layout(x->dir, 2, &old, sizeof(old), keys, 1);

  fx_reopen(x);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 21.5);
  assert_int_equal(l.ts_ms, T0);
  assert_int_equal(l.received_ms, T0);
  assert_string_equal(l.unit, "Cel");
}

/* Latest values are stored compact (layout 4), the detail only when there
 * is one: the record shrinks and grows again as a series' status changes,
 * and a detail of the largest size comes back whole. */
static void test_detail_changes_record_size(void **state) {
  struct fx *x = *state;
  char longest[96];
  memset(longest, 'd', sizeof(longest) - 1);
  longest[sizeof(longest) - 1] = '\0';
  struct fb b;
  fb_init(&b, "agent-1", "r1", 1, T0, 1);
  fb_std_dict(&b);
  fb_status(&b, 0, RACKPULSE__V1__READING_STATUS__READING_ERROR, "exception 2");
  apply_one(x->s, &b, 0);
  fb_init(&b, "agent-1", "r1", 2, T0 + 1000, 1);
  fb_sample(&b, 0, 2137);
  apply_one(x->s, &b, 1);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_int_equal(l.status, RACKPULSE__V1__READING_STATUS__READING_OK);
  assert_string_equal(l.detail, "");
  assert_true(l.value == 21.37);
  assert_string_equal(l.unit, "Cel");
  fb_init(&b, "agent-1", "r1", 3, T0 + 2000, 1);
  fb_status(&b, 0, RACKPULSE__V1__READING_STATUS__READING_ERROR, longest);
  apply_one(x->s, &b, 2);
  fx_reopen(x);
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_int_equal(l.status, RACKPULSE__V1__READING_STATUS__READING_ERROR);
  assert_string_equal(l.detail, longest);
  assert_int_equal(l.ts_ms, T0 + 2000);
  /* The same status sent without its detail (detail_kept): the stored one,
   * read back from the compact record, stays. */
  fb_init(&b, "agent-1", "r1", 4, T0 + 3000, 1);
  fb_status(&b, 0, RACKPULSE__V1__READING_STATUS__READING_ERROR, "");
  b.sts[0].detail_kept = true;
  apply_one(x->s, &b, 3);
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_string_equal(l.detail, longest);
  assert_int_equal(l.ts_ms, T0 + 3000);
}

/* A database of layout 3 (what the previous version wrote) opens: its
 * latest values are rewritten compact, every field and the detail kept, and
 * store_migrated_from() says so (the aggregator logs it). */
static void test_migrates_layout_3(void **state) {
  struct fx *x = *state;
  close_and_remove(x);
  struct store_latest recs[2] = {
      {.value = 21.5, .ts_ms = T0, .decimals = 1, .unit = "Cel", .received_ms = T0 + 7},
      {.ts_ms = T0 + 1,
       .status = RACKPULSE__V1__READING_STATUS__READING_ERROR,
       .unit = "W",
       .detail = "exception 2",
       .received_ms = T0 + 9}};
  static const char *const keys[] = {"cdu.supply_temp@cdu1", "pdu.power@pdu1"};
  write_layout(x->dir, 3, recs, sizeof(recs[0]), keys, 2);

  fx_reopen(x);
  size_t n = 0;
  assert_int_equal(store_migrated_from(x->s, &n), 3);
  assert_int_equal(n, 2);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 21.5);
  assert_int_equal(l.ts_ms, T0);
  assert_int_equal(l.received_ms, T0 + 7);
  assert_int_equal(l.decimals, 1);
  assert_string_equal(l.unit, "Cel");
  assert_string_equal(l.detail, "");
  assert_int_equal(latest(x->s, "r1", "pdu.power", &l), 0);
  assert_int_equal(l.status, RACKPULSE__V1__READING_STATUS__READING_ERROR);
  assert_string_equal(l.detail, "exception 2");
  assert_int_equal(l.received_ms, T0 + 9);
  /* Opened again: already current, nothing to migrate. */
  fx_reopen(x);
  assert_int_equal(store_migrated_from(x->s, &n), 0);
  assert_int_equal(latest(x->s, "r1", "pdu.power", &l), 0);
  assert_string_equal(l.detail, "exception 2");
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_new_incarnation_is_applied_at_once),
      T(test_unknown_dictionary_hash_is_skipped),
      T(test_dictionary_hash_mismatch_is_refused),
      T(test_dictionaries_are_bounded),
      T(test_migrates_layout_1),
      T(test_migrates_layout_2),
      T(test_migrates_layout_3),
      T(test_detail_changes_record_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
