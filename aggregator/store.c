/* Rack state in LMDB (see store.h). Records are fixed-size C structs: the
 * database is local to one aggregator host and rebuilt from Kafka if its
 * layout ever changes (the "meta" database holds the layout version).
 *
 * The hot path is one LMDB cursor lookup and one in-place write per sample.
 * The series dictionaries are also kept decoded in memory (struct dict):
 * a sample's series id resolves to its key, unit and decimals without an
 * LMDB get and a protobuf unpack. The cache mirrors the dictionary database
 * as the open batch sees it: it holds dictionaries by (agent, dictionary id),
 * each filled from LMDB on first use, written when a frame brings a new one,
 * dropped when LMDB evicts it, and all dropped when a batch aborts. Only the
 * writer's thread touches it. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rackpulse/hash.h"

#define STORE_LAYOUT_VERSION 3 /* 2: incarnations, dictionaries by id; 3: receive times */
#define KEY_MAX 500            /* LMDB's default maximum key size is 511 bytes */
#define RECORD_MAX 1024        /* the largest fixed-size record struct, with room */
#define TOPIC_MAX 256          /* Kafka topic names have at most 249 characters */
/* The dictionary cache is dropped and refilled past this many series. */
#define DICT_CACHE_MAX_SERIES (4u << 20)

/* One series of an agent's dictionary, ready for the hot path. */
struct dict_series {
  uint32_t id;
  int32_t decimals;
  uint32_t rank;    /* position of the key among the agent's series keys */
  uint16_t key_len; /* 0: an empty slot */
  char unit[sizeof(((struct store_latest *)0)->unit)];
  char *key; /* the series key "name{k=v,...}@device", owned */
};

/* One dictionary of an agent: open addressing on the series id. */
struct dict_agent {
  char id[RP_ID_MAX + 1];
  uint64_t dict_id;        /* the dictionary's identity (its content hash) */
  struct dict_agent *next; /* hash chain */
  size_t n, cap;           /* cap: 0 or a power of two, at least 2 n */
  struct dict_series *slots;
  bool ranked; /* the ranks are up to date */
};

struct dict {
  struct dict_agent **buckets;
  size_t nbuckets, nagents, nseries;
  int32_t *order; /* scratch for apply_block(): index by rank */
  size_t order_cap;
};

struct store {
  MDB_env *env;
  MDB_dbi meta, offsets, agents, dict, latest, devices, racks, stats, retired;
  /* Readers hold it shared for a read transaction, store_grow()
   * exclusively (writer-preferring, so a resize is not starved). */
  pthread_rwlock_t resize_lock;
  atomic_size_t map_size, map_max; /* written by the writer, read by /metrics */
  atomic_uint_fast64_t grows;
  bool batch_open;
  struct dict cache;
};

struct pending_offset {
  char topic[TOPIC_MAX];
  int32_t partition;
  int64_t next;
};

struct store_batch {
  struct store *s;
  MDB_txn *txn;
  MDB_cursor *latest;  /* opened on first use */
  int64_t received_ms; /* the aggregator's clock when the current frame is applied */
  /* Next offsets, written once per partition at commit. */
  struct pending_offset *offsets;
  size_t noffsets, offsets_cap;
};

struct store_read {
  struct store *s;
  MDB_txn *txn;
};

static int lmdb_err(int rc, const char *what, char *err, size_t errlen) {
  if (rc == MDB_MAP_FULL || rc == -ENOSPC) {
    snprintf(err, errlen, "%s: the LMDB map is full", what);
    return -ENOSPC;
  }
  snprintf(err, errlen, "%s: %s", what, rc < 0 && rc > -4096 ? strerror(-rc) : mdb_strerror(rc));
  return rc > 0 ? -EIO : rc;
}

/* ---- the dictionary cache ------------------------------------------------- */

static size_t hash_id(uint32_t id) { return (size_t)id * 2654435761u; }

static size_t hash_agent_dict(const char *agent, uint64_t dict_id) {
  return (size_t)rp_hash_str(agent) ^ (size_t)(dict_id * 0x9e3779b97f4a7c15ull);
}

static void dict_agent_empty(struct dict_agent *da, struct dict *d) {
  for (size_t i = 0; i < da->cap; i++)
    free(da->slots[i].key);
  free(da->slots);
  d->nseries -= da->n;
  da->slots = NULL;
  da->n = da->cap = 0;
}

/* Drops every cached dictionary (after an abort: it may hold uncommitted
 * ones). */
static void dict_clear(struct dict *d) {
  for (size_t b = 0; b < d->nbuckets; b++) {
    struct dict_agent *da = d->buckets[b];
    while (da != NULL) {
      struct dict_agent *next = da->next;
      dict_agent_empty(da, d);
      free(da);
      da = next;
    }
    d->buckets[b] = NULL;
  }
  d->nagents = 0;
  d->nseries = 0;
}

static void dict_free(struct dict *d) {
  dict_clear(d);
  free(d->order);
  free(d->buckets);
  d->buckets = NULL;
  d->nbuckets = 0;
}

static struct dict_series *dict_find(const struct dict_agent *da, uint32_t id) {
  if (da->cap == 0)
    return NULL;
  size_t mask = da->cap - 1;
  for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
    struct dict_series *e = &da->slots[i];
    if (e->key_len == 0)
      return NULL;
    if (e->id == id)
      return e;
  }
}

static int by_key(const void *a, const void *b) {
  const struct dict_series *x = *(const struct dict_series *const *)a;
  const struct dict_series *y = *(const struct dict_series *const *)b;
  return strcmp(x->key, y->key); /* LMDB's order for keys with one prefix */
}

