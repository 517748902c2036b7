/* Rack state in LMDB (see store.h). Records are fixed-size C structs: the
 * database is local to one aggregator host and rebuilt from Kafka if its
 * layout ever changes (the "meta" database holds the layout version). */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_LAYOUT_VERSION 1
#define KEY_MAX 500 /* LMDB's default maximum key size is 511 bytes */
#define RECORD_MAX 1024 /* the largest fixed-size record struct, with room */

struct store {
  MDB_env *env;
  MDB_dbi meta, offsets, agents, dict, latest, devices, racks, stats;
};

struct store_batch {
  struct store *s;
  MDB_txn *txn;
};

struct store_read {
  struct store *s;
  MDB_txn *txn;
};

static int lmdb_err(int rc, const char *what, char *err, size_t errlen) {
  if (rc == MDB_MAP_FULL)
    snprintf(err, errlen, "%s: the LMDB map is full: raise store.map_size", what);
  else
    snprintf(err, errlen, "%s: %s", what, mdb_strerror(rc));
  return rc > 0 ? -EIO : rc;
}

static int open_dbs(struct store *s, char *err, size_t errlen) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return lmdb_err(rc, "store: begin", err, errlen);
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {{"meta", &s->meta},     {"offsets", &s->offsets}, {"agents", &s->agents},
             {"dict", &s->dict},     {"latest", &s->latest},   {"devices", &s->devices},
             {"racks", &s->racks},   {"stats", &s->stats}};
  for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
    rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return lmdb_err(rc, dbs[i].name, err, errlen);
    }
  }
  MDB_val k = {6, "layout"}, v;
  uint32_t layout = STORE_LAYOUT_VERSION;
  rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    v = (MDB_val){sizeof(layout), &layout};
    rc = mdb_put(txn, s->meta, &k, &v, 0);
  } else if (rc == 0 && (v.mv_size != sizeof(layout) || memcmp(v.mv_data, &layout, 4) != 0)) {
    mdb_txn_abort(txn);
    snprintf(err, errlen,
             "store: the database has another layout version; move it aside and the "
             "aggregator rebuilds state from Kafka");
    return -EPROTO;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return lmdb_err(rc, "store: layout", err, errlen);
  }
  rc = mdb_txn_commit(txn);
  return rc ? lmdb_err(rc, "store: commit", err, errlen) : 0;
}

int store_open(const char *path, size_t map_size, struct store **out, char *err,
               size_t errlen) {
  struct store *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  int rc;
  if (mkdir(path, 0750) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "store %s: %s", path, strerror(errno));
    free(s);
    return -errno;
  }
  if ((rc = mdb_env_create(&s->env)) != 0)
    goto fail;
  if ((rc = mdb_env_set_maxdbs(s->env, 16)) != 0 ||
      (rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
      (rc = mdb_env_set_maxreaders(s->env, 256)) != 0)
    goto fail_env;
  /* MDB_NOTLS: read transactions are not tied to threads, so the HTTP
   * server's thread pool may use them freely. */
  if ((rc = mdb_env_open(s->env, path, MDB_NOTLS, 0640)) != 0)
    goto fail_env;
  if ((rc = open_dbs(s, err, errlen)) != 0) {
    mdb_env_close(s->env);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
fail_env:
  mdb_env_close(s->env);
fail:
  snprintf(err, errlen, "store %s: %s", path, mdb_strerror(rc));
  free(s);
  return rc > 0 ? -EIO : rc;
}

void store_close(struct store *s) {
  if (s == NULL)
    return;
  mdb_env_close(s->env);
  free(s);
}

/* Joins a and b with a NUL into key; returns the length or -ENAMETOOLONG. */
static int join_key(char *key, size_t len, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la + 1 + lb > len)
    return -ENAMETOOLONG;
  memcpy(key, a, la);
  key[la] = '\0';
  memcpy(key + la + 1, b, lb);
  return (int)(la + 1 + lb);
}

static int put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, const void *v,
               size_t vlen) {
  MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
  return mdb_put(txn, dbi, &key, &val, 0);
}

static int get_copy(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, void *out,
                    size_t size) {
  MDB_val key = {klen, (void *)k}, val;
  int rc = mdb_get(txn, dbi, &key, &val);
  if (rc != 0)
    return rc;
  if (val.mv_size != size)
    return MDB_CORRUPTED;
  memcpy(out, val.mv_data, size);
  return 0;
}

