/* The ledger's write lock used for more than a write (ledger.h): waiting
 * for the change in flight (a revocation), running a step in order with
 * every change (a claim of a ledger partition), handing the change sink
 * state kept elsewhere (overrides, in memory), and handing it again the
 * state stored for one key (after a void record of that key, so that the
 * latest record of the key on a compacted topic is valid again). */
#include <errno.h>
#include <string.h>

#include "ledger_internal.h"

void rp_ledger_barrier(struct rp_ledger *l) {
  MDB_txn *txn;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) == 0)
    mdb_txn_abort(txn);
}

int rp_ledger_exclusive(struct rp_ledger *l, int (*fn)(void *ctx), void *ctx) {
  MDB_txn *txn;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return -EIO;
  int rc = fn(ctx);
  mdb_txn_abort(txn);
  return rc;
}

int rp_ledger_publish(struct rp_ledger *l, const char *rack, const char *kind, const char *id,
                      const json_t *value) {
  MDB_txn *txn;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return -EIO;
  struct rp_ledger_change c = {rack, kind, id, value};
  return rp_ledger_commit_change(l, txn, &c); /* an empty transaction: nothing is written */
}

int rp_ledger_republish(struct rp_ledger *l, const char *rack, const char *kind, const char *id) {
  char key[256];
  size_t klen = 0;
  MDB_dbi dbi;
  if (strcmp(kind, "reservation") == 0) {
    dbi = l->reservations;
    klen = strlen(id) < sizeof(key) ? strlen(id) : 0;
    memcpy(key, id, klen);
  } else if (strcmp(kind, "flag") == 0 || strcmp(kind, "retirement") == 0) {
    dbi = strcmp(kind, "flag") == 0 ? l->flags : l->retired;
    klen = rp_ledger_flag_key(key, sizeof(key), rack, id);
  } else {
    return -EINVAL;
  }
  if (klen == 0)
    return -EINVAL;
  MDB_txn *txn;
  if (mdb_txn_begin(l->env, NULL, 0, &txn) != 0)
    return -EIO;
  MDB_val k = {klen, key}, v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? -ENOENT : -EIO;
  }
  json_t *value = json_loadb(v.mv_data, v.mv_size, 0, NULL);
  const char *of = json_string_value(json_object_get(value, "rack"));
  if (value == NULL || of == NULL || strcmp(of, rack) != 0) {
    json_decref(value);
    mdb_txn_abort(txn);
    return -ENOENT; /* stored under another rack: not this key's state */
  }
  struct rp_ledger_change c = {rack, kind, id, value};
  rc = rp_ledger_commit_change(l, txn, &c); /* nothing written */
  json_decref(value);
  return rc;
}