/* Numbers the agent's series in key order. Returns 0 or ENOMEM. */
static int dict_rank(struct dict_agent *da) {
  if (da->ranked)
    return 0;
  struct dict_series **sorted = malloc((da->n ? da->n : 1) * sizeof(*sorted));
  if (sorted == NULL)
    return ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < da->cap; i++)
    if (da->slots[i].key_len != 0)
      sorted[n++] = &da->slots[i];
  qsort(sorted, n, sizeof(*sorted), by_key);
  for (size_t i = 0; i < n; i++)
    sorted[i]->rank = (uint32_t)i;
  free(sorted);
  da->ranked = true;
  return 0;
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

/* Adds (or replaces) a series in the agent's table. Returns 0 or ENOMEM. */
static int dict_put(struct dict *d, struct dict_agent *da, const Rackpulse__V1__SeriesDef *def) {
  if (2 * (da->n + 1) > da->cap) {
    size_t cap = da->cap ? da->cap * 2 : 16;
    struct dict_series *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
      return ENOMEM;
    for (size_t i = 0; i < da->cap; i++) {
      struct dict_series *e = &da->slots[i];
      if (e->key_len == 0)
        continue;
      size_t j = hash_id(e->id) & (cap - 1);
      while (slots[j].key_len != 0)
        j = (j + 1) & (cap - 1);
      slots[j] = *e;
    }
    free(da->slots);
    da->slots = slots;
    da->cap = cap;
  }
  char key[RP_SERIES_KEY_MAX + 1];
  series_key(key, sizeof(key), def);
  size_t len = strlen(key);
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return ENOMEM;
  memcpy(copy, key, len + 1);
  size_t mask = da->cap - 1, i = hash_id(def->id) & mask;
  while (da->slots[i].key_len != 0 && da->slots[i].id != def->id)
    i = (i + 1) & mask;
  struct dict_series *e = &da->slots[i];
  if (e->key_len != 0) {
    free(e->key);
  } else {
    da->n++;
    d->nseries++;
  }
  da->ranked = false;
  e->id = def->id;
  e->decimals = def->decimals;
  e->key = copy;
  e->key_len = (uint16_t)(len ? len : 1);            /* series keys are never empty */
  memset(e->unit, 0, sizeof(e->unit));               /* records carry no stale bytes */
  rp_utf8_copy(e->unit, sizeof(e->unit), def->unit); /* whole characters only: JSON */
  return 0;
}

static struct dict_agent *dict_lookup(struct dict *d, const char *agent, uint64_t dict_id) {
  if (d->nbuckets == 0)
    return NULL;
  struct dict_agent *da = d->buckets[hash_agent_dict(agent, dict_id) & (d->nbuckets - 1)];
  while (da != NULL && (da->dict_id != dict_id || strcmp(da->id, agent) != 0))
    da = da->next;
  return da;
}

/* Forgets one dictionary of `agent` (evicted from LMDB). */
static void dict_drop(struct dict *d, const char *agent, uint64_t dict_id) {
  if (d->nbuckets == 0)
    return;
  struct dict_agent **at = &d->buckets[hash_agent_dict(agent, dict_id) & (d->nbuckets - 1)];
  for (; *at != NULL; at = &(*at)->next) {
    struct dict_agent *da = *at;
    if (da->dict_id == dict_id && strcmp(da->id, agent) == 0) {
      *at = da->next;
      dict_agent_empty(da, d);
      free(da);
      d->nagents--;
      return;
    }
  }
}

/* A new, empty entry for dictionary `dict_id` of `agent`. Returns NULL when
 * out of memory. */
static struct dict_agent *dict_add_agent(struct dict *d, const char *agent, uint64_t dict_id) {
  if (d->nagents + 1 > d->nbuckets) {
    size_t nb = d->nbuckets ? d->nbuckets * 2 : 256;
    struct dict_agent **buckets = calloc(nb, sizeof(*buckets));
    if (buckets == NULL)
      return NULL;
    for (size_t b = 0; b < d->nbuckets; b++) {
      struct dict_agent *da = d->buckets[b];
      while (da != NULL) {
        struct dict_agent *next = da->next;
        size_t h = hash_agent_dict(da->id, da->dict_id) & (nb - 1);
        da->next = buckets[h];
        buckets[h] = da;
        da = next;
      }
    }
    free(d->buckets);
    d->buckets = buckets;
    d->nbuckets = nb;
  }
  struct dict_agent *da = calloc(1, sizeof(*da));
  if (da == NULL)
    return NULL;
  snprintf(da->id, sizeof(da->id), "%s", agent);
  da->dict_id = dict_id;
  size_t h = hash_agent_dict(agent, dict_id) & (d->nbuckets - 1);
  da->next = d->buckets[h];
  d->buckets[h] = da;
  d->nagents++;
  return da;
}

/* The prefix of dictionary `dict_id` of `agent` in the dict database:
 * agent "\0" id (8 bytes, big-endian). Returns its length. */
static size_t dict_prefix(char *key, const char *agent, uint64_t dict_id) {
  size_t alen = strlen(agent);
  memcpy(key, agent, alen + 1);
  uint64_t be = __builtin_bswap64(dict_id);
  memcpy(key + alen + 1, &be, 8);
  return alen + 9;
}

/* Dictionary `dict_id` of `agent` as the batch sees it: from the cache, else
 * read from LMDB into it (the caller knows it is stored: store_agent.dicts).
 * Returns 0 and *out, or an LMDB error / ENOMEM. */
