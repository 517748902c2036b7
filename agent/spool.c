/* The agent's on-disk spool (see spool.h), in LMDB:
 *   frames  seq (8 bytes, big-endian: keys sort by seq) -> packed Frame
 *   meta    "next_seq", "dropped", "frames", "bytes",
 *           "incarnation"                               -> uint64
 * Every write is one transaction whose commit is the one sync of its batch. */
#include "spool.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

struct rp_spool {
  MDB_env *env;
  MDB_dbi frames, meta;
  struct rp_spool_limits lim;
  uint64_t next_seq_at_open;
  uint64_t incarnation;
  bool new_incarnation;
  _Atomic uint64_t nframes, nbytes, dropped;
};

static void seq_key(uint64_t seq, uint8_t key[8]) {
  for (int i = 7; i >= 0; i--, seq >>= 8)
    key[i] = (uint8_t)seq;
}

static uint64_t key_seq(const MDB_val *k) {
  uint64_t seq = 0;
  const uint8_t *p = k->mv_data;
  for (size_t i = 0; i < 8 && i < k->mv_size; i++)
    seq = seq << 8 | p[i];
  return seq;
}

static uint64_t meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name) {
  MDB_val k = {strlen(name), (void *)name}, v;
  uint64_t out = 0;
  if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof(out))
    memcpy(&out, v.mv_data, sizeof(out));
  return out;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value) {
  MDB_val k = {strlen(name), (void *)name}, v = {sizeof(value), &value};
  return mdb_put(txn, dbi, &k, &v, 0);
}

/* A random, nonzero incarnation from the kernel's generator. Returns 0 or a
 * negative errno. */
static int random_incarnation(uint64_t *out) {
  uint64_t v = 0;
  while (v == 0) {
    ssize_t n = getrandom(&v, sizeof(v), 0);
    if (n < 0 && errno != EINTR)
      return -errno;
    if (n != (ssize_t)sizeof(v))
      v = 0;
  }
  *out = v;
  return 0;
}

