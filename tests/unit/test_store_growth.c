/* Unit tests for the LMDB map growth of the aggregator's store
 * (aggregator/store.c): a store opened with a tiny map grows instead of
 * failing, applies every frame exactly once across the retries, stops at
 * the configured maximum with an error naming the key to raise, and keeps
 * serving readers in other threads while it grows. Also the hot path's
 * key-ordered application of a sample block, which must not change what a
 * frame means. Each test opens a store in a fresh mkdtemp directory and
 * removes it afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_test_util.h"

#define TINY_MAP (32u << 10) /* 8 pages: full after a few frames */
#define T0 1700000000000LL
#define NSERIES 40

/* ---- fixture --------------------------------------------------------------- */

static int open_store(struct fx *x, size_t map, size_t max) {
  char err[256];
  if (store_open(x->dir, map, &x->s, err, sizeof(err)) != 0) {
    fprintf(stderr, "store_open: %s\n", err);
    return -1;
  }
  store_set_map_max(x->s, max);
  return 0;
}

static int setup(void **state) {
  struct fx *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return -1;
  snprintf(x->dir, sizeof(x->dir), "/tmp/rp_test_growth_XXXXXX");
  if (mkdtemp(x->dir) == NULL || open_store(x, TINY_MAP, 64u << 20) != 0)
    return -1;
  *state = x;
  return 0;
}

/* ---- frames: agent "agent-R" of rack "rR", NSERIES series ------------------ */

/* A decoded frame with one sample of each of NSERIES series, and their
 * dictionary when `dict`; the value of series i is seq * 100 + i. */
static rp_frame *make_frame(int rack, uint64_t seq, bool dict) {
  char agent[16], rack_id[16], names[NSERIES][24];
  snprintf(agent, sizeof(agent), "agent-%d", rack);
  snprintf(rack_id, sizeof(rack_id), "r%d", rack);
  Rackpulse__V1__SeriesDef defs[NSERIES], *def_ptrs[NSERIES];
  uint32_t ids[NSERIES];
  int64_t scaled[NSERIES];
  for (size_t i = 0; i < NSERIES; i++) {
    rackpulse__v1__series_def__init(&defs[i]);
    snprintf(names[i], sizeof(names[i]), "server.temp_%02zu", i);
    defs[i].id = (uint32_t)i;
    defs[i].name = names[i];
    defs[i].unit = "Cel";
    defs[i].device = "bmc1";
    def_ptrs[i] = &defs[i];
    ids[i] = (uint32_t)i;
    scaled[i] = (int64_t)seq * 100 + (int64_t)i;
  }
  Rackpulse__V1__SampleBlock block = RACKPULSE__V1__SAMPLE_BLOCK__INIT, *blocks[] = {&block};
  block.ts_ms = T0 + (int64_t)seq * 1000;
  block.series = ids;
  block.n_series = NSERIES;
  block.scaled = scaled;
  block.n_scaled = NSERIES;
  Rackpulse__V1__Frame f = RACKPULSE__V1__FRAME__INIT;
  f.schema_version = 1;
  f.agent_id = agent;
  f.rack_id = rack_id;
  f.seq = seq;
  f.ts_ms = block.ts_ms;
  f.dictionary_version = 1;
  f.dictionary = dict ? def_ptrs : NULL;
  f.n_dictionary = dict ? NSERIES : 0;
  f.samples = blocks;
  f.n_samples = 1;
  size_t len = rackpulse__v1__frame__get_packed_size(&f);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  rackpulse__v1__frame__pack(&f, buf);
  rp_frame *out = NULL;
  char err[256];
  int rc = rp_frame_decode(buf, len, &out, err, sizeof(err));
  free(buf);
  if (rc != 0)
    fail_msg("decode: %s", err);
  return out;
}

/* A batch of `racks` × `frames` messages on partition 0 from offset first,
 * in rounds; the first round carries the dictionaries. */
struct batch {
  struct store_msg *msgs;
  size_t n;
};

static struct batch make_batch(int racks, uint64_t frames, int64_t first) {
  struct batch b = {calloc((size_t)racks * frames, sizeof(struct store_msg)), 0};
  assert_non_null(b.msgs);
  for (uint64_t q = 1; q <= frames; q++) {
    for (int r = 1; r <= racks; r++) {
      b.msgs[b.n] = (struct store_msg){.frame = make_frame(r, q, q == 1),
                                       .topic = TOPIC,
                                       .partition = 0,
                                       .offset = first + (int64_t)b.n};
      b.n++;
    }
  }
  return b;
}