static int dict_get(struct store_batch *b, const char *agent, uint64_t dict_id,
                    struct dict_agent **out) {
  struct dict *d = &b->s->cache;
  struct dict_agent *da = dict_lookup(d, agent, dict_id);
  if (da != NULL) {
    *out = da;
    return 0;
  }
  if (d->nseries > DICT_CACHE_MAX_SERIES)
    dict_clear(d);
  if ((da = dict_add_agent(d, agent, dict_id)) == NULL)
    return ENOMEM;
  MDB_cursor *c;
  int rc = mdb_cursor_open(b->txn, b->s->dict, &c);
  if (rc != 0)
    return rc;
  char prefix[RP_ID_MAX + 9];
  size_t plen = dict_prefix(prefix, agent, dict_id);
  MDB_val k = {plen, prefix}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0) {
    Rackpulse__V1__SeriesDef *def = rackpulse__v1__series_def__unpack(NULL, v.mv_size, v.mv_data);
    if (def != NULL) {
      rc = dict_put(d, da, def);
      rackpulse__v1__series_def__free_unpacked(def, NULL);
      if (rc != 0)
        break;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    dict_clear(d); /* do not keep a partial dictionary */
    return rc;
  }
  *out = da;
  return 0;
}

/* ---- opening, growing ----------------------------------------------------- */

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
static int migrate_from_1(struct store *s, MDB_txn *txn) {
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
    if (v.mv_size == old_size) {
      _Alignas(max_align_t) unsigned char rec[RECORD_MAX] = {0};
      convert(v.mv_data, rec);
      MDB_val nv = {new_size, rec};
      if ((rc = mdb_cursor_put(c, &k, &nv, MDB_CURRENT)) != 0)
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
static int migrate_receive_times(struct store *s, MDB_txn *txn) {
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

static int open_dbs(struct store *s, char *err, size_t errlen) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return lmdb_err(rc, "store: begin", err, errlen);
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {{"meta", &s->meta},   {"offsets", &s->offsets}, {"agents", &s->agents},
             {"dict", &s->dict},   {"latest", &s->latest},   {"devices", &s->devices},
             {"racks", &s->racks}, {"stats", &s->stats},     {"retired", &s->retired}};
  for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
    rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return lmdb_err(rc, dbs[i].name, err, errlen);
    }
  }
  MDB_val k = {6, "layout"}, v;
  uint32_t layout = STORE_LAYOUT_VERSION, stored = 0;
  rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == 0 && v.mv_size == sizeof(stored))
    memcpy(&stored, v.mv_data, sizeof(stored));
  if (rc == 0 && (stored == 1 || stored == 2)) {
    if ((stored == 1 && (rc = migrate_from_1(s, txn)) != 0) ||
        (rc = migrate_receive_times(s, txn)) != 0) {
      mdb_txn_abort(txn);
      char what[64];
      snprintf(what, sizeof(what), "store: migrating the database from layout %u", stored);
      return lmdb_err(rc, what, err, errlen);
    }
    v = (MDB_val){sizeof(layout), &layout};
    rc = mdb_put(txn, s->meta, &k, &v, 0);
  } else if (rc == MDB_NOTFOUND) {
    v = (MDB_val){sizeof(layout), &layout};
    rc = mdb_put(txn, s->meta, &k, &v, 0);
  } else if (rc == 0 && stored != STORE_LAYOUT_VERSION) {
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

int store_open(const char *path, size_t map_size, struct store **out, char *err, size_t errlen) {
  struct store *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  int rc;
  if (mkdir(path, 0750) != 0 && errno != EEXIST) {
    rc = -errno;
    snprintf(err, errlen, "store %s: %s", path, strerror(errno));
    free(s);
    return rc;
  }
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  rc = pthread_rwlock_init(&s->resize_lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  if (rc != 0) {
    snprintf(err, errlen, "store %s: lock: %s", path, strerror(rc));
    free(s);
    return -rc;
  }
  if ((rc = mdb_env_create(&s->env)) != 0)
    goto fail;
  if ((rc = mdb_env_set_maxdbs(s->env, 16)) != 0 ||
      (rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
      (rc = mdb_env_set_maxreaders(s->env, 256)) != 0)
    goto fail_env;
  /* MDB_NOTLS: read transactions are not tied to threads, so the HTTP
   * server's thread pool may use them freely. MDB_WRITEMAP: a batch writes
   * its pages in the map itself instead of in malloc'd copies written out at
   * commit (a quarter less CPU per sample, bench/bench_ingest.sh); the data
   * file then has the map's size, sparse on Linux file systems. Commits stay
   * durable (msync), and a crash still loses no committed batch. */
  if ((rc = mdb_env_open(s->env, path, MDB_NOTLS | MDB_WRITEMAP, 0640)) != 0)
    goto fail_env;
  if ((rc = open_dbs(s, err, errlen)) != 0) {
    mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->resize_lock);
    free(s);
    return rc;
  }
  /* LMDB raises the map to the data's size when that is larger. */
  MDB_envinfo info;
  mdb_env_info(s->env, &info);
  s->map_size = info.me_mapsize;
  s->map_max = s->map_size;
  *out = s;
  return 0;
fail_env:
  mdb_env_close(s->env);
fail:
  snprintf(err, errlen, "store %s: %s", path, mdb_strerror(rc));
  pthread_rwlock_destroy(&s->resize_lock);
  free(s);
  return rc > 0 ? -rc : rc;
}

void store_close(struct store *s) {
  if (s == NULL)
    return;
  mdb_env_close(s->env);
  dict_free(&s->cache);
  pthread_rwlock_destroy(&s->resize_lock);
  free(s);
}

void store_set_map_max(struct store *s, size_t max_bytes) {
  s->map_max = max_bytes > s->map_size ? max_bytes : s->map_size;
}

int store_grow(struct store *s, char *err, size_t errlen) {
  if (s->batch_open) {
    snprintf(err, errlen, "store: the map cannot grow while a batch is open");
    return -EBUSY;
  }
  if (s->map_size >= s->map_max) {
    snprintf(err, errlen,
             "store: the LMDB map is full at %zu MiB, the maximum: raise "
             "store.map_size_max_mb (and store.map_size_mb to start larger)",
             s->map_size >> 20);
    return -ENOSPC;
  }
  size_t size = s->map_size > s->map_max / 2 ? s->map_max : s->map_size * 2;
  /* No transaction of this process may be open (lmdb.h): the writer has
   * none (it aborted its batch), readers are kept out by the lock. */
  pthread_rwlock_wrlock(&s->resize_lock);
  int rc = mdb_env_set_mapsize(s->env, size);
  if (rc == 0) {
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    s->grows++;
  }
  pthread_rwlock_unlock(&s->resize_lock);
  if (rc != 0)
    return lmdb_err(rc, "store: grow the map", err, errlen);
  return 0;
}

void store_map_info(struct store *s, struct store_map_info *out) {
  MDB_envinfo info;
  MDB_stat st;
  pthread_rwlock_rdlock(&s->resize_lock);
  mdb_env_info(s->env, &info);
  mdb_env_stat(s->env, &st);
  out->map_bytes = info.me_mapsize;
  out->used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
  pthread_rwlock_unlock(&s->resize_lock);
  out->max_bytes = s->map_max;
  out->grows = s->grows;
}

/* ---- writing -------------------------------------------------------------- */

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

static int put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen) {
  MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
  return mdb_put(txn, dbi, &key, &val, 0);
}

static int get_copy(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, void *out, size_t size) {
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
  if (s->batch_open) {
    snprintf(err, errlen, "store: a batch is already open");
    return -EBUSY;
  }
  struct store_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  b->s = s;
  int rc = mdb_txn_begin(s->env, NULL, 0, &b->txn);
  if (rc != 0) {
    free(b);
    return lmdb_err(rc, "store: begin batch", err, errlen);
  }
  s->batch_open = true;
  *out = b;
  return 0;
}

static void batch_free(struct store_batch *b) {
  b->s->batch_open = false;
  free(b->offsets);
  free(b);
}

/* Remembers offset + 1 as the partition's next offset; written at commit. */
static int note_offset(struct store_batch *b, const char *topic, int32_t partition,
                       int64_t offset) {
  if (strlen(topic) >= TOPIC_MAX)
    return -ENAMETOOLONG;
  for (size_t i = 0; i < b->noffsets; i++) {
    struct pending_offset *p = &b->offsets[i];
    if (p->partition == partition && strcmp(p->topic, topic) == 0) {
      p->next = offset + 1;
      return 0;
    }
  }
  if (b->noffsets == b->offsets_cap) {
    size_t cap = b->offsets_cap ? b->offsets_cap * 2 : 8;
    void *grown = realloc(b->offsets, cap * sizeof(*b->offsets));
    if (grown == NULL)
      return -ENOMEM;
    b->offsets = grown;
    b->offsets_cap = cap;
  }
  struct pending_offset *p = &b->offsets[b->noffsets++];
  snprintf(p->topic, sizeof(p->topic), "%s", topic);
  p->partition = partition;
  p->next = offset + 1;
  return 0;
}

static int put_offsets(struct store_batch *b) {
  for (size_t i = 0; i < b->noffsets; i++) {
    const struct pending_offset *p = &b->offsets[i];
    char key[TOPIC_MAX + 16], part[16];
    snprintf(part, sizeof(part), "%d", (int)p->partition);
    int klen = join_key(key, sizeof(key), p->topic, part);
    if (klen < 0)
      return klen;
    int rc = put(b->txn, b->s->offsets, key, (size_t)klen, &p->next, sizeof(p->next));
    if (rc != 0)
      return rc;
  }
  return 0;
}

int store_batch_skip(struct store_batch *b, const char *topic, int32_t partition, int64_t offset,
                     char *err, size_t errlen) {
  int rc = note_offset(b, topic, partition, offset);
  return rc ? lmdb_err(rc, "store: offset", err, errlen) : 0;
}

/* Deletes dictionary `dict_id` of `agent` from LMDB and the cache. */
static int delete_dictionary(struct store_batch *b, const char *agent, uint64_t dict_id) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(b->txn, b->s->dict, &c);
  if (rc != 0)
    return rc;
  char prefix[RP_ID_MAX + 9];
  size_t plen = dict_prefix(prefix, agent, dict_id);
  MDB_val k = {plen, prefix}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0) {
    if ((rc = mdb_cursor_del(c, 0)) != 0)
      break;
    /* After a delete the cursor already stands on the next record: MDB_NEXT
     * returns it without advancing. */
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  dict_drop(&b->s->cache, agent, dict_id);
  return 0;
}

