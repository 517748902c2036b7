/* The store's read side: read transactions (under the resize lock's shared
 * side, see store.h) and the lookups and iterations the HTTP threads, the
 * gates and /metrics use, plus the consumer's offset lookup. */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct store_read {
  struct store *s;
  MDB_txn *txn;
};

int store_get_offset(struct store *s, const char *topic, int32_t partition, int64_t *next) {
  char key[300], part[16];
  snprintf(part, sizeof(part), "%d", (int)partition);
  int klen = store__join_key(key, sizeof(key), topic, part);
  if (klen < 0)
    return klen;
  MDB_txn *txn;
  pthread_rwlock_rdlock(&s->resize_lock);
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0) {
    pthread_rwlock_unlock(&s->resize_lock);
    return -EIO;
  }
  int rc = store__get_copy(txn, s->offsets, key, (size_t)klen, next, sizeof(*next));
  mdb_txn_abort(txn);
  pthread_rwlock_unlock(&s->resize_lock);
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

int store_read_begin(struct store *s, struct store_read **out) {
  struct store_read *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  r->s = s;
  pthread_rwlock_rdlock(&s->resize_lock);
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn) != 0) {
    pthread_rwlock_unlock(&s->resize_lock);
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
  pthread_rwlock_unlock(&r->s->resize_lock);
  free(r);
}

int store_read_rack(struct store_read *r, const char *rack, struct store_rack *out) {
  int rc = store__get_copy(r->txn, r->s->racks, rack, strlen(rack), out, sizeof(*out));
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

int store_read_agent(struct store_read *r, const char *agent, struct store_agent *out) {
  int rc = store__get_copy(r->txn, r->s->agents, agent, strlen(agent), out, sizeof(*out));
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

/* Unpacks a stored record of `size` bytes into value (RECORD_MAX bytes,
 * aligned); false: not a record of its database. */
typedef bool unpack_fn(const void *rec, size_t size, void *value);

static bool unpack_latest(const void *rec, size_t size, void *value) {
  return latest_unpack(rec, size, value);
}

/* Iterates the records whose key starts with prefix "\0"; fn gets the rest
 * of the key and the value: unpacked by unpack, or, without one, copied
 * when it is value_size bytes. */
static int each_with_prefix(struct store_read *r, MDB_dbi dbi, const char *prefix,
                            size_t value_size, unpack_fn *unpack,
                            void (*fn)(void *ctx, const char *rest, const void *value), void *ctx) {
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
    bool ok = unpack ? unpack(v.mv_data, v.mv_size, value)
                     : v.mv_size == value_size && value_size <= sizeof(value);
    if (rlen < sizeof(rest) && ok) {
      memcpy(rest, (char *)k.mv_data + plen + 1, rlen);
      rest[rlen] = '\0';
      if (unpack == NULL)
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
  each_with_prefix(r, r->s->latest, rack, sizeof(*out), unpack_latest, match_name, &q);
  return q.found ? 0 : -ENOENT;
}

int store_read_each_latest(struct store_read *r, const char *rack,
                           void (*fn)(void *ctx, const char *key, const struct store_latest *),
                           void *ctx) {
  return each_with_prefix(r, r->s->latest, rack, sizeof(struct store_latest), unpack_latest,
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
  each_with_prefix(r, r->s->stats, rack, sizeof(*out), NULL, match_stats, &q);
  return q.found ? 0 : -ENOENT;
}

int store_read_each_stats(struct store_read *r, const char *rack,
                          void (*fn)(void *ctx, const char *key, const struct store_stats *),
                          void *ctx) {
  return each_with_prefix(r, r->s->stats, rack, sizeof(struct store_stats), NULL,
                          (void (*)(void *, const char *, const void *))fn, ctx);
}

int store_read_each_device(struct store_read *r, const char *rack,
                           void (*fn)(void *ctx, const char *device, const struct store_device *),
                           void *ctx) {
  return each_with_prefix(r, r->s->devices, rack, sizeof(struct store_device), NULL,
                          (void (*)(void *, const char *, const void *))fn, ctx);
}

int store_read_each_retired(struct store_read *r, const char *rack,
                            void (*fn)(void *ctx, const char *device, const struct store_retired *),
                            void *ctx) {
  return each_with_prefix(r, r->s->retired, rack, sizeof(struct store_retired), NULL,
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