static void free_batch(struct batch *b) {
  for (size_t i = 0; i < b->n; i++)
    rp_frame_free((rp_frame *)b->msgs[i].frame);
  free(b->msgs);
}

struct agent_count {
  uint64_t frames, duplicates, gaps;
  size_t agents;
};

static void on_agent_total(void *ctx, const char *agent, const struct store_agent *ag) {
  (void)agent;
  struct agent_count *c = ctx;
  c->frames += ag->frames;
  c->duplicates += ag->duplicates;
  c->gaps += ag->gaps;
  c->agents++;
}

static struct agent_count agent_totals(struct store *s) {
  struct agent_count c = {0};
  struct store_read *r;
  assert_int_equal(store_read_begin(s, &r), 0);
  store_read_each_agent(r, on_agent_total, &c);
  store_read_end(r);
  return c;
}

static double latest_of(struct store *s, const char *rack, const char *name) {
  struct store_read *r;
  struct store_latest l;
  assert_int_equal(store_read_begin(s, &r), 0);
  int rc = store_read_latest_by_name(r, rack, name, &l);
  store_read_end(r);
  assert_int_equal(rc, 0);
  return l.value;
}

/* ---- tests ----------------------------------------------------------------- */

/* 20 racks × 10 frames do not fit in 32 KiB: the map doubles until they do,
 * and every frame is applied once although the batch was applied again
 * after each growth. */
static void test_tiny_map_grows(void **state) {
  struct fx *x = *state;
  struct store_map_info before, after;
  store_map_info(x->s, &before);
  assert_int_equal(before.grows, 0);
  struct batch b = make_batch(20, 10, 0);
  char err[256] = "";
  assert_int_equal(store_apply(x->s, b.msgs, b.n, err, sizeof(err)), 0);
  store_map_info(x->s, &after);
  assert_true(after.grows >= 2);
  assert_true(after.map_bytes >= before.map_bytes * 4);
  assert_true(after.used_bytes <= after.map_bytes);
  assert_int_equal(after.max_bytes, 64u << 20);
  for (size_t i = 0; i < b.n; i++)
    assert_int_equal(b.msgs[i].outcome, STORE_APPLIED);
  struct agent_count c = agent_totals(x->s);
  assert_int_equal(c.agents, 20);
  assert_int_equal(c.frames, 200);
  assert_int_equal(c.duplicates, 0);
  assert_int_equal(c.gaps, 0);
  int64_t next;
  assert_int_equal(store_get_offset(x->s, TOPIC, 0, &next), 0);
  assert_int_equal(next, 200);
  assert_true(latest_of(x->s, "r7", "server.temp_05") == 1005.0);
  free_batch(&b);

  /* Frames without a dictionary decode with the stored one. */
  struct batch more = make_batch(20, 12, 200);
  assert_int_equal(store_apply(x->s, more.msgs + 200, 40, err, sizeof(err)), 0);
  assert_true(latest_of(x->s, "r3", "server.temp_39") == 1239.0);
  assert_int_equal(agent_totals(x->s).frames, 240);
  free_batch(&more);
}

/* At the maximum the batch fails whole, the error names the key to raise,
 * and the store is still usable for what fits. */
static void test_growth_stops_at_max(void **state) {
  struct fx *x = *state;
  store_set_map_max(x->s, 128u << 10);
  struct batch b = make_batch(40, 10, 0);
  char err[256] = "";
  assert_int_equal(store_apply(x->s, b.msgs, b.n, err, sizeof(err)), -ENOSPC);
  assert_non_null(strstr(err, "store.map_size_max_mb"));
  struct store_map_info mi;
  store_map_info(x->s, &mi);
  assert_int_equal(mi.map_bytes, 128u << 10);
  int64_t next;
  assert_int_equal(store_get_offset(x->s, TOPIC, 0, &next), -ENOENT);
  assert_int_equal(agent_totals(x->s).agents, 0);
  /* One rack's frames still fit. */
  assert_int_equal(store_apply(x->s, b.msgs, 1, err, sizeof(err)), 0);
  assert_int_equal(agent_totals(x->s).frames, 1);
  free_batch(&b);
}

/* The lower-level API reports a full map as -ENOSPC, and refuses to grow
 * while a batch is open (LMDB forbids resizing under a transaction). */