/* The position of dictionary `dict_id` in ag->dicts, or -1. */
static int dict_slot(const struct store_agent *ag, uint64_t dict_id) {
  for (int i = 0; i < STORE_AGENT_DICTS; i++)
    if (ag->dicts[i] == dict_id)
      return i;
  return -1;
}

/* Stores the frame's dictionary under `dict_id`, in LMDB and in the cache,
 * as the agent's most recent one; the least recent of STORE_AGENT_DICTS is
 * evicted. A dictionary named by its content hash that is already stored is
 * not written again (same hash, same content); one named by a legacy
 * version is replaced (a restarted old agent reuses versions). */
static int store_dictionary(struct store_batch *b, const rp_frame *f, uint64_t dict_id,
                            struct store_agent *ag) {
  int rc, at = dict_slot(ag, dict_id);
  if (at >= 0 && f->dictionary_hash != 0) {
    memmove(&ag->dicts[1], &ag->dicts[0], (size_t)at * sizeof(ag->dicts[0]));
    ag->dicts[0] = dict_id;
    return 0;
  }
  if (at < 0)
    at = STORE_AGENT_DICTS - 1; /* the least recent (or an empty slot) */
  if (ag->dicts[at] != 0 && (rc = delete_dictionary(b, f->agent_id, ag->dicts[at])) != 0)
    return rc;
  memmove(&ag->dicts[1], &ag->dicts[0], (size_t)at * sizeof(ag->dicts[0]));
  ag->dicts[0] = dict_id;
  struct dict *d = &b->s->cache;
  struct dict_agent *da = dict_lookup(d, f->agent_id, dict_id);
  if (da == NULL && (da = dict_add_agent(d, f->agent_id, dict_id)) == NULL)
    return ENOMEM;
  dict_agent_empty(da, d);
  char key[RP_ID_MAX + 9 + 4];
  size_t plen = dict_prefix(key, f->agent_id, dict_id);
  for (size_t i = 0; i < f->n_dictionary; i++) {
    uint8_t small[2048], *buf = small;
    const Rackpulse__V1__SeriesDef *def = f->dictionary[i];
    size_t size = rackpulse__v1__series_def__get_packed_size(def);
    if (size > sizeof(small) && (buf = malloc(size)) == NULL)
      return ENOMEM;
    rackpulse__v1__series_def__pack(def, buf);
    uint32_t id_be = __builtin_bswap32(def->id); /* big-endian: keys sort by id */
    memcpy(key + plen, &id_be, 4);
    rc = put(b->txn, b->s->dict, key, plen + 4, buf, size);
    if (buf != small)
      free(buf);
    if (rc == 0)
      rc = dict_put(d, da, def);
    if (rc != 0)
      return rc;
  }
  ag->dict_version = f->dictionary_version;
  return 0;
}

