/* The aggregator's ledger (see ledger.h): JSON records in three LMDB
 * databases of an environment of its own. */
#include "ledger.h"

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

#define AUDIT_QUEUE_MAX 100000

struct rp_ledger {
  MDB_env *env;
  MDB_dbi audit, reservations, flags;
  struct rp_ledger_limits lim;
  /* Decisions waiting for the audit writer. */
  pthread_mutex_t lock;
  pthread_cond_t wake;
  json_t **queue;
  size_t nqueue;
  _Atomic uint64_t dropped;
  bool stop;
  pthread_t writer;
};

static void *audit_writer(void *arg);

int rp_ledger_open(const char *dir, const struct rp_ledger_limits *lim, struct rp_ledger **out,
                   char *err, size_t errlen) {
  struct rp_ledger *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return -ENOMEM;
  l->lim = *lim;
  MDB_txn *txn;
  int rc;
  if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
    rc = errno;
    snprintf(err, errlen, "ledger %s: %s", dir, strerror(rc));
    free(l);
    return -rc;
  }
  if ((rc = mdb_env_create(&l->env)) != 0)
    goto fail;
  if ((rc = mdb_env_set_maxdbs(l->env, 4)) != 0 ||
      (rc = mdb_env_set_mapsize(l->env, lim->map_size)) != 0 ||
      (rc = mdb_env_set_maxreaders(l->env, 256)) != 0 ||
      (rc = mdb_env_open(l->env, dir, MDB_NOTLS, 0640)) != 0)
    goto fail_env;
  if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
    goto fail_env;
  if ((rc = mdb_dbi_open(txn, "audit", MDB_CREATE, &l->audit)) != 0 ||
      (rc = mdb_dbi_open(txn, "reservations", MDB_CREATE, &l->reservations)) != 0 ||
      (rc = mdb_dbi_open(txn, "flags", MDB_CREATE, &l->flags)) != 0) {
    mdb_txn_abort(txn);
    goto fail_env;
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    goto fail_env;
  l->queue = calloc(AUDIT_QUEUE_MAX, sizeof(*l->queue));
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->wake, NULL);
  if (l->queue == NULL || pthread_create(&l->writer, NULL, audit_writer, l) != 0) {
    free(l->queue);
    mdb_env_close(l->env);
    free(l);
    snprintf(err, errlen, "ledger %s: cannot start the audit writer", dir);
    return -ENOMEM;
  }
  *out = l;
  return 0;
fail_env:
  mdb_env_close(l->env);
fail:
  snprintf(err, errlen, "ledger %s: %s", dir, mdb_strerror(rc));
  free(l);
  return rc > 0 ? -EIO : rc;
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
  pthread_cond_destroy(&l->wake);
  free(l->queue);
  mdb_env_close(l->env);
  free(l);
}

static int put_json(struct rp_ledger *l, MDB_dbi dbi, const void *key, size_t klen,
                    const json_t *j) {
  char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
  if (text == NULL)
    return -ENOMEM;
  MDB_txn *txn;
  int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
  if (rc == 0) {
    MDB_val k = {klen, (void *)key}, v = {strlen(text), text};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
  }
  free(text);
  return rc == 0 ? 0 : rc == MDB_MAP_FULL ? -ENOSPC : -EIO;
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
  int rc = 0;
  pthread_mutex_lock(&l->lock);
  if (l->nqueue == AUDIT_QUEUE_MAX) {
    atomic_fetch_add(&l->dropped, 1);
    rc = -ENOBUFS;
  } else {
    l->queue[l->nqueue++] = json_incref((json_t *)d);
  }
  pthread_mutex_unlock(&l->lock);
  return rc;
}

uint64_t rp_ledger_audit_dropped(struct rp_ledger *l) { return atomic_load(&l->dropped); }

/* Writes a batch of decisions in one transaction; frees them. */
static void write_batch(struct rp_ledger *l, json_t **batch, size_t n) {
  MDB_txn *txn = NULL;
  int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
  for (size_t i = 0; i < n; i++) {
    const json_t *d = batch[i];
    char key[256];
    size_t klen = audit_key(key, sizeof(key), json_string_value(json_object_get(d, "rack")),
                            json_integer_value(json_object_get(d, "evaluated_at_ms")),
                            json_string_value(json_object_get(d, "decision_id")));
    char *text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (rc == 0 && klen > 0 && text != NULL) {
      MDB_val k = {klen, key}, v = {strlen(text), text};
      rc = mdb_put(txn, l->audit, &k, &v, 0);
    }
    free(text);
    json_decref(batch[i]);
  }
  if (rc == 0)
    rc = mdb_txn_commit(txn);
  else if (txn != NULL)
    mdb_txn_abort(txn);
  if (rc != 0)
    atomic_fetch_add(&l->dropped, n);
}

void rp_ledger_audit_flush(struct rp_ledger *l) {
  pthread_mutex_lock(&l->lock);
  size_t n = l->nqueue;
  json_t **batch = n ? malloc(n * sizeof(*batch)) : NULL;
  if (batch != NULL) {
    memcpy(batch, l->queue, n * sizeof(*batch));
    l->nqueue = 0;
  }
  pthread_mutex_unlock(&l->lock);
  if (batch != NULL) {
    write_batch(l, batch, n);
    free(batch);
  }
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
  if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
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
  MDB_cursor *c;
  uint64_t deleted = 0;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return 0;
  MDB_stat st;
  mdb_stat(txn, l->audit, &st);
  uint64_t over =
      st.ms_entries > l->lim.audit_max_entries ? st.ms_entries - l->lim.audit_max_entries : 0;
  if (mdb_cursor_open(txn, l->audit, &c) != 0) {
    mdb_txn_abort(txn);
    return 0;
  }
  /* Records are ordered by rack, then time: the age rule applies to all;
   * the count rule removes the oldest of each rack in turn, a fair share. */
  MDB_val k, v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    size_t rl = strnlen(k.mv_data, k.mv_size);
    bool old = rl + 9 <= k.mv_size && audit_key_ts(&k, rl) < now_ms - l->lim.audit_max_age_ms;
    if (old || deleted < over) {
      if (mdb_cursor_del(c, 0) != 0)
        break;
      deleted++;
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* after a delete: the next record */
      continue;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (mdb_txn_commit(txn) != 0)
    return 0;
  return deleted;
}

int rp_ledger_res_put(struct rp_ledger *l, const json_t *res) {
  const char *id = json_string_value(json_object_get(res, "id"));
  if (id == NULL)
    return -EINVAL;
  return put_json(l, l->reservations, id, strlen(id), res);
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

static size_t flag_key(char *key, size_t cap, const char *rack, const char *flag) {
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
  size_t klen = flag_key(key, sizeof(key), rack, flag);
  return klen ? put_json(l, l->flags, key, klen, value) : -EINVAL;
}

int rp_ledger_flag_del(struct rp_ledger *l, const char *rack, const char *flag) {
  char key[256];
  size_t klen = flag_key(key, sizeof(key), rack, flag);
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
  return mdb_txn_commit(txn) == 0 ? 0 : -EIO;
}

json_t *rp_ledger_flag_list(struct rp_ledger *l, const char *rack) {
  return list_db(l, l->flags, rack);
}
