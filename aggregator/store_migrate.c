/* Converting a store of layout 1, 2 or 3 to the current layout 4, inside
 * the transaction that opens it (store.c, open_dbs()). Old records are read
 * by their old structs, kept here, and rewritten in place. */
#include <errno.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* The agent record of layout 1 (before incarnations and dictionary ids). */
struct store_agent_v1 {
  uint64_t last_seq, frames, duplicates, gaps, undecodable;
  uint32_t dict_version;
  int64_t last_ms;
  char rack[RP_ID_MAX + 1];
};

/* Layout 1 -> 2 inside the open transaction: agent records gain their
 * identity fields (incarnation 0, the one agents older than incarnations
 * send: their frames keep being de-duplicated against the old marks), and
 * the dictionaries, keyed by series id only, are dropped (each agent resends
 * its own within dictionary_every frames; samples until then are skipped and
 * counted). Returns 0 or an LMDB error / ENOMEM. */
int store__migrate_from_1(struct store *s, MDB_txn *txn) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->agents, &c);
  if (rc != 0)
    return rc;
  struct old {
    char id[RP_ID_MAX + 1];
    struct store_agent_v1 rec;
  } *olds = NULL;
  size_t n = 0, cap = 0;
  MDB_val k, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    if (v.mv_size == sizeof(struct store_agent_v1) && k.mv_size <= RP_ID_MAX) {
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        struct old *grown = realloc(olds, cap * sizeof(*olds));
        if (grown == NULL) {
          rc = ENOMEM;
          break;
        }
        olds = grown;
      }
      memset(&olds[n], 0, sizeof(olds[n]));
      memcpy(olds[n].id, k.mv_data, k.mv_size);
      memcpy(&olds[n].rec, v.mv_data, sizeof(olds[n].rec));
      n++;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND)
    rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const struct store_agent_v1 *o = &olds[i].rec;
    struct store_agent ag = {.last_seq = o->last_seq,
                             .frames = o->frames,
                             .duplicates = o->duplicates,
                             .gaps = o->gaps,
                             .undecodable = o->undecodable,
                             .dict_version = o->dict_version,
                             .last_ms = o->last_ms,
                             .incarnations = 1};
    memcpy(ag.rack, o->rack, sizeof(ag.rack));
    ag.rack[sizeof(ag.rack) - 1] = '\0';
    MDB_val key = {strlen(olds[i].id), olds[i].id}, val = {sizeof(ag), &ag};
    rc = mdb_put(txn, s->agents, &key, &val, 0);
  }
  free(olds);
  if (rc == 0)
    rc = mdb_drop(txn, s->dict, 0); /* empties it, keeps the handle */
  return rc;
}

/* The records of layouts 1 and 2, before receive times. */
struct store_latest_v2 {
  double value;
  int64_t ts_ms;
  int32_t status, decimals;
  char unit[24];
  char detail[96];
};
struct store_stats_v2 {
  uint32_t window_s, count;
  double min, max, mean, stddev, p50, p95, p99;
  bool has_slope;
  double slope_per_min;
  int64_t ts_ms;
};
struct store_device_v2 {
  bool up;
  char kind[16];
  char last_error[200];
  uint32_t scrape_ms;
  uint64_t scrapes, failures;
  int64_t last_ok_ms, reported_ms;
};

/* Converts one old-sized record of dbi to the current layout. */
static void convert_latest(const void *old, void *out) {
  struct store_latest_v2 o;
  memcpy(&o, old, sizeof(o));
  struct store_latest *l = out;
  *l = (struct store_latest){.value = o.value,
                             .ts_ms = o.ts_ms,
                             .status = o.status,
                             .decimals = o.decimals,
                             .received_ms = o.ts_ms};
  memcpy(l->unit, o.unit, sizeof(l->unit));
  memcpy(l->detail, o.detail, sizeof(l->detail));
}