/* Writes a latest value under key unless the stored one is newer: one
 * cursor lookup, then an in-place overwrite of the same-sized record. */
static int put_latest(struct store_batch *b, const char *key, size_t klen,
                      const struct store_latest *l) {
  int rc;
  if (b->latest == NULL && (rc = mdb_cursor_open(b->txn, b->s->latest, &b->latest)) != 0) {
    b->latest = NULL;
    return rc;
  }
  MDB_val k = {klen, (void *)key}, v;
  rc = mdb_cursor_get(b->latest, &k, &v, MDB_SET_KEY);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  unsigned flags = 0;
  if (rc == 0 && v.mv_size == sizeof(*l)) {
    int64_t old_ts;
    memcpy(&old_ts, (const char *)v.mv_data + offsetof(struct store_latest, ts_ms), sizeof(old_ts));
    if (old_ts > l->ts_ms)
      return 0; /* an older sample never replaces a newer one */
    flags = MDB_CURRENT;
  }
  k = (MDB_val){klen, (void *)key};
  v = (MDB_val){sizeof(*l), (void *)l};
  return mdb_cursor_put(b->latest, &k, &v, flags);
}

/* key = rack "\0" series key; returns its length, 0 when it does not fit. */
static size_t latest_key(char *key, size_t rack_len, const struct dict_series *d) {
  if (rack_len + 1 + d->key_len > KEY_MAX)
    return 0; /* cannot happen: frame validation bounds the series key */
  memcpy(key + rack_len + 1, d->key, d->key_len);
  return rack_len + 1 + d->key_len;
}

static int apply_sample(struct store_batch *b, char *key, size_t rack_len,
                        const struct dict_series *d, int64_t scaled, int64_t ts_ms) {
  size_t klen = latest_key(key, rack_len, d);
  if (klen == 0)
    return 0;
  struct store_latest l = {.value = rp_value_unscale(scaled, d->decimals),
                           .ts_ms = ts_ms,
                           .status = RACKPULSE__V1__READING_STATUS__READING_OK,
                           .decimals = d->decimals,
                           .received_ms = b->received_ms};
  memcpy(l.unit, d->unit, sizeof(l.unit));
  return put_latest(b, key, klen, &l);
}

/* Applies one sample block in the key order of its series: consecutive
 * keys mostly share a leaf page, and LMDB's cursor then finds the next one
 * on that page without descending from the root. The order is a counting
 * sort on the dictionary's ranks, used when the block holds at least a
 * quarter of the dictionary; a block naming a series twice keeps its own
 * order, so that its last value still wins. */
