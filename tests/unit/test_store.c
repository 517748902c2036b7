/* Unit tests for the aggregator's LMDB state (aggregator/store.c) and the
 * deploy gate that reads it (aggregator/gate.c). Each test opens a store in
 * a fresh mkdtemp directory under /tmp and removes it afterwards. Frames are
 * built with the protobuf-c structs, packed and decoded with rp_frame_decode()
 * exactly as the consumer does, then applied in batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lmdb.h>

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

#define TOPIC "rackpulse.frames"
#define MAP_SIZE (64u << 20)
/* Frame time of the tests. The gate tests move it to the real clock: the
 * store stamps every record with its real receive time, and the gate judges
 * freshness and clock skew by that too. */
static int64_t T0 = 1700000000000LL;

/* ---- fixture: a store in a temporary directory ---------------------------- */

struct fx {
  char dir[64];
  struct store *s;
};

static int setup(void **state) {
  struct fx *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return -1;
  snprintf(x->dir, sizeof(x->dir), "/tmp/rp_test_store_XXXXXX");
  if (mkdtemp(x->dir) == NULL)
    return -1;
  char err[256];
  if (store_open(x->dir, MAP_SIZE, &x->s, err, sizeof(err)) != 0) {
    fprintf(stderr, "store_open: %s\n", err);
    return -1;
  }
  *state = x;
  return 0;
}

