/* The aggregator's ledger (see ledger.h): reservations and flags in one
 * LMDB environment, the audit log in another, so that no number of gate
 * decisions can take the space flags and reservations need. The audit log
 * is a bounded ring: past its entry cap, or when its map is full, the
 * oldest decisions (by time, over all racks) make room, counted. */
#include "ledger.h"
#include "ledger_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rackpulse/log.h"

/* Why this thread's last change was refused (rp_ledger_write_error). */
static _Thread_local char refused[512];

/* Commits txn once the change sink has accepted c (see
 * rp_ledger_set_change_sink): a refused change is aborted, so the ledger
 * stays as it was. Returns 0, -EREMOTEIO (refused) or -EIO. */
int rp_ledger_commit_change(struct rp_ledger *l, MDB_txn *txn, const struct rp_ledger_change *c) {
  refused[0] = '\0';
  if (c != NULL && c->rack != NULL && l->change != NULL &&
      l->change(l->change_ctx, c->rack, c->kind, c->id, c->value, refused, sizeof(refused)) != 0) {
    mdb_txn_abort(txn);
    return -EREMOTEIO;
  }
  return mdb_txn_commit(txn) == 0 ? 0 : -EIO;
}

const char *rp_ledger_write_error(int rc) {
  return rc == -EREMOTEIO && refused[0] ? refused : "ledger write failed";
}

static void *audit_writer(void *arg);

static int migrate_audit(struct rp_ledger *l);

/* Opens (creating) an environment at `dir` with `maxdbs` databases. */
static int env_open(const char *dir, size_t map_size, unsigned maxdbs, MDB_env **out, char *err,
                    size_t errlen) {
  int rc;
  if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
    rc = errno;
    snprintf(err, errlen, "ledger %s: %s", dir, strerror(rc));
    return -rc;
  }
  if ((rc = mdb_env_create(out)) != 0) {
    snprintf(err, errlen, "ledger %s: %s", dir, mdb_strerror(rc));
    return rc > 0 ? -EIO : rc;
  }
  if ((rc = mdb_env_set_maxdbs(*out, maxdbs)) != 0 ||
      (rc = mdb_env_set_mapsize(*out, map_size)) != 0 ||
      (rc = mdb_env_set_maxreaders(*out, 256)) != 0 ||
      (rc = mdb_env_open(*out, dir, MDB_NOTLS, 0640)) != 0) {
    mdb_env_close(*out);
    *out = NULL;
    snprintf(err, errlen, "ledger %s: %s", dir, mdb_strerror(rc));
    return rc > 0 ? -EIO : rc;
  }
  return 0;
}

static int open_dbis(MDB_env *env, const char *a, MDB_dbi *da, const char *b, MDB_dbi *db) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc != 0)
    return rc;
  if ((rc = mdb_dbi_open(txn, a, MDB_CREATE, da)) != 0 ||
      (b != NULL && (rc = mdb_dbi_open(txn, b, MDB_CREATE, db)) != 0)) {
    mdb_txn_abort(txn);
    return rc;
  }
  return mdb_txn_commit(txn);
}