int store_batch_begin(struct store *s, struct store_batch **out, char *err, size_t errlen) {
  struct store_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  b->s = s;
  int rc = mdb_txn_begin(s->env, NULL, 0, &b->txn);
  if (rc != 0) {
    free(b);
    return lmdb_err(rc, "store: begin batch", err, errlen);
  }
  *out = b;
  return 0;
}

static int put_offset(struct store_batch *b, const char *topic, int32_t partition,
                      int64_t next) {
  char key[300], part[16];
  snprintf(part, sizeof(part), "%d", (int)partition);
  int klen = join_key(key, sizeof(key), topic, part);
  if (klen < 0)
    return klen;
  return put(b->txn, b->s->offsets, key, (size_t)klen, &next, sizeof(next));
}

int store_batch_skip(struct store_batch *b, const char *topic, int32_t partition,
                     int64_t offset, char *err, size_t errlen) {
  int rc = put_offset(b, topic, partition, offset + 1);
  return rc ? lmdb_err(rc, "store: offset", err, errlen) : 0;
}

/* Replaces the agent's stored dictionary with the frame's. */
static int store_dictionary(struct store_batch *b, const rp_frame *f) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(b->txn, b->s->dict, &c);
  if (rc != 0)
    return rc;
  size_t alen = strlen(f->agent_id);
  MDB_val k = {alen + 1, f->agent_id}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size > alen && memcmp(k.mv_data, f->agent_id, alen + 1) == 0) {
    if ((rc = mdb_cursor_del(c, 0)) != 0)
      break;
    /* After a delete the cursor already stands on the next record: MDB_NEXT
     * returns it without advancing. */
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  for (size_t i = 0; i < f->n_dictionary; i++) {
    uint8_t small[2048], *buf = small;
    const Rackpulse__V1__SeriesDef *d = f->dictionary[i];
    size_t size = rackpulse__v1__series_def__get_packed_size(d);
    if (size > sizeof(small) && (buf = malloc(size)) == NULL)
      return ENOMEM;
    rackpulse__v1__series_def__pack(d, buf);
    char key[RP_ID_MAX + 1 + 4];
    memcpy(key, f->agent_id, alen + 1);
    uint32_t id_be = __builtin_bswap32(d->id); /* big-endian: keys sort by id */
    memcpy(key + alen + 1, &id_be, 4);
    rc = put(b->txn, b->s->dict, key, alen + 5, buf, size);
    if (buf != small)
      free(buf);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Looks a series up in the agent's stored dictionary; NULL when unknown.
 * The result is unpacked; the caller frees it. */
static Rackpulse__V1__SeriesDef *lookup_series(struct store_batch *b, const char *agent,
                                               uint32_t id) {
  size_t alen = strlen(agent);
  char key[RP_ID_MAX + 1 + 4];
  memcpy(key, agent, alen + 1);
  uint32_t id_be = __builtin_bswap32(id);
  memcpy(key + alen + 1, &id_be, 4);
  MDB_val k = {alen + 5, key}, v;
  if (mdb_get(b->txn, b->s->dict, &k, &v) != 0)
    return NULL;
  return rackpulse__v1__series_def__unpack(NULL, v.mv_size, v.mv_data);
}

/* "name{k=v,...}@device" */
static void series_key(char *out, size_t len, const Rackpulse__V1__SeriesDef *d) {
  int n = snprintf(out, len, "%s", d->name);
  if (d->n_labels > 0) {
    for (size_t i = 0; i < d->n_labels && n >= 0 && (size_t)n < len; i++)
      n += snprintf(out + n, len - (size_t)n, "%c%s=%s", i ? ',' : '{', d->labels[i]->key,
                    d->labels[i]->value);
    if (n >= 0 && (size_t)n < len)
      n += snprintf(out + n, len - (size_t)n, "}");
  }
  if (n >= 0 && (size_t)n < len)
    snprintf(out + n, len - (size_t)n, "@%s", d->device);
}

static int put_latest(struct store_batch *b, const char *rack,
                      const Rackpulse__V1__SeriesDef *d, const struct store_latest *l) {
  char skey[RP_SERIES_KEY_MAX + 1], key[KEY_MAX];
  series_key(skey, sizeof(skey), d);
  int klen = join_key(key, sizeof(key), rack, skey);
  if (klen < 0)
    return 0; /* cannot happen: frame validation bounds the series key */
  struct store_latest old;
  if (get_copy(b->txn, b->s->latest, key, (size_t)klen, &old, sizeof(old)) == 0 &&
      old.ts_ms > l->ts_ms)
    return 0; /* an older sample never replaces a newer one */
  return put(b->txn, b->s->latest, key, (size_t)klen, l, sizeof(*l));
}

static int apply_samples(struct store_batch *b, const rp_frame *f, struct store_agent *ag) {
  for (size_t i = 0; i < f->n_samples; i++) {
    const Rackpulse__V1__SampleBlock *blk = f->samples[i];
    for (size_t j = 0; j < blk->n_series; j++) {
      Rackpulse__V1__SeriesDef *d = lookup_series(b, f->agent_id, blk->series[j]);
      if (d == NULL) {
        ag->undecodable++;
        continue;
      }
      struct store_latest l = {.value = rp_value_unscale(blk->scaled[j], d->decimals),
                               .ts_ms = blk->ts_ms,
                               .status = RACKPULSE__V1__READING_STATUS__READING_OK,
                               .decimals = d->decimals};
      snprintf(l.unit, sizeof(l.unit), "%s", d->unit);
      int rc = put_latest(b, f->rack_id, d, &l);
      rackpulse__v1__series_def__free_unpacked(d, NULL);
      if (rc != 0)
        return rc;
    }
  }
  for (size_t i = 0; i < f->n_statuses; i++) {
    const Rackpulse__V1__SeriesStatus *st = f->statuses[i];
    Rackpulse__V1__SeriesDef *d = lookup_series(b, f->agent_id, st->series);
    if (d == NULL) {
      ag->undecodable++;
      continue;
    }
    struct store_latest l = {.value = 0, .ts_ms = f->ts_ms, .status = (int32_t)st->status,
                             .decimals = d->decimals};
    snprintf(l.unit, sizeof(l.unit), "%s", d->unit);
    snprintf(l.detail, sizeof(l.detail), "%s", st->detail);
    int rc = put_latest(b, f->rack_id, d, &l);
    rackpulse__v1__series_def__free_unpacked(d, NULL);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int apply_stats(struct store_batch *b, const rp_frame *f, struct store_agent *ag) {
  for (size_t i = 0; i < f->n_stats; i++) {
    const Rackpulse__V1__WindowStats *w = f->stats[i];
    Rackpulse__V1__SeriesDef *d = lookup_series(b, f->agent_id, w->series);
    if (d == NULL) {
      ag->undecodable++;
      continue;
    }
    char skey[RP_SERIES_KEY_MAX + 1], wkey[RP_SERIES_KEY_MAX + 16], key[KEY_MAX];
    series_key(skey, sizeof(skey), d);
    rackpulse__v1__series_def__free_unpacked(d, NULL);
    snprintf(wkey, sizeof(wkey), "%s|%u", skey, w->window_s);
    int klen = join_key(key, sizeof(key), f->rack_id, wkey);
    if (klen < 0)
      continue;
    struct store_stats st = {.window_s = w->window_s,
                             .count = w->count,
                             .min = w->min,
                             .max = w->max,
                             .mean = w->mean,
                             .stddev = w->stddev,
                             .p50 = w->p50,
                             .p95 = w->p95,
                             .p99 = w->p99,
                             .has_slope = w->has_slope,
                             .slope_per_min = w->slope_per_min,
                             .ts_ms = f->ts_ms};
    int rc = put(b->txn, b->s->stats, key, (size_t)klen, &st, sizeof(st));
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int apply_devices(struct store_batch *b, const rp_frame *f) {
  for (size_t i = 0; i < f->n_devices; i++) {
    const Rackpulse__V1__DeviceStatus *ds = f->devices[i];
    struct store_device d = {.up = ds->up,
                             .scrape_ms = ds->scrape_ms,
                             .scrapes = ds->scrapes,
                             .failures = ds->failures,
                             .last_ok_ms = ds->last_ok_ms,
                             .reported_ms = f->ts_ms};
    snprintf(d.kind, sizeof(d.kind), "%s", ds->kind);
    snprintf(d.last_error, sizeof(d.last_error), "%s", ds->last_error);
    char key[KEY_MAX];
    int klen = join_key(key, sizeof(key), f->rack_id, ds->device);
    if (klen < 0)
      continue;
    int rc = put(b->txn, b->s->devices, key, (size_t)klen, &d, sizeof(d));
    if (rc != 0)
      return rc;
  }
  return 0;
}

int store_batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                      int32_t partition, int64_t offset, enum store_outcome *outcome,
                      char *err, size_t errlen) {
  struct store_agent ag = {0};
  size_t alen = strlen(f->agent_id);
  int rc = get_copy(b->txn, b->s->agents, f->agent_id, alen, &ag, sizeof(ag));
  if (rc != 0 && rc != MDB_NOTFOUND)
    return lmdb_err(rc, "store: agent", err, errlen);
  bool known = rc == 0;
  if (known && f->seq <= ag.last_seq) {
    ag.duplicates++;
    *outcome = STORE_DUPLICATE;
  } else {
    if (known && f->seq > ag.last_seq + 1)
      ag.gaps += f->seq - ag.last_seq - 1;
    ag.last_seq = f->seq;
    ag.frames++;
    ag.last_ms = f->ts_ms;
    snprintf(ag.rack, sizeof(ag.rack), "%s", f->rack_id);
    if (f->n_dictionary > 0) {
      if ((rc = store_dictionary(b, f)) != 0)
        return lmdb_err(rc, "store: dictionary", err, errlen);
      ag.dict_version = f->dictionary_version;
    }
    if (f->dictionary_version == ag.dict_version) {
      if ((rc = apply_samples(b, f, &ag)) != 0)
        return lmdb_err(rc, "store: samples", err, errlen);
      if ((rc = apply_stats(b, f, &ag)) != 0)
        return lmdb_err(rc, "store: window statistics", err, errlen);
    } else {
      for (size_t i = 0; i < f->n_samples; i++)
        ag.undecodable += f->samples[i]->n_series;
    }
    if ((rc = apply_devices(b, f)) != 0)
      return lmdb_err(rc, "store: devices", err, errlen);
    struct store_rack r = {0};
    get_copy(b->txn, b->s->racks, f->rack_id, strlen(f->rack_id), &r, sizeof(r));
    if (f->ts_ms >= r.last_frame_ms) {
      r.last_frame_ms = f->ts_ms;
      r.received_ms = rp_now_ms();
      r.last_seq = f->seq;
      snprintf(r.agent, sizeof(r.agent), "%s", f->agent_id);
      rc = put(b->txn, b->s->racks, f->rack_id, strlen(f->rack_id), &r, sizeof(r));
      if (rc != 0)
        return lmdb_err(rc, "store: rack", err, errlen);
    }
    *outcome = STORE_APPLIED;
  }
  if ((rc = put(b->txn, b->s->agents, f->agent_id, alen, &ag, sizeof(ag))) != 0)
    return lmdb_err(rc, "store: agent", err, errlen);
  return store_batch_skip(b, topic, partition, offset, err, errlen);
}

int store_batch_commit(struct store_batch *b, char *err, size_t errlen) {
  int rc = mdb_txn_commit(b->txn);
  free(b);
  return rc ? lmdb_err(rc, "store: commit", err, errlen) : 0;
}

void store_batch_abort(struct store_batch *b) {
  if (b == NULL)
    return;
  mdb_txn_abort(b->txn);
  free(b);
}

int store_get_offset(struct store *s, const char *topic, int32_t partition, int64_t *next) {
  char key[300], part[16];
  snprintf(part, sizeof(part), "%d", (int)partition);
  int klen = join_key(key, sizeof(key), topic, part);
  if (klen < 0)
    return klen;
  MDB_txn *txn;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
    return -EIO;
  int rc = get_copy(txn, s->offsets, key, (size_t)klen, next, sizeof(*next));
  mdb_txn_abort(txn);
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

int store_read_begin(struct store *s, struct store_read **out) {
  struct store_read *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  r->s = s;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn) != 0) {
    free(r);
    return -EIO;
  }
  *out = r;
  return 0;
}

void store_read_end(struct store_read *r) {
  if (r == NULL)
    return;
  mdb_txn_abort(r->txn);
  free(r);
}

int store_read_rack(struct store_read *r, const char *rack, struct store_rack *out) {
  int rc = get_copy(r->txn, r->s->racks, rack, strlen(rack), out, sizeof(*out));
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

/* Iterates the records whose key starts with prefix "\0"; fn gets the rest
 * of the key. */
static int each_with_prefix(struct store_read *r, MDB_dbi dbi, const char *prefix,
                            size_t value_size,
                            void (*fn)(void *ctx, const char *rest, const void *value),
                            void *ctx) {
  MDB_cursor *c;
  if (mdb_cursor_open(r->txn, dbi, &c) != 0)
    return -EIO;
  size_t plen = strlen(prefix);
  MDB_val k = {plen + 1, (void *)prefix}, v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen + 1) == 0) {
    char rest[KEY_MAX + 1];
    _Alignas(max_align_t) unsigned char value[RECORD_MAX];
    size_t rlen = k.mv_size - plen - 1;
    if (rlen < sizeof(rest) && v.mv_size == value_size && value_size <= sizeof(value)) {
      memcpy(rest, (char *)k.mv_data + plen + 1, rlen);
      rest[rlen] = '\0';
      memcpy(value, v.mv_data, value_size); /* LMDB values need not be aligned */
      fn(ctx, rest, value);
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return 0;
}

struct by_name {
  const char *name;
  size_t len;
  struct store_latest *out;
  bool found;
};

static void match_name(void *ctx, const char *key, const void *value) {
  struct by_name *q = ctx;
  if (q->found || strncmp(key, q->name, q->len) != 0 || (key[q->len] != '{' && key[q->len] != '@'))
    return;
  memcpy(q->out, value, sizeof(*q->out));
  q->found = true;
}

int store_read_latest_by_name(struct store_read *r, const char *rack, const char *name,
                              struct store_latest *out) {
  struct by_name q = {name, strlen(name), out, false};
  each_with_prefix(r, r->s->latest, rack, sizeof(*out), match_name, &q);
  return q.found ? 0 : -ENOENT;
}

int store_read_each_latest(struct store_read *r, const char *rack,
                           void (*fn)(void *ctx, const char *key, const struct store_latest *),
                           void *ctx) {
  return each_with_prefix(r, r->s->latest, rack, sizeof(struct store_latest),
                          (void (*)(void *, const char *, const void *))fn, ctx);
}

struct stats_by_name {
  const char *name;
  size_t len;
  uint32_t window_s;
  struct store_stats *out;
  bool found;
};

static void match_stats(void *ctx, const char *key, const void *value) {
  struct stats_by_name *q = ctx;
  const struct store_stats *st = value;
  if (q->found || st->window_s != q->window_s || strncmp(key, q->name, q->len) != 0 ||
      (key[q->len] != '{' && key[q->len] != '@'))
    return;
  *q->out = *st;
  q->found = true;
}

int store_read_stats_by_name(struct store_read *r, const char *rack, const char *name,
                             uint32_t window_s, struct store_stats *out) {
  struct stats_by_name q = {name, strlen(name), window_s, out, false};
  each_with_prefix(r, r->s->stats, rack, sizeof(*out), match_stats, &q);
  return q.found ? 0 : -ENOENT;
}

int store_read_each_stats(struct store_read *r, const char *rack,
                          void (*fn)(void *ctx, const char *key, const struct store_stats *),
                          void *ctx) {
  return each_with_prefix(r, r->s->stats, rack, sizeof(struct store_stats),
                          (void (*)(void *, const char *, const void *))fn, ctx);
}

int store_read_each_device(struct store_read *r, const char *rack,
                           void (*fn)(void *ctx, const char *device,
                                      const struct store_device *),
                           void *ctx) {
  return each_with_prefix(r, r->s->devices, rack, sizeof(struct store_device),
                          (void (*)(void *, const char *, const void *))fn, ctx);
}

/* Iterates a whole database whose keys are plain strings. */
static int each_record(struct store_read *r, MDB_dbi dbi, size_t value_size,
                       void (*fn)(void *ctx, const char *key, const void *value), void *ctx) {
  MDB_cursor *c;
  if (mdb_cursor_open(r->txn, dbi, &c) != 0)
    return -EIO;
  MDB_val k, v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    char key[KEY_MAX + 1];
    _Alignas(max_align_t) unsigned char value[RECORD_MAX];
    if (k.mv_size < sizeof(key) && v.mv_size == value_size && value_size <= sizeof(value)) {
      memcpy(key, k.mv_data, k.mv_size);
      key[k.mv_size] = '\0';
      memcpy(value, v.mv_data, value_size); /* LMDB values need not be aligned */
      fn(ctx, key, value);
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return 0;
}

int store_read_each_rack(struct store_read *r,
                         void (*fn)(void *ctx, const char *rack, const struct store_rack *),
                         void *ctx) {
  return each_record(r, r->s->racks, sizeof(struct store_rack),
                     (void (*)(void *, const char *, const void *))fn, ctx);
}

int store_read_each_agent(struct store_read *r,
                          void (*fn)(void *ctx, const char *agent, const struct store_agent *),
                          void *ctx) {
  return each_record(r, r->s->agents, sizeof(struct store_agent),
                     (void (*)(void *, const char *, const void *))fn, ctx);
}
