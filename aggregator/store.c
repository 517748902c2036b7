/* Rack state in LMDB (see store.h). Records are fixed-size C structs: the
 * database is local to one aggregator host and rebuilt from Kafka if its
 * layout ever changes (the "meta" database holds the layout version).
 *
 * This file opens the store (migrating old layouts: store_migrate.c), grows
 * its map, runs batches and their offsets and retires devices. Applying a
 * frame is store_apply.c, the dictionary cache store_dict.c, the read side
 * store_read.c; store_internal.h holds what they share. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

/* 2: incarnations, dictionaries by id; 3: receive times; 4: compact latest
 * values (struct latest_rec) */
#define STORE_LAYOUT_VERSION 4

int store__lmdb_err(int rc, const char *what, char *err, size_t errlen) {
  if (rc == MDB_MAP_FULL || rc == -ENOSPC) {
    snprintf(err, errlen, "%s: the LMDB map is full", what);
    return -ENOSPC;
  }
  snprintf(err, errlen, "%s: %s", what, rc < 0 && rc > -4096 ? strerror(-rc) : mdb_strerror(rc));
  return rc > 0 ? -EIO : rc;
}

/* ---- opening, growing ----------------------------------------------------- */

static int open_dbs(struct store *s, char *err, size_t errlen) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return store__lmdb_err(rc, "store: begin", err, errlen);
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
      return store__lmdb_err(rc, dbs[i].name, err, errlen);
    }
  }
  MDB_val k = {6, "layout"}, v;
  uint32_t layout = STORE_LAYOUT_VERSION, stored = 0;
  rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == 0 && v.mv_size == sizeof(stored))
    memcpy(&stored, v.mv_data, sizeof(stored));
  if (rc == 0 && stored >= 1 && stored < STORE_LAYOUT_VERSION) {
    if ((stored == 1 && (rc = store__migrate_from_1(s, txn)) != 0) ||
        (stored <= 2 && (rc = store__migrate_receive_times(s, txn)) != 0) ||
        (rc = store__migrate_latest_compact(s, txn, &s->migrated_records)) != 0) {
      mdb_txn_abort(txn);
      char what[160];
      snprintf(what, sizeof(what),
               "store: migrating the database from layout %u to %u (raise store.map_size_mb, "
               "or move it aside and the aggregator rebuilds state from Kafka)",
               stored, STORE_LAYOUT_VERSION);
      return store__lmdb_err(rc, what, err, errlen);
    }
    s->migrated_from = stored;
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
    return store__lmdb_err(rc, "store: layout", err, errlen);
  }
  rc = mdb_txn_commit(txn);
  return rc ? store__lmdb_err(rc, "store: commit", err, errlen) : 0;
}

/* With MDB_WRITEMAP the data file is as large as the map, sparse: a batch
 * that writes into a page the file system cannot allocate (disk full) is
 * killed by SIGBUS in the middle of the batch, not told ENOSPC. So before
 * each batch the file's blocks are allocated (posix_fallocate) up to the
 * data's end plus RESERVE_AHEAD, capped at the map: a full disk becomes a
 * clear error between batches, while RESERVE_AHEAD of allocated room is
 * still left for the batch to write into. Already allocated room costs no
 * system call. */
#define RESERVE_AHEAD ((size_t)32 << 20)

static int reserve_ahead(struct store *s, char *err, size_t errlen) {
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(s->env, &info);
  mdb_env_stat(s->env, &st);
  size_t used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
  size_t want = used + RESERVE_AHEAD;
  if (want > info.me_mapsize)
    want = info.me_mapsize;
  if (want <= s->reserved)
    return 0;
  mdb_filehandle_t fd;
  const char *path = "?";
  mdb_env_get_path(s->env, &path);
  int rc = mdb_env_get_fd(s->env, &fd);
  if (rc == 0)
    rc = posix_fallocate(fd, 0, (off_t)want);
  if (rc == EOPNOTSUPP || rc == EINVAL) /* no fallocate here: stay sparse */
    rc = 0;
  if (rc != 0) {
    s->disk_full = rc == ENOSPC;
    snprintf(err, errlen,
             "store %s: cannot allocate %zu MiB on disk ahead of the data (%zu MiB used): %s%s",
             path, want >> 20, used >> 20, strerror(rc),
             rc == ENOSPC ? " (the disk is full: free space on it, then restart)" : "");
    return -rc;
  }
  s->disk_full = false;
  s->reserved = want;
  return 0;
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
   * file then has the map's size, sparse on Linux file systems, its blocks
   * allocated ahead of the data before each batch (reserve_ahead). Commits stay
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
  /* A disk already too full for the first batch is said at start. */
  if ((rc = reserve_ahead(s, err, errlen)) != 0) {
    store_close(s);
    return rc;
  }
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

void store_set_clock(struct store *s, int64_t now_ms) { s->clock_ms = now_ms; }

unsigned store_migrated_from(const struct store *s, size_t *latest_records) {
  *latest_records = s->migrated_records;
  return s->migrated_from;
}

int store_set_volatile(struct store *s, bool volatile_) {
  return mdb_env_set_flags(s->env, MDB_NOSYNC | MDB_MAPASYNC, volatile_ ? 1 : 0);
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
    return store__lmdb_err(rc, "store: grow the map", err, errlen);
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

/* ---- writing: LMDB helpers, batches, offsets ------------------------------- */

/* Joins a and b with a NUL into key; returns the length or -ENAMETOOLONG. */
int store__join_key(char *key, size_t len, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la + 1 + lb > len)
    return -ENAMETOOLONG;
  memcpy(key, a, la);
  key[la] = '\0';
  memcpy(key + la + 1, b, lb);
  return (int)(la + 1 + lb);
}

int store__put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen) {
  MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
  return mdb_put(txn, dbi, &key, &val, 0);
}