int rp_ledger_open(const char *dir, const struct rp_ledger_limits *lim, struct rp_ledger **out,
                   char *err, size_t errlen) {
  struct rp_ledger *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return -ENOMEM;
  l->lim = *lim;
  if (l->lim.audit_map_size == 0)
    l->lim.audit_map_size = lim->map_size;
  l->lim.audit_queue_max = lim->audit_queue_max ? lim->audit_queue_max : AUDIT_QUEUE_MAX;
  char audit_dir[600];
  snprintf(audit_dir, sizeof(audit_dir), "%s/audit", dir);
  int rc = env_open(dir, lim->map_size, 6, &l->env, err, errlen);
  if (rc == 0)
    rc = env_open(audit_dir, l->lim.audit_map_size, 4, &l->audit_env, err, errlen);
  if (rc != 0)
    goto fail;
  if ((rc = open_dbis(l->env, "reservations", &l->reservations, "flags", &l->flags)) != 0 ||
      (rc = open_dbis(l->env, "retired", &l->retired, NULL, NULL)) != 0 ||
      (rc = open_dbis(l->audit_env, "audit", &l->audit, "audit_time", &l->audit_time)) != 0) {
    snprintf(err, errlen, "ledger %s: %s", dir, mdb_strerror(rc));
    rc = rc > 0 ? -EIO : rc;
    goto fail;
  }
  if ((rc = migrate_audit(l)) != 0) {
    snprintf(err, errlen, "ledger %s: moving the audit log to %s: %s", dir, audit_dir,
             mdb_strerror(rc));
    rc = rc > 0 ? -EIO : rc;
    goto fail;
  }
  if ((rc = rp_ledger_chain_open(l)) != 0) {
    snprintf(err, errlen, "ledger %s: the audit log's hash chain: %s", audit_dir, mdb_strerror(rc));
    rc = rc > 0 ? -EIO : rc;
    goto fail;
  }
  l->queue = calloc(l->lim.audit_queue_max, sizeof(*l->queue));
  if (l->queue == NULL) {
    rc = -ENOMEM;
    snprintf(err, errlen, "ledger %s: out of memory", dir);
    goto fail;
  }
  pthread_mutex_init(&l->lock, NULL);
  pthread_mutex_init(&l->res_lock, NULL);
  pthread_mutex_init(&l->chain_lock, NULL);
  pthread_cond_init(&l->wake, NULL);
  pthread_cond_init(&l->room, NULL);
  if (pthread_create(&l->writer, NULL, audit_writer, l) != 0) {
    pthread_mutex_destroy(&l->lock);
    pthread_mutex_destroy(&l->res_lock);
    pthread_mutex_destroy(&l->chain_lock);
    pthread_cond_destroy(&l->wake);
    pthread_cond_destroy(&l->room);
    rc = -EAGAIN;
    snprintf(err, errlen, "ledger %s: cannot start the audit writer", dir);
    goto fail;
  }
  *out = l;
  return 0;
fail:
  free(l->queue);
  if (l->audit_env != NULL)
    mdb_env_close(l->audit_env);
  if (l->env != NULL)
    mdb_env_close(l->env);
  free(l);
  return rc;
}

void rp_ledger_close(struct rp_ledger *l) {
  if (l == NULL)
    return;
  pthread_mutex_lock(&l->lock);
  l->stop = true;
  pthread_cond_signal(&l->wake);
  pthread_mutex_unlock(&l->lock);
  pthread_join(l->writer, NULL);
  rp_ledger_audit_flush(l);
  pthread_mutex_destroy(&l->lock);
  pthread_mutex_destroy(&l->res_lock);
  pthread_mutex_destroy(&l->chain_lock);
  pthread_cond_destroy(&l->wake);
  pthread_cond_destroy(&l->room);
  free(l->queue);
  mdb_env_close(l->audit_env);
  mdb_env_close(l->env);
  free(l);
}

void rp_ledger_res_lock(struct rp_ledger *l) { pthread_mutex_lock(&l->res_lock); }
void rp_ledger_res_unlock(struct rp_ledger *l) { pthread_mutex_unlock(&l->res_lock); }

static int put_json_flags(struct rp_ledger *l, MDB_dbi dbi, const void *key, size_t klen,
                          const json_t *j, unsigned flags, const struct rp_ledger_change *c) {
  char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
  if (text == NULL)
    return -ENOMEM;
  MDB_txn *txn;
  int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
  if (rc == 0) {
    MDB_val k = {klen, (void *)key}, v = {strlen(text), text};
    rc = mdb_put(txn, dbi, &k, &v, flags);
    rc = rc == 0 ? rp_ledger_commit_change(l, txn, c) : (mdb_txn_abort(txn), rc);
  }
  free(text);
  return rc == 0 || rc == -EREMOTEIO ? rc
         : rc == MDB_MAP_FULL        ? -ENOSPC
         : rc == MDB_KEYEXIST        ? -EEXIST
                                     : -EIO;
}

