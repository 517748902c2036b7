/* The store's insides, shared by its pieces (not part of the contract, which
 * is store.h):
 *   store.c          opening, the map and its growth, batches and their
 *                    offsets, retiring devices; the LMDB helpers below
 *   store_dict.c     the in-memory dictionary cache (struct dict)
 *   store_migrate.c  converting layouts 1 and 2 to the current one
 *   store_apply.c    applying one frame in a batch (the hot path)
 *   store_read.c     read transactions and what the readers see
 * Only the aggregator's store includes this header. */
#ifndef RP_AGG_STORE_INTERNAL_H
#define RP_AGG_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

#define KEY_MAX 500     /* LMDB's default maximum key size is 511 bytes */
#define RECORD_MAX 1024 /* the largest fixed-size record struct, with room */
#define TOPIC_MAX 256   /* Kafka topic names have at most 249 characters */

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
  size_t reserved; /* bytes of the data file known to be allocated on disk */
  bool disk_full;  /* the last reservation failed (store_apply does not grow then) */
  bool batch_open;
  int64_t clock_ms;        /* store_set_clock: simulated receive time, 0: wall clock */
  unsigned migrated_from;  /* the layout store_open() migrated from, 0: none */
  size_t migrated_records; /* latest values it rewrote */
  struct dict cache;
  uint64_t dict_series_written; /* series records written by store_dictionary (tests) */
};

struct pending_offset {
  char topic[TOPIC_MAX];
  int32_t partition;
  int64_t next;
};

struct store_batch {
  struct store *s;
  MDB_txn *txn;
  MDB_cursor *latest;      /* opened on first use */
  int64_t received_ms;     /* the aggregator's clock when the current frame is applied */
  int64_t received_set_ms; /* store_batch_set_received(): used instead of the clock */
  bool dict_left_out;      /* the frame applied came without its stored dictionary */
  /* Next offsets, written once per partition at commit. */
  struct pending_offset *offsets;
  size_t noffsets, offsets_cap;
};

/* ---- latest values as stored (layout 4) ----------------------------------- */

/* The fixed part of a latest value in the latest database; the detail's
 * bytes (no NUL) follow it only when the status has one, so the usual record
 * is 56 bytes instead of struct store_latest's 144 (the store, and what a
 * frame rewrites, about a third smaller: bench/bench_ingest.sh). Readers
 * see struct store_latest. */
struct latest_rec {
  double value;
  int64_t ts_ms;
  int64_t received_ms;
  int32_t status;
  int32_t decimals;
  char unit[sizeof(((struct store_latest *)0)->unit)];
};
#define LATEST_DETAIL_MAX (sizeof(((struct store_latest *)0)->detail) - 1)
#define LATEST_REC_MAX (sizeof(struct latest_rec) + LATEST_DETAIL_MAX)

/* Packs l into out (LATEST_REC_MAX bytes); returns the record's size. */
static inline size_t latest_pack(const struct store_latest *l, unsigned char *out) {
  struct latest_rec r = {.value = l->value,
                         .ts_ms = l->ts_ms,
                         .received_ms = l->received_ms,
                         .status = l->status,
                         .decimals = l->decimals};
  memcpy(r.unit, l->unit, sizeof(r.unit));
  memcpy(out, &r, sizeof(r));
  size_t n = strnlen(l->detail, LATEST_DETAIL_MAX);
  memcpy(out + sizeof(r), l->detail, n);
  return sizeof(r) + n;
}

/* Unpacks a stored record of `size` bytes into out. Returns false when the
 * size is not one of a latest value. */
static inline bool latest_unpack(const void *rec, size_t size, struct store_latest *out) {
  struct latest_rec r;
  if (size < sizeof(r) || size > LATEST_REC_MAX)
    return false;
  memcpy(&r, rec, sizeof(r)); /* LMDB values need not be aligned */
  memset(out, 0, sizeof(*out));
  out->value = r.value;
  out->ts_ms = r.ts_ms;
  out->received_ms = r.received_ms;
  out->status = r.status;
  out->decimals = r.decimals;
  memcpy(out->unit, r.unit, sizeof(out->unit));
  out->unit[sizeof(out->unit) - 1] = '\0';
  memcpy(out->detail, (const char *)rec + sizeof(r), size - sizeof(r));
  return true;
}

/* ---- LMDB helpers (store.c) ----------------------------------------------- */

/* Writes "what: why" for rc (an LMDB code or a negative errno) to err and
 * returns a negative errno: -ENOSPC for a full map, -EIO for other LMDB
 * codes, rc itself when it is one. */