static void convert_stats(const void *old, void *out) {
  struct store_stats_v2 o;
  memcpy(&o, old, sizeof(o));
  *(struct store_stats *)out = (struct store_stats){.window_s = o.window_s,
                                                    .count = o.count,
                                                    .min = o.min,
                                                    .max = o.max,
                                                    .mean = o.mean,
                                                    .stddev = o.stddev,
                                                    .p50 = o.p50,
                                                    .p95 = o.p95,
                                                    .p99 = o.p99,
                                                    .has_slope = o.has_slope,
                                                    .slope_per_min = o.slope_per_min,
                                                    .ts_ms = o.ts_ms,
                                                    .received_ms = o.ts_ms};
}

static void convert_device(const void *old, void *out) {
  struct store_device_v2 o;
  memcpy(&o, old, sizeof(o));
  struct store_device *d = out;
  *d = (struct store_device){.up = o.up,
                             .scrape_ms = o.scrape_ms,
                             .scrapes = o.scrapes,
                             .failures = o.failures,
                             .last_ok_ms = o.last_ok_ms,
                             .reported_ms = o.reported_ms,
                             .received_ms = o.reported_ms};
  memcpy(d->kind, o.kind, sizeof(d->kind));
  memcpy(d->last_error, o.last_error, sizeof(d->last_error));
}

static int convert_db(MDB_txn *txn, MDB_dbi dbi, size_t old_size, size_t new_size,
                      void (*convert)(const void *old, void *out)) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, dbi, &c);
  if (rc != 0)
    return rc;
  MDB_val k, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    if (v.mv_size == old_size && k.mv_size <= KEY_MAX) {
      _Alignas(max_align_t) unsigned char rec[RECORD_MAX] = {0};
      char key[KEY_MAX];
      convert(v.mv_data, rec);
      memcpy(key, k.mv_data, k.mv_size); /* as in store__migrate_latest_compact() */
      MDB_val nk = {k.mv_size, key}, nv = {new_size, rec};
      if ((rc = mdb_cursor_put(c, &nk, &nv, MDB_CURRENT)) != 0)
        break;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Layout 3 adds the aggregator's receive time to latest values, window
 * statistics and devices (and newest_ms to statistics). Old records take
 * their frame time as receive time: ages stay as they were, no skew. */
int store__migrate_receive_times(struct store *s, MDB_txn *txn) {
  int rc = convert_db(txn, s->latest, sizeof(struct store_latest_v2), sizeof(struct store_latest),
                      convert_latest);
  if (rc == 0)
    rc = convert_db(txn, s->stats, sizeof(struct store_stats_v2), sizeof(struct store_stats),
                    convert_stats);
  if (rc == 0)
    rc = convert_db(txn, s->devices, sizeof(struct store_device_v2), sizeof(struct store_device),
                    convert_device);
  return rc;
}

/* Layout 4 stores latest values compact (struct latest_rec, the detail
 * after it only when there is one). Every record of layout 3 is
 * sizeof(struct store_latest) bytes (what layouts 1 and 2 became above);
 * it is rewritten in place, in key order. The pages keep their number
 * (LMDB merges a page only when it is nearly empty): a migrated store
 * stays as large on disk, a store rebuilt from Kafka is smaller. */
int store__migrate_latest_compact(struct store *s, MDB_txn *txn, size_t *n) {
  *n = 0;
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->latest, &c);
  if (rc != 0)
    return rc;
  MDB_val k, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    if (v.mv_size == sizeof(struct store_latest) && k.mv_size <= KEY_MAX) {
      struct store_latest old;
      unsigned char rec[LATEST_REC_MAX];
      char key[KEY_MAX];
      memcpy(&old, v.mv_data, sizeof(old));
      old.detail[sizeof(old.detail) - 1] = '\0';
      /* The key from a copy: k points into the page, which the put of
       * another size rearranges under it. */
      memcpy(key, k.mv_data, k.mv_size);
      MDB_val nk = {k.mv_size, key}, nv = {latest_pack(&old, rec), rec};
      if ((rc = mdb_cursor_put(c, &nk, &nv, MDB_CURRENT)) != 0)
        break;
      (*n)++;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}