static json_t *parse(const MDB_val *v) { return json_loadb(v->mv_data, v->mv_size, 0, NULL); }

/* Audit keys: rack, NUL, 8-byte big-endian time, decision id. */
static size_t audit_key(char *key, size_t cap, const char *rack, int64_t ts, const char *id) {
  size_t rl = strlen(rack), il = strlen(id);
  if (rl + 1 + 8 + il > cap)
    return 0;
  memcpy(key, rack, rl + 1);
  uint64_t u = (uint64_t)ts;
  for (int i = 0; i < 8; i++)
    key[rl + 1 + i] = (char)(u >> (56 - 8 * i));
  memcpy(key + rl + 9, id, il);
  return rl + 9 + il;
}

static int64_t audit_key_ts(const MDB_val *k, size_t rack_len) {
  const unsigned char *p = (const unsigned char *)k->mv_data + rack_len + 1;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++)
    u = u << 8 | p[i];
  return (int64_t)u;
}

int rp_ledger_audit_append(struct rp_ledger *l, const json_t *d) {
  if (!json_is_string(json_object_get(d, "rack")) ||
      !json_is_string(json_object_get(d, "decision_id")))
    return -EINVAL;
  if (l->sink != NULL)
    l->sink(l->sink_ctx, d);
  /* A copy of its own: the caller goes on using (and freeing) its decision
   * while the writer thread serialises this one, and jansson's reference
   * counts are not entirely thread-safe (found by ThreadSanitizer). */
  json_t *copy = json_deep_copy(d);
  if (copy == NULL)
    return -ENOMEM;
  int rc = 0;
  pthread_mutex_lock(&l->lock);
  /* Back-pressure: a full queue makes the caller wait (at most 2 s) for
   * the writer to take a batch; past that the entry is refused, counted,
   * and the caller fails its request. */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 2;
  while (l->nqueue == l->lim.audit_queue_max && !l->stop &&
         pthread_cond_timedwait(&l->room, &l->lock, &until) == 0) {
  }
  if (l->nqueue == l->lim.audit_queue_max) {
    atomic_fetch_add(&l->dropped, 1);
    rc = -ENOBUFS;
  } else {
    l->queue[l->nqueue++] = copy;
    copy = NULL;
  }
  pthread_mutex_unlock(&l->lock);
  json_decref(copy);
  return rc;
}

uint64_t rp_ledger_audit_dropped(struct rp_ledger *l) { return atomic_load(&l->dropped); }
uint64_t rp_ledger_audit_evicted(struct rp_ledger *l) { return atomic_load(&l->evicted); }

/* Time-index keys: 8-byte big-endian time, then the audit key. */
static size_t time_key(char *out, size_t cap, const MDB_val *audit_k, int64_t ts) {
  if (audit_k->mv_size + 8 > cap)
    return 0;
  uint64_t u = (uint64_t)ts;
  for (int i = 0; i < 8; i++)
    out[i] = (char)(u >> (56 - 8 * i));
  memcpy(out + 8, audit_k->mv_data, audit_k->mv_size);
  return audit_k->mv_size + 8;
}

/* Stores one decision (audit key `k`, time ts) and its time index entry. */
static int audit_put(struct rp_ledger *l, MDB_txn *txn, MDB_val *k, MDB_val *v, int64_t ts) {
  char tk[300];
  size_t tlen = time_key(tk, sizeof(tk), k, ts);
  if (tlen == 0)
    return MDB_BAD_VALSIZE;
  MDB_val t = {tlen, tk}, empty = {0, ""};
  int rc = mdb_put(txn, l->audit, k, v, 0);
  return rc == 0 ? mdb_put(txn, l->audit_time, &t, &empty, 0) : rc;
}