static int apply_block(struct store_batch *b, char *key, size_t rack_len, struct dict_agent *da,
                       const Rackpulse__V1__SampleBlock *blk, struct store_agent *ag) {
  struct dict *d = &b->s->cache;
  size_t unknown = 0;
  bool sorted = da->n > 0 && blk->n_series > 1 && blk->n_series * 4 >= da->n && dict_rank(da) == 0;
  if (sorted && d->order_cap < da->n) {
    int32_t *order = realloc(d->order, da->n * sizeof(*order));
    if (order == NULL) {
      sorted = false;
    } else {
      d->order = order;
      d->order_cap = da->n;
    }
  }
  if (sorted) {
    memset(d->order, 0xff, da->n * sizeof(*d->order)); /* -1: no sample */
    for (size_t j = 0; j < blk->n_series && sorted; j++) {
      const struct dict_series *e = dict_find(da, blk->series[j]);
      if (e == NULL)
        unknown++;
      else if (d->order[e->rank] >= 0)
        sorted = false; /* a series twice */
      else
        d->order[e->rank] = (int32_t)j;
    }
  }
  if (sorted) {
    for (size_t k = 0; k < da->n; k++) {
      if (d->order[k] < 0)
        continue;
      size_t j = (size_t)d->order[k];
      int rc =
          apply_sample(b, key, rack_len, dict_find(da, blk->series[j]), blk->scaled[j], blk->ts_ms);
      if (rc != 0)
        return rc;
    }
  } else {
    unknown = 0;
    for (size_t j = 0; j < blk->n_series; j++) {
      const struct dict_series *e = dict_find(da, blk->series[j]);
      if (e == NULL) {
        unknown++;
        continue;
      }
      int rc = apply_sample(b, key, rack_len, e, blk->scaled[j], blk->ts_ms);
      if (rc != 0)
        return rc;
    }
  }
  ag->undecodable += unknown;
  return 0;
}

static int apply_samples(struct store_batch *b, const rp_frame *f, struct dict_agent *da,
                         struct store_agent *ag) {
  char key[KEY_MAX];
  size_t rack_len = strlen(f->rack_id);
  memcpy(key, f->rack_id, rack_len + 1);
  for (size_t i = 0; i < f->n_samples; i++) {
    int rc = apply_block(b, key, rack_len, da, f->samples[i], ag);
    if (rc != 0)
      return rc;
  }
  for (size_t i = 0; i < f->n_statuses; i++) {
    const Rackpulse__V1__SeriesStatus *st = f->statuses[i];
    const struct dict_series *d = dict_find(da, st->series);
    size_t klen;
    if (d == NULL || (klen = latest_key(key, rack_len, d)) == 0) {
      ag->undecodable++;
      continue;
    }
    struct store_latest l = {.value = 0,
                             .ts_ms = f->ts_ms,
                             .status = (int32_t)st->status,
                             .decimals = d->decimals,
                             .received_ms = b->received_ms};
    memcpy(l.unit, d->unit, sizeof(l.unit));
    /* Free text, any bytes: what the API renders must be UTF-8, and a cut
     * in the middle of a character made the series vanish from it. */
    rp_utf8_copy(l.detail, sizeof(l.detail), st->detail);
    int rc = put_latest(b, key, klen, &l);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int apply_stats(struct store_batch *b, const rp_frame *f, const struct dict_agent *da,
                       struct store_agent *ag) {
  for (size_t i = 0; i < f->n_stats; i++) {
    const Rackpulse__V1__WindowStats *w = f->stats[i];
    const struct dict_series *d = dict_find(da, w->series);
    if (d == NULL) {
      ag->undecodable++;
      continue;
    }
    char wkey[RP_SERIES_KEY_MAX + 16], key[KEY_MAX];
    snprintf(wkey, sizeof(wkey), "%s|%u", d->key, w->window_s);
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
                             .ts_ms = f->ts_ms,
                             .newest_ms = w->newest_ms,
                             .received_ms = b->received_ms};
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
                             .reported_ms = f->ts_ms,
                             .received_ms = b->received_ms};
    snprintf(d.agent, sizeof(d.agent), "%s", f->agent_id);
    rp_utf8_copy(d.kind, sizeof(d.kind), ds->kind); /* as l.detail above */
    rp_utf8_copy(d.last_error, sizeof(d.last_error), ds->last_error);
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

/* Decides whether frame (agent, incarnation, seq) is new and moves the
 * agent's marks (see store.h, Identity). Returns true to apply it, with
 * *current true when it belongs to the agent's current incarnation. */
static bool accept_seq(struct store_agent *ag, bool known, const rp_frame *f, bool *current,
                       unsigned *events) {
  *current = true;
  if (!known) {
    ag->incarnation = f->incarnation;
    ag->incarnation_ms = f->ts_ms;
    ag->incarnations = 1;
    ag->last_seq = f->seq;
    return true;
  }
  if (f->incarnation == ag->incarnation) {
    if (f->seq <= ag->last_seq)
      return false;
    if (f->seq > ag->last_seq + 1)
      ag->gaps += f->seq - ag->last_seq - 1;
    ag->last_seq = f->seq;
    return true;
  }
  *current = false;
  for (uint32_t i = 0; i < ag->nprevious && i < STORE_AGENT_INCARNATIONS - 1; i++) {
    struct store_incarnation *p = &ag->previous[i];
    if (p->id != f->incarnation)
      continue;
    /* A late frame of an earlier incarnation: new for it, or a duplicate. */
    if (f->seq <= p->last_seq)
      return false;
    p->last_seq = f->seq;
    return true;
  }
  /* An incarnation never seen: the agent restarted with a new state. Its
   * first frame is applied now, whatever its seq; the old marks move down. */
  memmove(&ag->previous[1], &ag->previous[0],
          (STORE_AGENT_INCARNATIONS - 2) * sizeof(ag->previous[0]));
  ag->previous[0] = (struct store_incarnation){ag->incarnation, ag->last_seq};
  if (ag->nprevious < STORE_AGENT_INCARNATIONS - 1)
    ag->nprevious++;
  ag->incarnation = f->incarnation;
  ag->incarnation_ms = f->ts_ms;
  ag->incarnations++;
  ag->last_seq = f->seq;
  *current = true;
  *events |= STORE_EV_NEW_INCARNATION;
  return true;
}

/* Applies a new frame's dictionary, samples, statistics and devices. */
static int apply_frame(struct store_batch *b, const rp_frame *f, struct store_agent *ag,
                       unsigned *events, char *err, size_t errlen) {
  int rc;
  uint64_t dict_id =
      f->dictionary_hash != 0 ? f->dictionary_hash : rp_dict_legacy_id(f->dictionary_version);
  if (f->n_dictionary > 0) {
    bool valid = true;
    if (f->dictionary_hash != 0) {
      uint64_t h;
      if ((rc = rp_frame_dictionary_hash(f, &h)) != 0)
        return lmdb_err(rc, "store: dictionary hash", err, errlen);
      valid = h == f->dictionary_hash;
    }
    if (!valid) {
      ag->bad_dict_frames++;
      *events |= STORE_EV_BAD_DICTIONARY;
    } else if ((rc = store_dictionary(b, f, dict_id, ag)) != 0) {
      return lmdb_err(rc, "store: dictionary", err, errlen);
    }
  }
  if (dict_slot(ag, dict_id) >= 0) {
    struct dict_agent *da;
    if ((rc = dict_get(b, f->agent_id, dict_id, &da)) != 0)
      return lmdb_err(rc, "store: dictionary", err, errlen);
    if ((rc = apply_samples(b, f, da, ag)) != 0)
      return lmdb_err(rc, "store: samples", err, errlen);
    if ((rc = apply_stats(b, f, da, ag)) != 0)
      return lmdb_err(rc, "store: window statistics", err, errlen);
    ag->last_decoded_ms = f->ts_ms;
  } else if (f->n_samples > 0 || f->n_statuses > 0 || f->n_stats > 0) {
    /* Never decoded with another dictionary: skipped and counted. */
    for (size_t i = 0; i < f->n_samples; i++)
      ag->undecodable += f->samples[i]->n_series;
    ag->unknown_dict_frames++;
    ag->last_unknown_dict = dict_id;
    ag->last_unknown_dict_ms = f->ts_ms;
    *events |= STORE_EV_UNKNOWN_DICTIONARY;
  }
  if ((rc = apply_devices(b, f)) != 0)
    return lmdb_err(rc, "store: devices", err, errlen);
  struct store_rack r = {0};
  get_copy(b->txn, b->s->racks, f->rack_id, strlen(f->rack_id), &r, sizeof(r));
  if (f->ts_ms >= r.last_frame_ms) {
    r.last_frame_ms = f->ts_ms;
    r.received_ms = b->received_ms;
    r.last_seq = f->seq;
    snprintf(r.agent, sizeof(r.agent), "%s", f->agent_id);
    rc = put(b->txn, b->s->racks, f->rack_id, strlen(f->rack_id), &r, sizeof(r));
    if (rc != 0)
      return lmdb_err(rc, "store: rack", err, errlen);
  }
  return 0;
}

static int batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                       int32_t partition, int64_t offset, enum store_outcome *outcome,
                       unsigned *events, char *err, size_t errlen) {
  struct store_agent ag = {0};
  size_t alen = strlen(f->agent_id);
  *events = 0;
  b->received_ms = rp_now_ms();
  int rc = get_copy(b->txn, b->s->agents, f->agent_id, alen, &ag, sizeof(ag));
  if (rc != 0 && rc != MDB_NOTFOUND)
    return lmdb_err(rc, "store: agent", err, errlen);
  bool current;
  if (!accept_seq(&ag, rc == 0, f, &current, events)) {
    ag.duplicates++;
    *outcome = STORE_DUPLICATE;
  } else {
    ag.frames++;
    if (current)
      ag.last_ms = f->ts_ms;
    snprintf(ag.rack, sizeof(ag.rack), "%s", f->rack_id);
    if ((rc = apply_frame(b, f, &ag, events, err, errlen)) != 0)
      return rc;
    *outcome = STORE_APPLIED;
  }
  if ((rc = put(b->txn, b->s->agents, f->agent_id, alen, &ag, sizeof(ag))) != 0)
    return lmdb_err(rc, "store: agent", err, errlen);
  return store_batch_skip(b, topic, partition, offset, err, errlen);
}

int store_batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                      int32_t partition, int64_t offset, enum store_outcome *outcome, char *err,
                      size_t errlen) {
  unsigned events;
  return batch_apply(b, f, topic, partition, offset, outcome, &events, err, errlen);
}

