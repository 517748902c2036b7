/* The store's unit-test helpers (see store_test_util.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_test_util.h"

/* ---- fixture: a store in a temporary directory ---------------------------- */

int fx_setup(void **state) {
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

int fx_teardown(void **state) {
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

void fx_reopen(struct fx *x) {
  char err[256];
  store_close(x->s);
  x->s = NULL;
  if (store_open(x->dir, MAP_SIZE, &x->s, err, sizeof(err)) != 0)
    fail_msg("fx_reopen: %s", err);
}

/* ---- frames -------------------------------------------------------------- */

void fb_init(struct fb *b, const char *agent, const char *rack, uint64_t seq, int64_t ts_ms,
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

void fb_def(struct fb *b, uint32_t id, const char *name, const char *unit, const char *device,
            int decimals, const char *lkey, const char *lval) {
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
void fb_std_dict(struct fb *b) {
  fb_def(b, 0, "cdu.supply_temp", "Cel", "cdu1", 2, "loop", "primary");
  fb_def(b, 1, "cdu.flow", "L/min", "cdu1", 1, NULL, NULL);
  fb_def(b, 2, "pdu.power", "W", "pdu1", 0, NULL, NULL);
}

void fb_sample(struct fb *b, uint32_t id, int64_t scaled) {
  size_t i = b->block.n_series++;
  assert_true(i < MAXN);
  b->ids[i] = id;
  b->scaled[i] = scaled;
  b->block.n_scaled = b->block.n_series;
  b->f.samples = b->block_ptrs;
  b->f.n_samples = 1;
}

void fb_status(struct fb *b, uint32_t id, Rackpulse__V1__ReadingStatus st, const char *detail) {
  size_t i = b->f.n_statuses++;
  rackpulse__v1__series_status__init(&b->sts[i]);
  b->sts[i].series = id;
  b->sts[i].status = st;
  b->sts[i].detail = (char *)detail;
  b->st_ptrs[i] = &b->sts[i];
}

void fb_device(struct fb *b, const char *device, const char *kind, int up, const char *last_error,
               uint64_t scrapes, uint64_t failures) {
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
rp_frame *fb_decode(const struct fb *b) {
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
void apply_batch(struct store *s, struct fb *const *frames, size_t n, int32_t partition,
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

enum store_outcome apply_one(struct store *s, struct fb *b, int64_t offset) {
  enum store_outcome o;
  apply_batch(s, &b, 1, 0, offset, &o);
  return o;
}

/* ---- readers ------------------------------------------------------------- */

int latest(struct store *s, const char *rack, const char *name, struct store_latest *out) {
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  int rc = store_read_latest_by_name(r, rack, name, out);
  store_read_end(r);
  return rc;
}

double latest_value(struct store *s, const char *rack, const char *name) {
  struct store_latest l;
  int rc = latest(s, rack, name, &l);
  if (rc != 0)
    fail_msg("no latest %s in %s", name, rack);
  return l.value;
}

int rack_of(struct store *s, const char *rack, struct store_rack *out) {
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  int rc = store_read_rack(r, rack, out);
  store_read_end(r);
  return rc;
}

void on_agent(void *ctx, const char *agent, const struct store_agent *a) {
  struct agents *q = ctx;
  if (q->n < 4) {
    snprintf(q->names[q->n], sizeof(q->names[0]), "%s", agent);
    q->a[q->n++] = *a;
  }
}

/* The stored record of `agent`; fails the test when there is none. */
struct store_agent agent_of(struct store *s, const char *agent) {
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

size_t count_agents(struct store *s) {
  struct agents q = {0};
  struct store_read *r = NULL;
  assert_int_equal(store_read_begin(s, &r), 0);
  store_read_each_agent(r, on_agent, &q);
  store_read_end(r);
  return q.n;
}

void on_latest(void *ctx, const char *key, const struct store_latest *l) {
  struct keys *q = ctx;
  if (q->n < 8) {
    snprintf(q->key[q->n], sizeof(q->key[0]), "%s", key);
    q->l[q->n++] = *l;
  }
}

void on_device(void *ctx, const char *device, const struct store_device *d) {
  struct keys *q = ctx;
  if (q->n < 8) {
    snprintf(q->key[q->n], sizeof(q->key[0]), "%s", device);
    q->d[q->n++] = *d;
  }
}

void on_rack(void *ctx, const char *rack, const struct store_rack *rk) {
  (void)rk;
  struct keys *q = ctx;
  if (q->n < 8)
    snprintf(q->key[q->n++], sizeof(q->key[0]), "%s", rack);
}
