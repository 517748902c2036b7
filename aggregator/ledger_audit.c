/* The audit log's hash chain in LMDB (see audit_chain.h, ledger_internal.h):
 * every entry the audit writer stores is sealed with its seq and the hash
 * of the entry before it, and indexed by seq, so that the ring evicts in
 * chain order (moving the chain's head) and an export or a verifier can
 * walk the entries in the order they were chained. Also the exports:
 * JSON lines from a seq on, and one deploy's entries. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_internal.h"

static void be64(uint8_t out[8], uint64_t u) {
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(u >> (56 - 8 * i));
}

static uint64_t from_be64(const void *p) {
  const uint8_t *b = p;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++)
    u = u << 8 | b[i];
  return u;
}

int rp_ledger_chain_put_meta(struct rp_ledger *l, MDB_txn *txn, const char *which, uint64_t seq,
                             const char hash[RP_CHAIN_HEX]) {
  uint8_t v[40] = {0};
  be64(v, seq);
  if (hash[0] != '\0' && !rp_chain_from_hex(hash, v + 8))
    return EINVAL;
  MDB_val k = {strlen(which), (void *)which}, val = {sizeof(v), v};
  return mdb_put(txn, l->chain_meta, &k, &val, 0);
}

/* Reads "head" or "tip": 0 (seq 0 and "" when absent) or an LMDB error. */
static int get_meta(struct rp_ledger *l, MDB_txn *txn, const char *which, uint64_t *seq,
                    char hash[RP_CHAIN_HEX]) {
  MDB_val k = {strlen(which), (void *)which}, v;
  *seq = 0;
  hash[0] = '\0';
  int rc = mdb_get(txn, l->chain_meta, &k, &v);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0 || v.mv_size != 40)
    return rc ? rc : MDB_CORRUPTED;
  *seq = from_be64(v.mv_data);
  rp_chain_to_hex((const uint8_t *)v.mv_data + 8, hash);
  return 0;
}

int rp_ledger_chain_put(struct rp_ledger *l, MDB_txn *txn, uint64_t seq,
                        const char hash[RP_CHAIN_HEX], const MDB_val *k, int64_t ts) {
  uint8_t key[8], val[300];
  if (k->mv_size + 40 > sizeof(val))
    return MDB_BAD_VALSIZE;
  be64(key, seq);
  be64(val, (uint64_t)ts);
  if (!rp_chain_from_hex(hash, val + 8))
    return EINVAL;
  memcpy(val + 40, k->mv_data, k->mv_size);
  MDB_val ck = {8, key}, cv = {k->mv_size + 40, val};
  return mdb_put(txn, l->chain, &ck, &cv, 0);
}

uint64_t rp_ledger_chain_evict(struct rp_ledger *l, MDB_txn *txn, uint64_t keep,
                               int64_t before_ms) {
  MDB_stat st;
  MDB_cursor *c;
  uint64_t deleted = 0, head_seq = 0;
  char head_hash[RP_CHAIN_HEX] = "";
  if (mdb_stat(txn, l->chain, &st) != 0 || mdb_cursor_open(txn, l->chain, &c) != 0)
    return 0;
  uint64_t n = st.ms_entries;
  MDB_val k, v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0 && k.mv_size == 8 && v.mv_size >= 40) {
    int64_t ts = (int64_t)from_be64(v.mv_data);
    if (n <= keep && ts >= before_ms)
      break;
    head_seq = from_be64(k.mv_data);
    rp_chain_to_hex((const uint8_t *)v.mv_data + 8, head_hash);
    MDB_val ak = {v.mv_size - 40, (char *)v.mv_data + 40};
    mdb_del(txn, l->audit, &ak, NULL);
    if (mdb_cursor_del(c, 0) != 0)
      break;
    n--;
    deleted++;
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* after a delete: the next record */
  }
  mdb_cursor_close(c);
  if (deleted > 0)
    rp_ledger_chain_put_meta(l, txn, "head", head_seq, head_hash);
  return deleted;
}

/* Chains, in time order, up to 1000 entries of a ledger written before the
 * chain (its legacy time index), deleting their index entries. Returns 0
 * with *more set when entries remain, or an LMDB error. */