/* Deletes the oldest decisions of a ledger without a chain (by their time
 * index) while there are more than `keep`, or any older than `before_ms`,
 * while it is moved to its own environment. Returns how many. */
static uint64_t legacy_evict(struct rp_ledger *l, MDB_txn *txn, uint64_t keep, int64_t before_ms) {
  MDB_stat st;
  MDB_cursor *c;
  uint64_t deleted = 0;
  if (mdb_stat(txn, l->audit, &st) != 0 || mdb_cursor_open(txn, l->audit_time, &c) != 0)
    return 0;
  uint64_t n = st.ms_entries;
  MDB_val k, v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0 && k.mv_size > 8) {
    const unsigned char *p = k.mv_data;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
      u = u << 8 | p[i];
    if (n <= keep && (int64_t)u >= before_ms)
      break;
    MDB_val ak = {k.mv_size - 8, (char *)k.mv_data + 8};
    if (mdb_del(txn, l->audit, &ak, NULL) == 0)
      n--;
    if (mdb_cursor_del(c, 0) != 0)
      break;
    deleted++;
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* after a delete: the next record */
  }
  mdb_cursor_close(c);
  return deleted;
}

/* Evicts, in a transaction of its own, the oldest decisions beyond `keep`.
 * Returns 0 or an LMDB error. */
static int audit_shrink(struct rp_ledger *l, uint64_t keep) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(l->audit_env, NULL, 0, &txn);
  if (rc != 0)
    return rc;
  uint64_t n = rp_ledger_chain_evict(l, txn, keep, INT64_MIN);
  if ((rc = mdb_txn_commit(txn)) == 0)
    atomic_fetch_add(&l->evicted, n);
  return rc;
}

/* Empties the audit log (the last resort when a full map cannot even
 * delete): every decision is counted as evicted. */