int store__get_copy(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, void *out, size_t size) {
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
  int rc = reserve_ahead(s, err, errlen);
  if (rc != 0)
    return rc;
  struct store_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  b->s = s;
  rc = mdb_txn_begin(s->env, NULL, 0, &b->txn);
  if (rc != 0) {
    free(b);
    return store__lmdb_err(rc, "store: begin batch", err, errlen);
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
    int klen = store__join_key(key, sizeof(key), p->topic, part);
    if (klen < 0)
      return klen;
    int rc = store__put(b->txn, b->s->offsets, key, (size_t)klen, &p->next, sizeof(p->next));
    if (rc != 0)
      return rc;
  }
  return 0;
}

int store_batch_skip(struct store_batch *b, const char *topic, int32_t partition, int64_t offset,
                     char *err, size_t errlen) {
  int rc = note_offset(b, topic, partition, offset);
  return rc ? store__lmdb_err(rc, "store: offset", err, errlen) : 0;
}

int store_batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                      int32_t partition, int64_t offset, enum store_outcome *outcome, char *err,
                      size_t errlen) {
  unsigned events;
  return store__batch_apply(b, f, topic, partition, offset, outcome, &events, err, errlen);
}

int store_batch_commit(struct store_batch *b, char *err, size_t errlen) {
  int rc = put_offsets(b);
  if (rc != 0) {
    store_batch_abort(b);
    return store__lmdb_err(rc, "store: offsets", err, errlen);
  }
  /* mdb_txn_commit() closes the batch's cursors; on failure it aborts. */
  rc = mdb_txn_commit(b->txn);
  if (rc != 0)
    dict_clear(&b->s->cache);
  batch_free(b);
  return rc ? store__lmdb_err(rc, "store: commit", err, errlen) : 0;
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
    rc = store__apply_msg(b, &msgs[i], err, errlen);
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
    if (rc != -ENOSPC || s->disk_full) /* a full map grows; a full disk does not */
      return rc;
    if ((rc = store_grow(s, err, errlen)) != 0)
      return rc;
  }
}

/* ---- retiring devices ---------------------------------------------------- */

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
    return store__lmdb_err(rc, "store: retire: begin", err, errlen);
  }
  if ((rc = delete_device_records(txn, s->latest, rack, device, false, false, removed)) != 0 ||
      (rc = delete_device_records(txn, s->stats, rack, device, true, false, removed)) != 0 ||
      (rc = delete_device_records(txn, s->devices, rack, device, false, true, removed)) != 0) {
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
    *removed = 0;
    return store__lmdb_err(rc, "store: retire", err, errlen);
  }
  if (*removed > 0) {
    struct store_retired t = {.retired_ms = now_ms};
    snprintf(t.owner, sizeof(t.owner), "%s", owner);
    char key[KEY_MAX];
    int klen = store__join_key(key, sizeof(key), rack, device);
    rc = klen < 0 ? klen : store__put(txn, s->retired, key, (size_t)klen, &t, sizeof(t));
    if (rc != 0) {
      mdb_txn_abort(txn);
      pthread_rwlock_unlock(&s->resize_lock);
      *removed = 0;
      return store__lmdb_err(rc, "store: retire", err, errlen);
    }
  }
  rc = mdb_txn_commit(txn);
  pthread_rwlock_unlock(&s->resize_lock);
  if (rc != 0) {
    *removed = 0;
    return store__lmdb_err(rc, "store: retire: commit", err, errlen);
  }
  return 0;
}