int store_batch_commit(struct store_batch *b, char *err, size_t errlen) {
  int rc = put_offsets(b);
  if (rc != 0) {
    store_batch_abort(b);
    return lmdb_err(rc, "store: offsets", err, errlen);
  }
  /* mdb_txn_commit() closes the batch's cursors; on failure it aborts. */
  rc = mdb_txn_commit(b->txn);
  if (rc != 0)
    dict_clear(&b->s->cache);
  batch_free(b);
  return rc ? lmdb_err(rc, "store: commit", err, errlen) : 0;
}

void store_batch_abort(struct store_batch *b) {
  if (b == NULL)
    return;
  mdb_txn_abort(b->txn);
  /* The cache may hold dictionaries this batch wrote. */
  dict_clear(&b->s->cache);
  batch_free(b);
}

/* One attempt at a whole batch. */
static int apply_once(struct store *s, struct store_msg *msgs, size_t n, char *err, size_t errlen) {
  struct store_batch *b;
  int rc = store_batch_begin(s, &b, err, errlen);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct store_msg *m = &msgs[i];
    if (m->frame == NULL)
      rc = store_batch_skip(b, m->topic, m->partition, m->offset, err, errlen);
    else
      rc = batch_apply(b, m->frame, m->topic, m->partition, m->offset, &m->outcome, &m->events, err,
                       errlen);
  }
  if (rc != 0) {
    store_batch_abort(b);
    return rc;
  }
  return store_batch_commit(b, err, errlen);
}