int store__lmdb_err(int rc, const char *what, char *err, size_t errlen);
/* Joins a and b with a NUL into key; returns the length or -ENAMETOOLONG. */
int store__join_key(char *key, size_t len, const char *a, const char *b);
/* mdb_put() of one record. Returns 0 or an LMDB error. */
int store__put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen);
/* Copies the record of key k, which must be `size` bytes, to out. Returns 0,
 * MDB_NOTFOUND, MDB_CORRUPTED (another size) or an LMDB error. */
int store__get_copy(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, void *out, size_t size);

/* ---- the dictionary cache (store_dict.c) ---------------------------------- */

/* Empties one agent's dictionary, keeping its entry. */
void dict_agent_empty(struct dict_agent *da, struct dict *d);
/* Drops every cached dictionary (after an abort: it may hold uncommitted
 * ones). */
void dict_clear(struct dict *d);
/* dict_clear() and frees the tables (at close). */
void dict_free(struct dict *d);
/* Numbers the agent's series in key order. Returns 0 or ENOMEM. */
int dict_rank(struct dict_agent *da);
/* Adds (or replaces) a series in the agent's table. Returns 0 or ENOMEM. */
int dict_put(struct dict *d, struct dict_agent *da, const Rackpulse__V1__SeriesDef *def);
/* Whether the frame's dictionary holds exactly the series of da (same ids,
 * keys, units and decimals). */
bool dict_same(const struct dict_agent *da, const rp_frame *f);
/* The cached dictionary `dict_id` of `agent`, or NULL. */
struct dict_agent *dict_lookup(struct dict *d, const char *agent, uint64_t dict_id);
/* Forgets one dictionary of `agent` (evicted from LMDB). */
void dict_drop(struct dict *d, const char *agent, uint64_t dict_id);
/* A new, empty entry for dictionary `dict_id` of `agent`. Returns NULL when
 * out of memory. */
struct dict_agent *dict_add_agent(struct dict *d, const char *agent, uint64_t dict_id);
/* The prefix of dictionary `dict_id` of `agent` in the dict database:
 * agent "\0" id (8 bytes, big-endian). Returns its length. */
size_t dict_prefix(char *key, const char *agent, uint64_t dict_id);
/* Calls fn for every series record of dictionary `dict_id` of `agent` in
 * the batch's dict database, in key order, with cursor c standing on it
 * (fn may delete it: the walk goes on with the next). Returns 0, fn's
 * nonzero result (which stops the walk), or an LMDB error. */
int dict_each_record(struct store_batch *b, const char *agent, uint64_t dict_id,
                     int (*fn)(void *ctx, MDB_cursor *c, const MDB_val *v), void *ctx);
/* Dictionary `dict_id` of `agent` as the batch sees it: from the cache, else
 * read from LMDB into it (the caller knows it is stored: store_agent.dicts).
 * Returns 0 and *out, or an LMDB error / ENOMEM. */
int dict_get(struct store_batch *b, const char *agent, uint64_t dict_id, struct dict_agent **out);

/* The series `id` of a dictionary, or NULL. Inline: once per sample. */
static inline size_t hash_id(uint32_t id) { return (size_t)id * 2654435761u; }

static inline struct dict_series *dict_find(const struct dict_agent *da, uint32_t id) {
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

/* ---- layout migration (store_migrate.c), inside open_dbs()'s transaction -- */

/* Layout 1 -> 2. Returns 0 or an LMDB error / ENOMEM. */
int store__migrate_from_1(struct store *s, MDB_txn *txn);
/* Layout 2 -> 3 (receive times). Returns 0 or an LMDB error. */
int store__migrate_receive_times(struct store *s, MDB_txn *txn);
/* Layout 3 -> 4 (compact latest values, struct latest_rec); *n: records
 * rewritten. Returns 0 or an LMDB error. */
int store__migrate_latest_compact(struct store *s, MDB_txn *txn, size_t *n);

/* ---- applying (store_apply.c) --------------------------------------------- */

/* Applies frame f (read at topic/partition/offset) in batch b: de-duplicates
 * it, applies it when new, updates its agent and notes the offset.
 * *outcome and *events (STORE_EV_*) say what happened. Returns 0 or a
 * negative errno with a message in err (-ENOSPC: the map is full). */
int store__batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                       int32_t partition, int64_t offset, enum store_outcome *outcome,
                       unsigned *events, char *err, size_t errlen);
/* Applies message m of store_apply() in batch b: skipped when it did not
 * decode; a frame decoded without its dictionary (m->raw) applied as it is
 * when the agent's record holds that dictionary, else decoded whole again.
 * Sets m->outcome and m->events, or m->frame to NULL when the message does
 * not decode whole. Returns as store__batch_apply(). */
int store__apply_msg(struct store_batch *b, struct store_msg *m, char *err, size_t errlen);

#endif