static void test_batch_api_reports_full_map(void **state) {
  struct fx *x = *state;
  struct batch b = make_batch(30, 4, 0);
  struct store_batch *bt;
  char err[256];
  assert_int_equal(store_batch_begin(x->s, &bt, err, sizeof(err)), 0);
  int rc = 0;
  size_t i;
  for (i = 0; i < b.n && rc == 0; i++)
    rc = store_batch_apply(bt, b.msgs[i].frame, TOPIC, 0, (int64_t)i, &b.msgs[i].outcome, err,
                           sizeof(err));
  if (rc == 0) {
    rc = store_batch_commit(bt, err, sizeof(err));
  } else {
    char busy[256];
    assert_int_equal(store_grow(x->s, busy, sizeof(busy)), -EBUSY);
    store_batch_abort(bt);
  }
  assert_int_equal(rc, -ENOSPC);
  assert_non_null(strstr(err, "map is full"));
  assert_int_equal(store_grow(x->s, err, sizeof(err)), 0);
  free_batch(&b);
}

/* After growth and a restart with the same tiny configured map, the data is
 * there (LMDB keeps at least the used size) and the map grows again. */
static void test_reopen_after_growth(void **state) {
  struct fx *x = *state;
  struct batch b = make_batch(10, 6, 0);
  char err[256];
  assert_int_equal(store_apply(x->s, b.msgs, 30, err, sizeof(err)), 0);
  store_close(x->s);
  x->s = NULL;
  assert_int_equal(open_store(x, TINY_MAP, 64u << 20), 0);
  assert_int_equal(agent_totals(x->s).frames, 30);
  assert_int_equal(store_apply(x->s, b.msgs + 30, 30, err, sizeof(err)), 0);
  assert_int_equal(agent_totals(x->s).frames, 60);
  assert_true(latest_of(x->s, "r10", "server.temp_00") == 600.0);
  free_batch(&b);
}

/* Readers in other threads keep reading, and see only committed states,
 * while the writer grows the map many times. */
struct reader_ctx {
  struct store *s;
  atomic_bool stop;
  atomic_ulong reads, errors;
};

static void on_count(void *ctx, const char *agent, const struct store_agent *ag) {
  (void)agent;
  *(uint64_t *)ctx += ag->frames;
}

static void *reader(void *arg) {
  struct reader_ctx *c = arg;
  while (!atomic_load(&c->stop)) {
    struct store_read *r;
    if (store_read_begin(c->s, &r) != 0) {
      atomic_fetch_add(&c->errors, 1);
      continue;
    }
    uint64_t frames = 0;
    store_read_each_agent(r, on_count, &frames);
    struct store_latest l;
    int rc = store_read_latest_by_name(r, "r1", "server.temp_00", &l);
    /* Batches hold 5 whole rounds of 8 racks: a committed state has a
     * multiple of 40 frames, and rack r1 is there once any is. */
    if (frames % 40 != 0 || (frames > 0 && rc != 0))
      atomic_fetch_add(&c->errors, 1);
    store_read_end(r);
    atomic_fetch_add(&c->reads, 1);
  }
  return NULL;
}

static void test_readers_during_growth(void **state) {
  struct fx *x = *state;
  struct reader_ctx c = {.s = x->s};
  pthread_t threads[3];
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, reader, &c), 0);
  struct batch b = make_batch(8, 100, 0);
  char err[256];
  for (size_t i = 0; i < b.n; i += 40)
    assert_int_equal(store_apply(x->s, b.msgs + i, 40, err, sizeof(err)), 0);
  atomic_store(&c.stop, true);
  for (size_t i = 0; i < 3; i++)
    pthread_join(threads[i], NULL);
  struct store_map_info mi;
  store_map_info(x->s, &mi);
  assert_true(mi.grows >= 3);
  assert_true(atomic_load(&c.reads) > 0);
  assert_int_equal(atomic_load(&c.errors), 0);
  assert_int_equal(agent_totals(x->s).frames, 800);
  free_batch(&b);
}

/* The hot path applies a block's samples in the key order of their series
 * (store.c, apply_block). What a frame means must not change with it: every
 * value lands under its own key, a series named twice keeps its last value,
 * and unknown series are counted. */