static int chain_legacy_batch(struct rp_ledger *l, bool *more) {
  MDB_txn *txn;
  MDB_cursor *c;
  int rc = mdb_txn_begin(l->audit_env, NULL, 0, &txn);
  if (rc != 0)
    return rc;
  if ((rc = mdb_cursor_open(txn, l->audit_time, &c)) != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  uint64_t seq = l->tip_seq;
  char prev[RP_CHAIN_HEX];
  memcpy(prev, l->tip_hash, sizeof(prev));
  MDB_val k, v;
  int n = 0, get = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  for (; get == 0 && n < 1000 && rc == 0; n++) {
    MDB_val ak = {k.mv_size - 8, (char *)k.mv_data + 8}, av;
    if (k.mv_size > 8 && mdb_get(txn, l->audit, &ak, &av) == 0) {
      json_t *e = json_loadb(av.mv_data, av.mv_size, 0, NULL);
      char hash[RP_CHAIN_HEX];
      char *text = e != NULL ? rp_chain_seal_text(e, seq + 1, prev, hash) : NULL;
      if (text != NULL) {
        MDB_val nv = {strlen(text), text};
        rc = mdb_put(txn, l->audit, &ak, &nv, 0);
        if (rc == 0)
          rc = rp_ledger_chain_put(l, txn, seq + 1, hash, &ak, (int64_t)from_be64(k.mv_data));
        if (rc == 0) {
          seq++;
          memcpy(prev, hash, sizeof(prev));
        }
      } else {
        mdb_del(txn, l->audit, &ak, NULL); /* unreadable: cannot be chained */
      }
      free(text);
      json_decref(e);
    }
    if (rc == 0 && mdb_cursor_del(c, 0) != 0)
      break;
    get = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  *more = get == 0;
  if (rc == 0 && seq != l->tip_seq)
    rc = rp_ledger_chain_put_meta(l, txn, "tip", seq, prev);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  if ((rc = mdb_txn_commit(txn)) == 0) {
    l->tip_seq = seq;
    memcpy(l->tip_hash, prev, sizeof(prev));
  }
  return rc;
}

int rp_ledger_chain_open(struct rp_ledger *l) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(l->audit_env, NULL, 0, &txn);
  if (rc != 0)
    return rc;
  uint64_t head_seq;
  char head_hash[RP_CHAIN_HEX];
  if ((rc = mdb_dbi_open(txn, "chain", MDB_CREATE, &l->chain)) != 0 ||
      (rc = mdb_dbi_open(txn, "chain_meta", MDB_CREATE, &l->chain_meta)) != 0 ||
      (rc = get_meta(l, txn, "tip", &l->tip_seq, l->tip_hash)) != 0 ||
      (rc = get_meta(l, txn, "head", &head_seq, head_hash)) != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    return rc;
  for (bool more = true; more && rc == 0;)
    rc = chain_legacy_batch(l, &more);
  return rc;
}

int rp_ledger_audit_chain_info(struct rp_ledger *l, uint64_t *head_seq, char head_hash[65],
                               uint64_t *tip_seq, char tip_hash[65]) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(l->audit_env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return -EIO;
  rc = get_meta(l, txn, "head", head_seq, head_hash);
  if (rc == 0)
    rc = get_meta(l, txn, "tip", tip_seq, tip_hash);
  mdb_txn_abort(txn);
  return rc == 0 ? 0 : -EIO;
}

/* Calls fn(ctx, entry text) for the entries with seq > after, in chain
 * order, until fn returns false. Returns the last seq visited. */
static uint64_t walk(struct rp_ledger *l, uint64_t after,
                     bool (*fn)(void *ctx, const MDB_val *text), void *ctx,
                     struct rp_audit_ends *ends) {
  MDB_txn *txn;
  MDB_cursor *c;
  uint64_t last = after;
  if (ends != NULL)
    memset(ends, 0, sizeof(*ends));
  if (mdb_txn_begin(l->audit_env, NULL, MDB_RDONLY, &txn) != 0)
    return last;
  if (ends != NULL) {
    get_meta(l, txn, "head", &ends->head_seq, ends->head_hash);
    get_meta(l, txn, "tip", &ends->tip_seq, ends->tip_hash);
  }
  if (mdb_cursor_open(txn, l->chain, &c) != 0) {
    mdb_txn_abort(txn);
    return last;
  }
  uint8_t start[8];
  be64(start, after + 1);
  MDB_val k = {8, start}, v;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 8 || v.mv_size < 40)
      continue;
    MDB_val ak = {v.mv_size - 40, (char *)v.mv_data + 40}, text;
    if (mdb_get(txn, l->audit, &ak, &text) != 0)
      continue; /* a chained entry without its record: the verifier says gap */
    last = from_be64(k.mv_data);
    if (!fn(ctx, &text))
      break;
  }
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return last;
}

struct export_ctx {
  char *buf;
  size_t len, cap, max;
  size_t n;
};

static bool append_line(void *ctx, const MDB_val *text) {
  struct export_ctx *x = ctx;
  if (x->len + text->mv_size + 2 > x->cap) {
    size_t cap = (x->cap ? x->cap * 2 : 65536) + text->mv_size;
    char *grown = realloc(x->buf, cap);
    if (grown == NULL)
      return false;
    x->buf = grown;
    x->cap = cap;
  }
  memcpy(x->buf + x->len, text->mv_data, text->mv_size);
  x->len += text->mv_size;
  x->buf[x->len++] = '\n';
  x->buf[x->len] = '\0';
  return ++x->n < x->max;
}

char *rp_ledger_audit_export(struct rp_ledger *l, uint64_t after_seq, size_t max, size_t *len,
                             uint64_t *last_seq, struct rp_audit_ends *ends) {
  struct export_ctx x = {.max = max};
  *last_seq = walk(l, after_seq, append_line, &x, ends);
  *len = x.len;
  return x.buf;
}

struct deploy_ctx {
  const char *deploy_id;
  json_t *out;
  size_t limit;
};

static bool match_deploy(void *ctx, const MDB_val *text) {
  struct deploy_ctx *d = ctx;
  /* Cheap prefilter before parsing: the id must appear in the text. */
  if (memmem(text->mv_data, text->mv_size, d->deploy_id, strlen(d->deploy_id)) == NULL)
    return true;
  json_t *e = json_loadb(text->mv_data, text->mv_size, 0, NULL);
  const char *id = json_string_value(json_object_get(json_object_get(e, "deploy"), "deploy_id"));
  if (id != NULL && strcmp(id, d->deploy_id) == 0)
    json_array_append(d->out, e);
  json_decref(e);
  return json_array_size(d->out) < d->limit;
}

json_t *rp_ledger_audit_by_deploy(struct rp_ledger *l, const char *deploy_id, size_t limit) {
  struct deploy_ctx d = {.deploy_id = deploy_id, .out = json_array(), .limit = limit};
  walk(l, 0, match_deploy, &d, NULL);
  return d.out;
}
