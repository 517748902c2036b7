/* How hard the store pushes its commits to the disk, and what happens when
 * the disk gave back a damaged store (see store.h, "Durability"). Kafka
 * keeps the frames and the store commits its offsets with the state they
 * produced, so a commit the disk lost is read again from Kafka: the store
 * need not pay a full disk sync per batch to stay exactly-once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rackpulse/frame.h"
#include "store_internal.h"

int store_set_sync(struct store *s, enum store_sync_mode mode, char *err, size_t errlen) {
  unsigned off = MDB_NOMETASYNC | MDB_NOSYNC | MDB_MAPASYNC, on = 0;
  if (mode == STORE_SYNC_META)
    on = MDB_NOMETASYNC;
  else if (mode == STORE_SYNC_PERIODIC)
    on = MDB_NOSYNC | MDB_MAPASYNC;
  int rc = mdb_env_set_flags(s->env, off, 0);
  if (rc == 0 && on != 0)
    rc = mdb_env_set_flags(s->env, on, 1);
  return rc ? store__lmdb_err(rc, "store: sync mode", err, errlen) : 0;
}

int store_sync(struct store *s, char *err, size_t errlen) {
  int rc = mdb_env_sync(s->env, 1);
  return rc ? store__lmdb_err(rc, "store: sync", err, errlen) : 0;
}

bool store_err_damaged(int rc) {
  return rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_TXN;
}

static void marker_path(const char *path, char *out, size_t len) {
  snprintf(out, len, "%s/DAMAGED", path);
}

int store_mark_damaged(const char *path) {
  char marker[600];
  marker_path(path, marker, sizeof(marker));
  FILE *f = fopen(marker, "w");
  if (f == NULL)
    return -errno;
  fputs("LMDB reported damage; the next start moves data.mdb aside and rebuilds from Kafka\n", f);
  return fclose(f) == 0 ? 0 : -errno;
}

/* Moves data.mdb to data.mdb.damaged-MS and drops lock.mdb and the marker. */
static int move_aside(const char *path, char *aside, size_t asidelen) {
  char data[600], lock[600], marker[600];
  snprintf(data, sizeof(data), "%s/data.mdb", path);
  snprintf(lock, sizeof(lock), "%s/lock.mdb", path);
  marker_path(path, marker, sizeof(marker));
  snprintf(aside, asidelen, "%s/data.mdb.damaged-%lld", path, (long long)rp_now_ms());
  if (rename(data, aside) != 0 && errno != ENOENT)
    return -errno;
  unlink(lock);
  unlink(marker);
  return 0;
}

int store_open_rebuild(const char *path, size_t map_size, struct store **out, bool *rebuilt,
                       char *aside, size_t asidelen, char *err, size_t errlen) {
  char marker[600];
  struct stat st;
  marker_path(path, marker, sizeof(marker));
  *rebuilt = false;
  int rc = stat(marker, &st) == 0 ? MDB_CORRUPTED : store_open(path, map_size, out, err, errlen);
  if (!store_err_damaged(rc))
    return rc;
  if ((rc = move_aside(path, aside, asidelen)) != 0) {
    snprintf(err, errlen, "store %s is damaged and cannot be moved aside: %s", path, strerror(-rc));
    return rc;
  }
  *rebuilt = true;
  return store_open(path, map_size, out, err, errlen);
}