static int audit_clear(struct rp_ledger *l) {
  MDB_txn *txn;
  MDB_stat st;
  int rc = mdb_txn_begin(l->audit_env, NULL, 0, &txn);
  if (rc != 0)
    return rc;
  uint64_t n = mdb_stat(txn, l->audit, &st) == 0 ? st.ms_entries : 0;
  /* Everything up to the tip is gone: the chain's head moves there. */
  if ((rc = mdb_drop(txn, l->audit, 0)) != 0 || (rc = mdb_drop(txn, l->chain, 0)) != 0 ||
      (rc = rp_ledger_chain_put_meta(l, txn, "head", l->tip_seq, l->tip_hash)) != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  if ((rc = mdb_txn_commit(txn)) == 0)
    atomic_fetch_add(&l->evicted, n);
  return rc;
}

/* Pages the audit log's databases use, and how many decisions. */
static void audit_usage(struct rp_ledger *l, uint64_t *pages, uint64_t *entries) {
  MDB_txn *txn;
  MDB_stat a, t;
  *pages = *entries = 0;
  if (mdb_txn_begin(l->audit_env, NULL, MDB_RDONLY, &txn) != 0)
    return;
  if (mdb_stat(txn, l->audit, &a) == 0 && mdb_stat(txn, l->chain, &t) == 0) {
    *pages = a.ms_branch_pages + a.ms_leaf_pages + a.ms_overflow_pages + t.ms_branch_pages +
             t.ms_leaf_pages + t.ms_overflow_pages;
    *entries = a.ms_entries;
  }
  mdb_txn_abort(txn);
}

/* Writes a batch of decisions in one transaction, keeping at most
 * audit_max_entries. The map is kept under half full (LMDB copies pages
 * on write, reuses freed pages only a transaction later, and cannot delete
 * in a map that is full): past that the oldest decisions are deleted down
 * to 35%. Should a batch still not fit, the oldest tenth (at least the
 * batch) makes room, or as a last resort the whole log, and it is tried
 * again. Frees the decisions. The caller holds chain_lock. */
static void write_batch(struct rp_ledger *l, json_t **batch, size_t n) {
  uint64_t cap = l->lim.audit_max_entries ? l->lim.audit_max_entries : UINT64_MAX;
  int rc = -1;
  uint64_t seq = 0;
  char prev[RP_CHAIN_HEX];
  for (int attempt = 0; attempt < 4 && rc != 0; attempt++) {
    uint64_t pages, entries;
    if (attempt > 0) { /* the map was full */
      audit_usage(l, &pages, &entries);
      uint64_t room = entries / 10 > n ? entries / 10 : n;
      if (audit_shrink(l, entries > room ? entries - room : 0) != 0 && audit_clear(l) != 0)
        break;
    }
    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(l->audit_env, NULL, 0, &txn);
    if (rc != 0)
      break;
    /* Each attempt chains the batch from the committed tip. */
    seq = l->tip_seq;
    memcpy(prev, l->tip_hash, sizeof(prev));
    for (size_t i = 0; i < n && rc == 0; i++) {
      json_t *d = batch[i];
      char hash[RP_CHAIN_HEX];
      char *text = rp_chain_seal_text(d, seq + 1, prev, hash);
      char key[256];
      int64_t ts = json_integer_value(json_object_get(d, "evaluated_at_ms"));
      size_t klen = audit_key(key, sizeof(key), json_string_value(json_object_get(d, "rack")), ts,
                              json_string_value(json_object_get(d, "decision_id")));
      if (klen > 0 && text != NULL) {
        MDB_val k = {klen, key}, v = {strlen(text), text};
        rc = mdb_put(txn, l->audit, &k, &v, 0);
        if (rc == 0)
          rc = rp_ledger_chain_put(l, txn, seq + 1, hash, &k, ts);
        if (rc == 0) {
          seq++;
          memcpy(prev, hash, sizeof(prev));
        }
      } else {
        rc = klen == 0 ? MDB_BAD_VALSIZE : ENOMEM;
      }
      free(text);
    }
    if (rc == 0 && seq != l->tip_seq)
      rc = rp_ledger_chain_put_meta(l, txn, "tip", seq, prev);
    uint64_t evicted = rc == 0 ? rp_ledger_chain_evict(l, txn, cap, INT64_MIN) : 0;
    if (rc == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
    if (rc == 0) {
      l->tip_seq = seq;
      memcpy(l->tip_hash, prev, sizeof(prev));
      atomic_fetch_add(&l->evicted, evicted);
      MDB_stat es;
      audit_usage(l, &pages, &entries);
      uint64_t limit = mdb_env_stat(l->audit_env, &es) == 0 && es.ms_psize > 0
                           ? l->lim.audit_map_size / es.ms_psize / 2
                           : UINT64_MAX;
      if (pages > limit)
        audit_shrink(l, entries * (limit * 7 / 10) / pages);
    } else if (rc != MDB_MAP_FULL) {
      break;
    }
  }
  if (rc != 0) {
    /* Not silent: counted, and said, with the entries' ids. */
    atomic_fetch_add(&l->dropped, n);
    rp_error("audit",
             "%zu audit entr%s not written (%s), first %s: counted in "
             "rackpulse_audit_dropped_total",
             n, n == 1 ? "y" : "ies", rc > 0 ? mdb_strerror(rc) : strerror(-rc),
             json_string_value(json_object_get(batch[0], "decision_id")));
  }
  for (size_t i = 0; i < n; i++)
    json_decref(batch[i]);
}

/* Writes what is queued. chain_lock is held from taking the batch to its
 * commit: a flush returns only once every entry queued before it is written
 * (also one the writer thread had already taken), and batches are chained in
 * the order they were queued. */
void rp_ledger_audit_flush(struct rp_ledger *l) {
  pthread_mutex_lock(&l->chain_lock);
  pthread_mutex_lock(&l->lock);
  size_t n = l->nqueue;
  json_t **batch = n ? malloc(n * sizeof(*batch)) : NULL;
  if (batch != NULL) {
    memcpy(batch, l->queue, n * sizeof(*batch));
    l->nqueue = 0;
    pthread_cond_broadcast(&l->room);
  }
  pthread_mutex_unlock(&l->lock);
  if (batch != NULL) {
    write_batch(l, batch, n);
    free(batch);
  }
  pthread_mutex_unlock(&l->chain_lock);
}

/* The audit writer: a batch every 100 ms while decisions arrive. */
static void *audit_writer(void *arg) {
  struct rp_ledger *l = arg;
  pthread_mutex_lock(&l->lock);
  while (!l->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&l->wake, &l->lock, &until);
    if (l->nqueue == 0)
      continue;
    pthread_mutex_unlock(&l->lock);
    rp_ledger_audit_flush(l);
    pthread_mutex_lock(&l->lock);
  }
  pthread_mutex_unlock(&l->lock);
  return NULL;
}

json_t *rp_ledger_audit_query(struct rp_ledger *l, const char *rack, int64_t since_ms,
                              int64_t until_ms, size_t limit) {
  json_t *out = json_array();
  MDB_txn *txn;
  MDB_cursor *c;
  if (mdb_txn_begin(l->audit_env, NULL, MDB_RDONLY, &txn) != 0)
    return out;
  if (mdb_cursor_open(txn, l->audit, &c) != 0) {
    mdb_txn_abort(txn);
    return out;
  }
  MDB_val k, v;
  int rc;
  char start[256];
  if (rack != NULL) {
    size_t klen = audit_key(start, sizeof(start), rack, since_ms, "");
    k = (MDB_val){klen, start};
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  } else {
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  }
  size_t rl = rack ? strlen(rack) : 0;
  for (; rc == 0 && json_array_size(out) < limit; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    const char *kr = k.mv_data;
    size_t klen_rack = strnlen(kr, k.mv_size);
    if (klen_rack + 9 > k.mv_size)
      continue;
    if (rack != NULL && (klen_rack != rl || memcmp(kr, rack, rl) != 0))
      break; /* past this rack's records */
    int64_t ts = audit_key_ts(&k, klen_rack);
    if (ts < since_ms || ts >= until_ms)
      continue;
    json_t *j = parse(&v);
    if (j != NULL)
      json_array_append_new(out, j);
  }
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return out;
}

uint64_t rp_ledger_audit_prune(struct rp_ledger *l, int64_t now_ms) {
  MDB_txn *txn;
  if (mdb_txn_begin(l->audit_env, NULL, 0, &txn) != 0)
    return 0;
  uint64_t cap = l->lim.audit_max_entries ? l->lim.audit_max_entries : UINT64_MAX;
  uint64_t deleted = rp_ledger_chain_evict(l, txn, cap, now_ms - l->lim.audit_max_age_ms);
  if (mdb_txn_commit(txn) != 0)
    return 0;
  return deleted;
}

/* Ledgers written before the audit log had an environment of its own kept
 * it beside flags and reservations: its decisions move to the new one
 * (through the ring, so the cap holds), a batch per transaction, and the
 * old database is dropped, giving its space back. */
static int migrate_audit(struct rp_ledger *l) {
  MDB_txn *txn;
  MDB_dbi old;
  int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
  if (rc != 0)
    return rc;
  rc = mdb_dbi_open(txn, "audit", 0, &old);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return 0;
  }
  for (;;) { /* a batch of at most 1000 from the old database per round */
    MDB_cursor *c;
    MDB_txn *atxn;
    if (rc != 0 || (rc = mdb_cursor_open(txn, old, &c)) != 0)
      break;
    if ((rc = mdb_txn_begin(l->audit_env, NULL, 0, &atxn)) != 0) {
      mdb_cursor_close(c);
      break;
    }
    MDB_val k, v;
    int n = 0, get = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; get == 0 && n < 1000; n++) {
      size_t rl = strnlen(k.mv_data, k.mv_size);
      if (rl + 9 <= k.mv_size)
        audit_put(l, atxn, &k, &v, audit_key_ts(&k, rl)); /* a malformed key is dropped */
      if (mdb_cursor_del(c, 0) != 0)
        break;
      get = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* after a delete: the next record */
    }
    mdb_cursor_close(c);
    uint64_t cap = l->lim.audit_max_entries ? l->lim.audit_max_entries : UINT64_MAX;
    legacy_evict(l, atxn, cap, INT64_MIN);
    if ((rc = mdb_txn_commit(atxn)) != 0) {
      mdb_txn_abort(txn);
      return rc;
    }
    if (n < 1000) {
      rc = mdb_drop(txn, old, 1);
      break;
    }
    if ((rc = mdb_txn_commit(txn)) != 0 || (rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
      return rc;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  return mdb_txn_commit(txn);
}

int rp_ledger_res_put(struct rp_ledger *l, const json_t *res) {
  const char *id = json_string_value(json_object_get(res, "id"));
  if (id == NULL)
    return -EINVAL;
  struct rp_ledger_change c = {json_string_value(json_object_get(res, "rack")), "reservation", id,
                               res};
  return put_json_flags(l, l->reservations, id, strlen(id), res, 0, &c);
}

int rp_ledger_res_put_local(struct rp_ledger *l, const json_t *list) {
  MDB_txn *txn;
  if (json_array_size(list) == 0)
    return 0;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return -EIO;
  int rc = 0;
  size_t i;
  const json_t *res;
  json_array_foreach(list, i, res) {
    const char *id = json_string_value(json_object_get(res, "id"));
    char *text = id ? json_dumps(res, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    if (text == NULL) {
      rc = id ? -ENOMEM : -EINVAL;
      break;
    }
    MDB_val k = {strlen(id), (void *)id}, v = {strlen(text), text};
    int mrc = mdb_put(txn, l->reservations, &k, &v, 0);
    free(text);
    if (mrc != 0) {
      rc = mrc == MDB_MAP_FULL ? -ENOSPC : -EIO;
      break;
    }
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  return mdb_txn_commit(txn) == 0 ? 0 : -EIO;
}

json_t *rp_ledger_res_get(struct rp_ledger *l, const char *id) {
  MDB_txn *txn;
  json_t *out = NULL;
  if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
    return NULL;
  MDB_val k = {strlen(id), (void *)id}, v;
  if (mdb_get(txn, l->reservations, &k, &v) == 0)
    out = parse(&v);
  mdb_txn_abort(txn);
  return out;
}

int rp_ledger_res_del(struct rp_ledger *l, const char *id) {
  MDB_txn *txn;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return -EIO;
  MDB_val k = {strlen(id), (void *)id};
  int rc = mdb_del(txn, l->reservations, &k, NULL);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? -ENOENT : -EIO;
  }
  return mdb_txn_commit(txn) == 0 ? 0 : -EIO;
}

static json_t *list_db(struct rp_ledger *l, MDB_dbi dbi, const char *prefix) {
  json_t *out = json_array();
  MDB_txn *txn;
  MDB_cursor *c;
  if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
    return out;
  if (mdb_cursor_open(txn, dbi, &c) != 0) {
    mdb_txn_abort(txn);
    return out;
  }
  size_t pl = prefix ? strlen(prefix) + 1 : 0;
  MDB_val k = {pl, (void *)prefix}, v;
  int rc = mdb_cursor_get(c, &k, &v, prefix ? MDB_SET_RANGE : MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (prefix != NULL && (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0))
      break;
    json_t *j = parse(&v);
    if (j != NULL)
      json_array_append_new(out, j);
  }
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return out;
}

json_t *rp_ledger_res_list(struct rp_ledger *l) { return list_db(l, l->reservations, NULL); }

size_t rp_ledger_flag_key(char *key, size_t cap, const char *rack, const char *flag) {
  size_t rl = strlen(rack), fl = strlen(flag);
  if (rl + 1 + fl > cap)
    return 0;
  memcpy(key, rack, rl + 1);
  memcpy(key + rl + 1, flag, fl);
  return rl + 1 + fl;
}

int rp_ledger_flag_put(struct rp_ledger *l, const char *rack, const char *flag,
                       const json_t *value) {
  char key[256];
  size_t klen = rp_ledger_flag_key(key, sizeof(key), rack, flag);
  struct rp_ledger_change c = {rack, "flag", flag, value};
  return klen ? put_json_flags(l, l->flags, key, klen, value, 0, &c) : -EINVAL;
}

int rp_ledger_flag_put_new(struct rp_ledger *l, const char *rack, const char *flag,
                           const json_t *value) {
  char key[256];
  size_t klen = rp_ledger_flag_key(key, sizeof(key), rack, flag);
  struct rp_ledger_change c = {rack, "flag", flag, value};
  return klen ? put_json_flags(l, l->flags, key, klen, value, MDB_NOOVERWRITE, &c) : -EINVAL;
}

int rp_ledger_flag_del_if(struct rp_ledger *l, const char *rack, const char *flag,
                          const json_t *seen) {
  char key[256];
  size_t klen = rp_ledger_flag_key(key, sizeof(key), rack, flag);
  if (klen == 0)
    return -EINVAL;
  MDB_txn *txn;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return -EIO;
  MDB_val k = {klen, key}, v;
  int rc = mdb_get(txn, l->flags, &k, &v);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? -ENOENT : -EIO;
  }
  json_t *now = parse(&v);
  bool same = now != NULL && json_equal(now, seen);
  json_decref(now);
  if (!same) {
    mdb_txn_abort(txn);
    return -ESTALE;
  }
  if (mdb_del(txn, l->flags, &k, NULL) != 0) {
    mdb_txn_abort(txn);
    return -EIO;
  }
  struct rp_ledger_change c = {rack, "flag", flag, NULL};
  return rp_ledger_commit_change(l, txn, &c);
}

int rp_ledger_flag_del(struct rp_ledger *l, const char *rack, const char *flag) {
  char key[256];
  size_t klen = rp_ledger_flag_key(key, sizeof(key), rack, flag);
  if (klen == 0)
    return -EINVAL;
  MDB_txn *txn;
  int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
  if (rc != 0)
    return -EIO;
  MDB_val k = {klen, key};
  rc = mdb_del(txn, l->flags, &k, NULL);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? -ENOENT : -EIO;
  }
  struct rp_ledger_change c = {rack, "flag", flag, NULL};
  return rp_ledger_commit_change(l, txn, &c);
}

json_t *rp_ledger_flag_list(struct rp_ledger *l, const char *rack) {
  return list_db(l, l->flags, rack);
}

int rp_ledger_retired_put(struct rp_ledger *l, const json_t *rec) {
  const char *rack = json_string_value(json_object_get(rec, "rack"));
  const char *device = json_string_value(json_object_get(rec, "device"));
  char key[256];
  size_t klen = rack && device ? rp_ledger_flag_key(key, sizeof(key), rack, device) : 0;
  struct rp_ledger_change c = {rack, "retirement", device, rec};
  return klen ? put_json_flags(l, l->retired, key, klen, rec, 0, &c) : -EINVAL;
}

json_t *rp_ledger_retired_list(struct rp_ledger *l, const char *rack) {
  return list_db(l, l->retired, rack);
}

void rp_ledger_set_audit_sink(struct rp_ledger *l, void (*sink)(void *ctx, const json_t *decision),
                              void *ctx) {
  l->sink_ctx = ctx;
  l->sink = sink;
}

void rp_ledger_set_change_sink(struct rp_ledger *l, rp_ledger_change_fn fn, void *ctx) {
  l->change_ctx = ctx;
  l->change = fn;
}