int store_apply(struct store *s, struct store_msg *msgs, size_t n, char *err, size_t errlen) {
  for (;;) {
    int rc = apply_once(s, msgs, n, err, errlen);
    if (rc != -ENOSPC)
      return rc;
    if ((rc = store_grow(s, err, errlen)) != 0)
      return rc;
  }
}

/* Whether `rest` (a key after "rack\0") belongs to `device`: a series key
 * "name{...}@device", with "|window" after it when `windowed`, or the device
 * itself when `plain`. */
static bool key_of_device(const char *rest, size_t len, const char *device, bool windowed,
                          bool plain) {
  size_t dlen = strlen(device);
  if (plain)
    return len == dlen && memcmp(rest, device, dlen) == 0;
  const char *end = rest + len;
  if (windowed) {
    while (end > rest && end[-1] != '|')
      end--;
    if (end == rest)
      return false;
    end--; /* at the '|' */
  }
  size_t slen = (size_t)(end - rest);
  return slen > dlen + 1 && rest[slen - dlen - 1] == '@' &&
         memcmp(rest + slen - dlen, device, dlen) == 0;
}

/* Deletes the records of `rack` in dbi that belong to `device`. */
static int delete_device_records(MDB_txn *txn, MDB_dbi dbi, const char *rack, const char *device,
                                 bool windowed, bool plain, size_t *removed) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, dbi, &c);
  if (rc != 0)
    return rc;
  size_t plen = strlen(rack);
  MDB_val k = {plen + 1, (void *)rack}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, rack, plen + 1) == 0) {
    const char *rest = (const char *)k.mv_data + plen + 1;
    if (key_of_device(rest, k.mv_size - plen - 1, device, windowed, plain)) {
      if ((rc = mdb_cursor_del(c, 0)) != 0)
        break;
      (*removed)++;
    }
    /* After a delete the cursor already stands on the next record: MDB_NEXT
     * returns it without advancing. */
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_retire_device(struct store *s, const char *rack, const char *device, const char *owner,
                        int64_t now_ms, size_t *removed, char *err, size_t errlen) {
  *removed = 0;
  if (rack[0] == '\0' || device[0] == '\0' || strlen(rack) > RP_ID_MAX ||
      strlen(device) > RP_ID_MAX) {
    snprintf(err, errlen, "store: retire: rack and device must be 1..%d bytes", RP_ID_MAX);
    return -EINVAL;
  }
  MDB_txn *txn;
  pthread_rwlock_rdlock(&s->resize_lock); /* no map resize under an open transaction */
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0) {
    pthread_rwlock_unlock(&s->resize_lock);
    return lmdb_err(rc, "store: retire: begin", err, errlen);
  }
  if ((rc = delete_device_records(txn, s->latest, rack, device, false, false, removed)) != 0 ||
      (rc = delete_device_records(txn, s->stats, rack, device, true, false, removed)) != 0 ||
      (rc = delete_device_records(txn, s->devices, rack, device, false, true, removed)) != 0) {
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
    *removed = 0;
    return lmdb_err(rc, "store: retire", err, errlen);
  }
  if (*removed > 0) {
    struct store_retired t = {.retired_ms = now_ms};
    snprintf(t.owner, sizeof(t.owner), "%s", owner);
    char key[KEY_MAX];
    int klen = join_key(key, sizeof(key), rack, device);
    rc = klen < 0 ? klen : put(txn, s->retired, key, (size_t)klen, &t, sizeof(t));
    if (rc != 0) {
      mdb_txn_abort(txn);
      pthread_rwlock_unlock(&s->resize_lock);
      *removed = 0;
      return lmdb_err(rc, "store: retire", err, errlen);
    }
  }
  rc = mdb_txn_commit(txn);
  pthread_rwlock_unlock(&s->resize_lock);
  if (rc != 0) {
    *removed = 0;
    return lmdb_err(rc, "store: retire: commit", err, errlen);
  }
  return 0;
}

int store_get_offset(struct store *s, const char *topic, int32_t partition, int64_t *next) {
  char key[300], part[16];
  snprintf(part, sizeof(part), "%d", (int)partition);
  int klen = join_key(key, sizeof(key), topic, part);
  if (klen < 0)
    return klen;
  MDB_txn *txn;
  pthread_rwlock_rdlock(&s->resize_lock);
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0) {
    pthread_rwlock_unlock(&s->resize_lock);
    return -EIO;
  }
  int rc = get_copy(txn, s->offsets, key, (size_t)klen, next, sizeof(*next));
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
  int rc = get_copy(r->txn, r->s->racks, rack, strlen(rack), out, sizeof(*out));
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

int store_read_agent(struct store_read *r, const char *agent, struct store_agent *out) {
  int rc = get_copy(r->txn, r->s->agents, agent, strlen(agent), out, sizeof(*out));
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

/* Iterates the records whose key starts with prefix "\0"; fn gets the rest
 * of the key. */
static int each_with_prefix(struct store_read *r, MDB_dbi dbi, const char *prefix,
                            size_t value_size,
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
                           void (*fn)(void *ctx, const char *device, const struct store_device *),
                           void *ctx) {
  return each_with_prefix(r, r->s->devices, rack, sizeof(struct store_device),
                          (void (*)(void *, const char *, const void *))fn, ctx);
}

int store_read_each_retired(struct store_read *r, const char *rack,
                            void (*fn)(void *ctx, const char *device, const struct store_retired *),
                            void *ctx) {
  return each_with_prefix(r, r->s->retired, rack, sizeof(struct store_retired),
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