int rp_spool_open(const char *dir, const struct rp_spool_limits *lim, struct rp_spool **out,
                  char *err, size_t errlen) {
  struct rp_spool *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  s->lim = *lim;
  MDB_txn *txn = NULL;
  int rc;
  if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
    rc = errno;
    snprintf(err, errlen, "spool %s: %s", dir, strerror(rc));
    free(s);
    return -rc;
  }
  if ((rc = mdb_env_create(&s->env)) != 0)
    goto fail;
  if ((rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
      (rc = mdb_env_set_mapsize(s->env, lim->map_size)) != 0 ||
      (rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0640)) != 0)
    goto fail_env;
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
    goto fail_env;
  if ((rc = mdb_dbi_open(txn, "frames", MDB_CREATE, &s->frames)) != 0 ||
      (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0)
    goto fail_txn;
  s->next_seq_at_open = meta_get(txn, s->meta, "next_seq");
  if (s->next_seq_at_open == 0)
    s->next_seq_at_open = 1;
  atomic_store(&s->nframes, meta_get(txn, s->meta, "frames"));
  atomic_store(&s->nbytes, meta_get(txn, s->meta, "bytes"));
  atomic_store(&s->dropped, meta_get(txn, s->meta, "dropped"));
  /* The incarnation is born with the spool (or, for a spool written before
   * incarnations existed, at its first open by this version) and lives as
   * long as it does: a wiped state directory makes a new one. */
  s->incarnation = meta_get(txn, s->meta, "incarnation");
  if (s->incarnation == 0) {
    int r = random_incarnation(&s->incarnation);
    if (r != 0) {
      mdb_txn_abort(txn);
      mdb_env_close(s->env);
      snprintf(err, errlen, "spool %s: getrandom for the agent incarnation: %s", dir, strerror(-r));
      free(s);
      return r;
    }
    s->new_incarnation = true;
    if ((rc = meta_put(txn, s->meta, "incarnation", s->incarnation)) != 0)
      goto fail_txn;
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    goto fail_env;
  *out = s;
  return 0;
fail_txn:
  mdb_txn_abort(txn);
fail_env:
  mdb_env_close(s->env);
fail:
  snprintf(err, errlen, "spool %s: %s", dir, mdb_strerror(rc));
  free(s);
  return rc > 0 ? -EIO : rc;
}

void rp_spool_close(struct rp_spool *s) {
  if (s == NULL)
    return;
  mdb_env_close(s->env);
  free(s);
}

uint64_t rp_spool_stored_next_seq(const struct rp_spool *s) { return s->next_seq_at_open; }
uint64_t rp_spool_incarnation(const struct rp_spool *s) { return s->incarnation; }
bool rp_spool_incarnation_is_new(const struct rp_spool *s) { return s->new_incarnation; }
uint64_t rp_spool_dropped_total(const struct rp_spool *s) { return atomic_load(&s->dropped); }

void rp_spool_depth(struct rp_spool *s, uint64_t *frames, uint64_t *bytes) {
  *frames = atomic_load(&s->nframes);
  *bytes = atomic_load(&s->nbytes);
}

int rp_spool_batch_add_frame(struct rp_spool_batch *b, uint64_t seq, uint8_t *buf, size_t len) {
  if (b->nframes == b->cap_frames) {
    size_t cap = b->cap_frames ? b->cap_frames * 2 : 16;
    struct rp_spool_frame *f = realloc(b->frames, cap * sizeof(*f));
    if (f == NULL)
      return -ENOMEM;
    b->frames = f;
    b->cap_frames = cap;
  }
  b->frames[b->nframes++] = (struct rp_spool_frame){seq, buf, len};
  return 0;
}

int rp_spool_batch_add_ack(struct rp_spool_batch *b, uint64_t seq) {
  if (b->nacks == b->cap_acks) {
    size_t cap = b->cap_acks ? b->cap_acks * 2 : 64;
    uint64_t *a = realloc(b->acks, cap * sizeof(*a));
    if (a == NULL)
      return -ENOMEM;
    b->acks = a;
    b->cap_acks = cap;
  }
  b->acks[b->nacks++] = seq;
  return 0;
}

void rp_spool_batch_reset(struct rp_spool_batch *b) {
  for (size_t i = 0; i < b->nframes; i++)
    free(b->frames[i].buf);
  b->nframes = b->nacks = 0;
  b->dropped = 0;
  b->rc = 0;
  b->err[0] = '\0';
}

void rp_spool_batch_free(struct rp_spool_batch *b) {
  rp_spool_batch_reset(b);
  free(b->frames);
  free(b->acks);
  memset(b, 0, sizeof(*b));
}

/* Deletes the oldest frames at or after protect_from until the spool is
 * within its bound. */
static int enforce_bound(struct rp_spool *s, MDB_txn *txn, struct rp_spool_batch *b,
                         uint64_t *nframes, uint64_t *nbytes) {
  if (*nframes <= s->lim.max_frames && *nbytes <= s->lim.max_bytes)
    return 0;
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->frames, &c);
  if (rc != 0)
    return rc;
  uint8_t key[8];
  seq_key(b->protect_from, key);
  MDB_val k = {8, key}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && (*nframes > s->lim.max_frames || *nbytes > s->lim.max_bytes)) {
    size_t len = v.mv_size;
    if ((rc = mdb_cursor_del(c, 0)) != 0)
      break;
    (*nframes)--;
    *nbytes -= len;
    b->dropped++;
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* after a delete: the next record */
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

void rp_spool_write(struct rp_spool *s, struct rp_spool_batch *b) {
  MDB_txn *txn;
  b->dropped = 0;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    goto out;
  uint64_t nframes = meta_get(txn, s->meta, "frames");
  uint64_t nbytes = meta_get(txn, s->meta, "bytes");
  for (size_t i = 0; i < b->nacks && rc == 0; i++) {
    uint8_t key[8];
    seq_key(b->acks[i], key);
    MDB_val k = {8, key}, v;
    if (mdb_get(txn, s->frames, &k, &v) != 0)
      continue; /* dropped for the bound while in flight, or acked twice */
    size_t len = v.mv_size;
    if ((rc = mdb_del(txn, s->frames, &k, NULL)) == 0) {
      nframes--;
      nbytes -= len;
    }
  }
  for (size_t i = 0; i < b->nframes && rc == 0; i++) {
    uint8_t key[8];
    seq_key(b->frames[i].seq, key);
    MDB_val k = {8, key}, v = {b->frames[i].len, b->frames[i].buf};
    if ((rc = mdb_put(txn, s->frames, &k, &v, 0)) == 0) {
      nframes++;
      nbytes += b->frames[i].len;
    }
  }
  if (rc == 0)
    rc = enforce_bound(s, txn, b, &nframes, &nbytes);
  uint64_t stored_next = meta_get(txn, s->meta, "next_seq");
  uint64_t dropped = meta_get(txn, s->meta, "dropped") + b->dropped;
  if (rc == 0 && b->next_seq > stored_next)
    rc = meta_put(txn, s->meta, "next_seq", b->next_seq);
  if (rc == 0)
    rc = meta_put(txn, s->meta, "frames", nframes);
  if (rc == 0)
    rc = meta_put(txn, s->meta, "bytes", nbytes);
  if (rc == 0)
    rc = meta_put(txn, s->meta, "dropped", dropped);
  if (rc != 0) {
    mdb_txn_abort(txn);
    goto out;
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    goto out;
  atomic_store(&s->nframes, nframes);
  atomic_store(&s->nbytes, nbytes);
  atomic_store(&s->dropped, dropped);
out:
  b->rc = rc == 0 ? 0 : rc == MDB_MAP_FULL || rc == ENOSPC ? -ENOSPC : rc > 0 ? -EIO : rc;
  if (rc != 0)
    snprintf(b->err, sizeof(b->err), "spool write of %zu frame(s): %s%s", b->nframes,
             mdb_strerror(rc),
             rc == MDB_MAP_FULL ? " (the spool's map is full: lower spool.max_bytes)" : "");
}

int rp_spool_next(struct rp_spool *s, uint64_t after, uint64_t *seq, uint8_t **buf, size_t *len) {
  MDB_txn *txn;
  MDB_cursor *c;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
    return -EIO;
  int rc = mdb_cursor_open(txn, s->frames, &c);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return -EIO;
  }
  uint8_t key[8];
  seq_key(after + 1, key);
  MDB_val k = {8, key}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  if (rc == 0) {
    *seq = key_seq(&k);
    *buf = malloc(v.mv_size ? v.mv_size : 1);
    if (*buf == NULL) {
      rc = ENOMEM;
    } else {
      memcpy(*buf, v.mv_data, v.mv_size);
      *len = v.mv_size;
    }
  }
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? -ENOENT : rc == ENOMEM ? -ENOMEM : -EIO;
}