static rp_frame *make_block_frame(uint64_t seq, bool dict, const uint32_t *ids,
                                  const int64_t *values, size_t n) {
  static const char *const names[] = {"z.last", "a.first", "m.mid",   "b.second",
                                      "y.late", "c.third", "x.later", "d.fourth"};
  Rackpulse__V1__SeriesDef defs[8], *def_ptrs[8];
  for (size_t i = 0; i < 8; i++) {
    rackpulse__v1__series_def__init(&defs[i]);
    defs[i].id = (uint32_t)(100 + i);
    defs[i].name = (char *)names[i];
    defs[i].unit = "W";
    defs[i].device = "pdu1";
    def_ptrs[i] = &defs[i];
  }
  Rackpulse__V1__SampleBlock block = RACKPULSE__V1__SAMPLE_BLOCK__INIT, *blocks[] = {&block};
  block.ts_ms = T0 + (int64_t)seq * 1000;
  block.series = (uint32_t *)ids;
  block.n_series = n;
  block.scaled = (int64_t *)values;
  block.n_scaled = n;
  Rackpulse__V1__Frame f = RACKPULSE__V1__FRAME__INIT;
  f.schema_version = 1;
  f.agent_id = "agent-o";
  f.rack_id = "ro";
  f.seq = seq;
  f.ts_ms = block.ts_ms;
  f.dictionary_version = 1;
  f.dictionary = dict ? def_ptrs : NULL;
  f.n_dictionary = dict ? 8 : 0;
  f.samples = blocks;
  f.n_samples = 1;
  size_t len = rackpulse__v1__frame__get_packed_size(&f);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  rackpulse__v1__frame__pack(&f, buf);
  rp_frame *out = NULL;
  char err[256];
  int rc = rp_frame_decode(buf, len, &out, err, sizeof(err));
  free(buf);
  if (rc != 0)
    fail_msg("decode: %s", err);
  return out;
}

static void on_agent_copy(void *ctx, const char *agent, const struct store_agent *ag) {
  (void)agent;
  *(struct store_agent *)ctx = *ag;
}

/* The undecodable-sample count of the store's only agent. */
static uint64_t undecodable_of(struct store *s) {
  struct store_read *r;
  struct store_agent ag = {0};
  assert_int_equal(store_read_begin(s, &r), 0);
  store_read_each_agent(r, on_agent_copy, &ag);
  store_read_end(r);
  return ag.undecodable;
}

static void test_block_order_keeps_meaning(void **state) {
  struct fx *x = *state;
  char err[256];
  const uint32_t all[] = {100, 101, 102, 103, 104, 105, 106, 107};
  const int64_t v1[] = {10, 11, 12, 13, 14, 15, 16, 17};
  rp_frame *f = make_block_frame(1, true, all, v1, 8);
  struct store_msg m = {.frame = f, .topic = TOPIC, .partition = 0, .offset = 0};
  assert_int_equal(store_apply(x->s, &m, 1, err, sizeof(err)), 0);
  rp_frame_free(f);
  assert_true(latest_of(x->s, "ro", "z.last") == 10.0);
  assert_true(latest_of(x->s, "ro", "a.first") == 11.0);
  assert_true(latest_of(x->s, "ro", "d.fourth") == 17.0);

  /* Series 103 twice (the last value wins) and an unknown id 999. */
  const uint32_t twice[] = {103, 100, 999, 103, 107};
  const int64_t v2[] = {20, 21, 22, 23, 24};
  f = make_block_frame(2, false, twice, v2, 5);
  m = (struct store_msg){.frame = f, .topic = TOPIC, .partition = 0, .offset = 1};
  assert_int_equal(store_apply(x->s, &m, 1, err, sizeof(err)), 0);
  rp_frame_free(f);
  assert_true(latest_of(x->s, "ro", "b.second") == 23.0);
  assert_true(latest_of(x->s, "ro", "z.last") == 21.0);
  assert_true(latest_of(x->s, "ro", "d.fourth") == 24.0);
  assert_true(latest_of(x->s, "ro", "a.first") == 11.0);
  assert_int_equal(undecodable_of(x->s), 1);

  /* Sorted, with an unknown id among known ones. */
  const uint32_t some[] = {107, 999, 101, 104};
  const int64_t v3[] = {30, 31, 32, 33};
  f = make_block_frame(3, false, some, v3, 4);
  m = (struct store_msg){.frame = f, .topic = TOPIC, .partition = 0, .offset = 2};
  assert_int_equal(store_apply(x->s, &m, 1, err, sizeof(err)), 0);
  rp_frame_free(f);
  assert_true(latest_of(x->s, "ro", "d.fourth") == 30.0);
  assert_true(latest_of(x->s, "ro", "a.first") == 32.0);
  assert_true(latest_of(x->s, "ro", "y.late") == 33.0);
  assert_int_equal(undecodable_of(x->s), 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_tiny_map_grows),
      T(test_growth_stops_at_max),
      T(test_batch_api_reports_full_map),
      T(test_reopen_after_growth),
      T(test_readers_during_growth),
      T(test_block_order_keeps_meaning),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