static int teardown(void **state) {
  struct fx *x = *state;
  char path[128];
  store_close(x->s);
  snprintf(path, sizeof(path), "%s/data.mdb", x->dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/lock.mdb", x->dir);
  unlink(path);
  int rc = rmdir(x->dir);
  free(x);
  return rc;
}

static void reopen(struct fx *x) {
  char err[256];
  store_close(x->s);
  x->s = NULL;
  if (store_open(x->dir, MAP_SIZE, &x->s, err, sizeof(err)) != 0)
    fail_msg("reopen: %s", err);
}

/* ---- frames -------------------------------------------------------------- */

#define MAXN 8

/* One frame under construction: a dictionary, one sample block, statuses and
 * devices. Strings are borrowed from the caller (literals). */
struct fb {
  Rackpulse__V1__Label labels[MAXN], *label_ptrs[MAXN];
  Rackpulse__V1__SeriesDef defs[MAXN], *def_ptrs[MAXN];
  uint32_t ids[MAXN];
  int64_t scaled[MAXN];
  Rackpulse__V1__SampleBlock block, *block_ptrs[1];
  Rackpulse__V1__SeriesStatus sts[MAXN], *st_ptrs[MAXN];
  Rackpulse__V1__DeviceStatus devs[MAXN], *dev_ptrs[MAXN];
  Rackpulse__V1__Frame f;
};

static void fb_init(struct fb *b, const char *agent, const char *rack, uint64_t seq, int64_t ts_ms,
                    uint32_t dict_version) {
  memset(b, 0, sizeof(*b));
  rackpulse__v1__frame__init(&b->f);
  b->f.schema_version = 1;
  b->f.agent_id = (char *)agent;
  b->f.rack_id = (char *)rack;
  b->f.seq = seq;
  b->f.ts_ms = ts_ms;
  b->f.interval_ms = 1000;
  b->f.dictionary_version = dict_version;
  b->f.dictionary = b->def_ptrs;
  rackpulse__v1__sample_block__init(&b->block);
  b->block.ts_ms = ts_ms;
  b->block.series = b->ids;
  b->block.scaled = b->scaled;
  b->block_ptrs[0] = &b->block;
  b->f.statuses = b->st_ptrs;
  b->f.devices = b->dev_ptrs;
}

static void fb_def(struct fb *b, uint32_t id, const char *name, const char *unit,
                   const char *device, int decimals, const char *lkey, const char *lval) {
  size_t i = b->f.n_dictionary++;
  assert_true(i < MAXN);
  Rackpulse__V1__SeriesDef *d = &b->defs[i];
  rackpulse__v1__series_def__init(d);
  d->id = id;
  d->name = (char *)name;
  d->unit = (char *)unit;
  d->device = (char *)device;
  d->decimals = decimals;
  if (lkey != NULL) {
    rackpulse__v1__label__init(&b->labels[i]);
    b->labels[i].key = (char *)lkey;
    b->labels[i].value = (char *)lval;
    b->label_ptrs[i] = &b->labels[i];
    d->labels = &b->label_ptrs[i];
    d->n_labels = 1;
  }
  b->def_ptrs[i] = d;
}

/* The standard dictionary of agent "agent-1" in rack "r1". */
static void fb_std_dict(struct fb *b) {
  fb_def(b, 0, "cdu.supply_temp", "Cel", "cdu1", 2, "loop", "primary");
  fb_def(b, 1, "cdu.flow", "L/min", "cdu1", 1, NULL, NULL);
  fb_def(b, 2, "pdu.power", "W", "pdu1", 0, NULL, NULL);
}

static void fb_sample(struct fb *b, uint32_t id, int64_t scaled) {
  size_t i = b->block.n_series++;
  assert_true(i < MAXN);
  b->ids[i] = id;
  b->scaled[i] = scaled;
  b->block.n_scaled = b->block.n_series;
  b->f.samples = b->block_ptrs;
  b->f.n_samples = 1;
}

static void fb_status(struct fb *b, uint32_t id, Rackpulse__V1__ReadingStatus st,
                      const char *detail) {
  size_t i = b->f.n_statuses++;
  rackpulse__v1__series_status__init(&b->sts[i]);
  b->sts[i].series = id;
  b->sts[i].status = st;
  b->sts[i].detail = (char *)detail;
  b->st_ptrs[i] = &b->sts[i];
}

static void fb_device(struct fb *b, const char *device, const char *kind, int up,
                      const char *last_error, uint64_t scrapes, uint64_t failures) {
  size_t i = b->f.n_devices++;
  Rackpulse__V1__DeviceStatus *d = &b->devs[i];
  rackpulse__v1__device_status__init(d);
  d->device = (char *)device;
  d->kind = (char *)kind;
  d->up = up;
  d->last_error = (char *)last_error;
  d->scrape_ms = 9;
  d->scrapes = scrapes;
  d->failures = failures;
  d->last_ok_ms = b->f.ts_ms - 1000;
  b->dev_ptrs[i] = d;
}

/* Packs and decodes the frame as the consumer would. */
static rp_frame *fb_decode(const struct fb *b) {
  size_t len = rackpulse__v1__frame__get_packed_size(&b->f);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  rackpulse__v1__frame__pack(&b->f, buf);
  rp_frame *f = NULL;
  char err[256];
  int rc = rp_frame_decode(buf, len, &f, err, sizeof(err));
  free(buf);
  if (rc != 0)
    fail_msg("decode: %s", err);
  return f;
}

/* Applies frames in one committed batch; outcomes[i] gets each outcome. */
static void apply_batch(struct store *s, struct fb *const *frames, size_t n, int32_t partition,
                        int64_t first_offset, enum store_outcome *outcomes) {
  struct store_batch *bt = NULL;
  char err[256];
  assert_int_equal(store_batch_begin(s, &bt, err, sizeof(err)), 0);
  for (size_t i = 0; i < n; i++) {
    rp_frame *f = fb_decode(frames[i]);
    enum store_outcome o = (enum store_outcome) - 1;
    int rc =
        store_batch_apply(bt, f, TOPIC, partition, first_offset + (int64_t)i, &o, err, sizeof(err));
    rp_frame_free(f);
    if (rc != 0)
      fail_msg("apply %zu: %d %s", i, rc, err);
    if (outcomes != NULL)
      outcomes[i] = o;
  }
  if (store_batch_commit(bt, err, sizeof(err)) != 0)
    fail_msg("commit: %s", err);
}

static enum store_outcome apply_one(struct store *s, struct fb *b, int64_t offset) {
  enum store_outcome o;
  apply_batch(s, &b, 1, 0, offset, &o);
  return o;
}

/* ---- readers ------------------------------------------------------------- */

static int latest(struct store *s, const char *rack, const char *name, struct store_latest *out) {
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  int rc = store_read_latest_by_name(r, rack, name, out);
  store_read_end(r);
  return rc;
}

static double latest_value(struct store *s, const char *rack, const char *name) {
  struct store_latest l;
  int rc = latest(s, rack, name, &l);
  if (rc != 0)
    fail_msg("no latest %s in %s", name, rack);
  return l.value;
}

static int rack_of(struct store *s, const char *rack, struct store_rack *out) {
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  int rc = store_read_rack(r, rack, out);
  store_read_end(r);
  return rc;
}

struct agents {
  size_t n;
  char names[4][RP_ID_MAX + 1];
  struct store_agent a[4];
};

static void on_agent(void *ctx, const char *agent, const struct store_agent *a) {
  struct agents *q = ctx;
  if (q->n < 4) {
    snprintf(q->names[q->n], sizeof(q->names[0]), "%s", agent);
    q->a[q->n++] = *a;
  }
}

/* The stored record of `agent`; fails the test when there is none. */
static struct store_agent agent_of(struct store *s, const char *agent) {
  struct agents q = {0};
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  assert_int_equal(store_read_each_agent(r, on_agent, &q), 0);
  store_read_end(r);
  for (size_t i = 0; i < q.n; i++)
    if (strcmp(q.names[i], agent) == 0)
      return q.a[i];
  fail_msg("no agent %s", agent);
  struct store_agent none = {0};
  return none;
}

static size_t count_agents(struct store *s) {
  struct agents q = {0};
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  store_read_each_agent(r, on_agent, &q);
  store_read_end(r);
  return q.n;
}

struct keys {
  size_t n;
  char key[8][200];
  struct store_latest l[8];
  struct store_device d[8];
};

static void on_latest(void *ctx, const char *key, const struct store_latest *l) {
  struct keys *q = ctx;
  if (q->n < 8) {
    snprintf(q->key[q->n], sizeof(q->key[0]), "%s", key);
    q->l[q->n++] = *l;
  }
}

static void on_device(void *ctx, const char *device, const struct store_device *d) {
  struct keys *q = ctx;
  if (q->n < 8) {
    snprintf(q->key[q->n], sizeof(q->key[0]), "%s", device);
    q->d[q->n++] = *d;
  }
}

static void on_rack(void *ctx, const char *rack, const struct store_rack *rk) {
  (void)rk;
  struct keys *q = ctx;
  if (q->n < 8)
    snprintf(q->key[q->n++], sizeof(q->key[0]), "%s", rack);
}

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
  reopen(x);

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
  /* And seq 8 is remembered as applied after another reopen. */
  reopen(x);
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
  /* ...and it all survives a reopen. */
  reopen(x);
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
 * evicted (from LMDB too: after a reopen it is still unknown). */
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
  reopen(x);
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

/* A database of layout 1 (before incarnations) opens: agents keep their
 * marks and counters, dictionaries are dropped (resent by the agents). */
static void test_migrates_layout_1(void **state) {
  struct fx *x = *state;
  store_close(x->s);
  x->s = NULL;
  /* Write what the previous version left: layout 1, one agent, one
   * dictionary entry under the old key (agent "\0" series id). */
  char data[128];
  snprintf(data, sizeof(data), "%s/data.mdb", x->dir);
  unlink(data);
  snprintf(data, sizeof(data), "%s/lock.mdb", x->dir);
  unlink(data);
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

  reopen(x);
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

/* A database of layout 2 (before receive times) opens: its latest values
 * take their sample time as receive time, so their age is kept. */
static void test_migrates_layout_2(void **state) {
  struct fx *x = *state;
  store_close(x->s);
  x->s = NULL;
  char data[128];
  snprintf(data, sizeof(data), "%s/data.mdb", x->dir);
  unlink(data);
  snprintf(data, sizeof(data), "%s/lock.mdb", x->dir);
  unlink(data);
  struct latest_v2 {
    double value;
    int64_t ts_ms;
    int32_t status, decimals;
    char unit[24];
    char detail[96];
  } old = {.value = 21.5, .ts_ms = T0, .decimals = 1, .unit = "Cel"};
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta, latest_db;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
  assert_int_equal(mdb_env_set_mapsize(env, MAP_SIZE), 0);
  assert_int_equal(mdb_env_open(env, x->dir, MDB_NOTLS, 0640), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
  assert_int_equal(mdb_dbi_open(txn, "latest", MDB_CREATE, &latest_db), 0);
  uint32_t layout = 2;
  MDB_val k = {6, "layout"}, v = {sizeof(layout), &layout};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  static const char key[] = "r1\0cdu.supply_temp@cdu1";
  k = (MDB_val){sizeof(key) - 1, (void *)key};
  v = (MDB_val){sizeof(old), &old};
  assert_int_equal(mdb_put(txn, latest_db, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  reopen(x);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.supply_temp", &l), 0);
  assert_true(l.value == 21.5);
  assert_int_equal(l.ts_ms, T0);
  assert_int_equal(l.received_ms, T0);
  assert_string_equal(l.unit, "Cel");
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

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* Two CDUs: a dead one never drops out of the max; the check fails naming
 * it until it is retired, and a retirement is only for devices that
 * reported. */
static void test_gate_dead_member_fails_until_retired(void **state) {
  struct fx *x = *state;
  struct fb b;
  T0 = rp_now_ms();
  fb_init(&b, "agent-1", "r1", 1, T0 - 12000, 1); /* both CDUs, 12 s ago */
  fb_std_dict(&b);
  fb_def(&b, 3, "cdu.supply_temp", "K", "cdu2", 2, "loop", "primary");
  fb_sample(&b, 0, 2137);
  fb_sample(&b, 3, 29815); /* 298.15 K = 25.00 Cel */
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

  /* A newer sample makes it a member again, in Cel after normalisation. */
  fb_init(&b, "agent-1", "r1", 3, T0 + 100, 1);
  fb_sample(&b, 0, 2200);
  fb_sample(&b, 3, 30015); /* 27.00 Cel */
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
      T(test_new_incarnation_is_applied_at_once),
      T(test_unknown_dictionary_hash_is_skipped),
      T(test_dictionary_hash_mismatch_is_refused),
      T(test_dictionaries_are_bounded),
      T(test_migrates_layout_1),
      T(test_migrates_layout_2),
      T(test_gate_allow),
      T(test_gate_deny_hot),
      T(test_gate_deny_stale),
      T(test_gate_missing_series_fails_closed),
      T(test_gate_unknown_rack),
      T(test_gate_dead_member_fails_until_retired),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
