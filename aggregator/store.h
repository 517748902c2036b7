/* Rack state in LMDB: the aggregator's source of truth.
 *
 * One writer (the ingest thread) applies frames in batches, one write
 * transaction per batch, and writes the Kafka offsets of the batch in the
 * same transaction: state and offsets can never disagree, so a crash at any
 * instant neither loses nor double-applies a frame. Readers (HTTP threads)
 * use read transactions, which never block the writer (LMDB MVCC).
 *
 * The map (the database's maximum size) grows when full: store_apply()
 * aborts the batch, doubles the map up to the maximum set with
 * store_set_map_max() and applies the batch again. LMDB allows changing the
 * map size only while this process has no transaction open, readers
 * included (lmdb.h, mdb_env_set_mapsize), so every read holds a shared lock
 * for its duration and the resize takes it exclusively: readers wait for the
 * few milliseconds of a resize, never for a write.
 *
 * Databases (named LMDB sub-databases):
 *   offsets  "topic\0partition"          -> int64 next offset to consume
 *   agents   agent id                    -> struct store_agent
 *   dict     agent id "\0" dictionary id (8 bytes) series id (4 bytes, both
 *            big-endian)                 -> packed rackpulse.v1.SeriesDef
 *   latest   rack "\0" series key        -> struct store_latest, stored compact
 *            (struct latest_rec in store_internal.h, the detail only when set)
 *   devices  rack "\0" device            -> struct store_device
 *   racks    rack                        -> struct store_rack
 *   stats    rack "\0" series key "|" window seconds -> struct store_stats
 *   retired  rack "\0" device            -> struct store_retired
 * A series key is "name{k=v,...}@device".
 *
 * Identity. Frames are de-duplicated per agent, incarnation and sequence
 * number (proto/rackpulse.proto): the first frame of an incarnation not seen
 * before is applied at once and that incarnation becomes the agent's current
 * one, so a re-imaged host (wiped state, seq from 1) is not taken for a
 * replay. The high-water marks of the previous STORE_AGENT_INCARNATIONS - 1
 * incarnations are kept: a late frame of one of them is applied when its seq
 * is new for it (a value never replaces a newer one, by sample time) and is
 * a duplicate otherwise. Dictionaries are stored per agent under their
 * identity (the frame's dictionary_hash; for agents older than that field a
 * value derived from dictionary_version), the last STORE_AGENT_DICTS of each
 * agent. A frame whose dictionary is not stored has its samples, statuses
 * and statistics skipped and counted, never decoded with another
 * dictionary; a dictionary whose content does not match its hash is refused
 * and counted.
 *
 * Every record carries, beside the frame's (agent's) time, the aggregator's
 * own receive time (received_ms), so that freshness never rests on the
 * agent's clock alone. The latest and stats records of a rack are never
 * dropped by ingest: they are the rack's expected members, every device that
 * has reported a series, and a device that stops reporting stays a (stale)
 * member until an operator retires it (store_retire_device()). */
#ifndef RACKPULSE_STORE_H
#define RACKPULSE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rackpulse/frame.h"

struct store;
struct store_batch;

#define STORE_AGENT_INCARNATIONS 4 /* high-water marks kept: current + 3 */
#define STORE_AGENT_DICTS 4        /* dictionaries kept per agent */

struct store_incarnation {
  uint64_t id, last_seq;
};

struct store_agent {
  uint64_t last_seq;     /* highest sequence number applied (current incarnation) */
  uint64_t frames;       /* frames applied */
  uint64_t duplicates;   /* frames skipped: (incarnation, seq) already applied */
  uint64_t gaps;         /* sequence numbers never seen (current incarnation) */
  uint64_t undecodable;  /* samples skipped: dictionary or series not known */
  uint32_t dict_version; /* informational: dictionary_version of the newest dictionary */
  int64_t last_ms;       /* frame time of the last frame (current incarnation) */
  char rack[RP_ID_MAX + 1];
  /* Identity. */
  uint64_t incarnation;   /* current: the last one first seen (0: an old agent) */
  int64_t incarnation_ms; /* frame time of its first frame */
  uint64_t incarnations;  /* incarnations seen, the first included */
  uint32_t nprevious;     /* previous[0..nprevious): most recent first */
  struct store_incarnation previous[STORE_AGENT_INCARNATIONS - 1];
  uint64_t dicts[STORE_AGENT_DICTS]; /* dictionary ids stored, most recent first; 0: none */
  uint64_t unknown_dict_frames;      /* frames skipped: their dictionary is not stored */
  uint64_t bad_dict_frames;          /* dictionaries refused: content does not match the hash */
  uint64_t last_unknown_dict;        /* dictionary id of the last frame skipped for it */
  int64_t last_unknown_dict_ms;      /* its frame time (0: never) */
  int64_t last_decoded_ms;           /* frame time of the last frame decoded */
};

struct store_latest {
  double value;
  int64_t ts_ms;  /* sample time */
  int32_t status; /* Rackpulse__V1__ReadingStatus */
  int32_t decimals;
  char unit[24];
  char detail[96];     /* why the status is not OK */
  int64_t received_ms; /* when the aggregator applied it (its own clock) */
};

struct store_device {
  bool up;
  char kind[16];
  char last_error[200];
  uint32_t scrape_ms;
  uint64_t scrapes, failures;
  int64_t last_ok_ms;
  int64_t reported_ms;       /* frame time of the report */
  int64_t received_ms;       /* when the aggregator applied it (its own clock) */
  char agent[RP_ID_MAX + 1]; /* the agent that reported it */
};

/* Window statistics of one series over one window, as the agent sent them. */
struct store_stats {
  uint32_t window_s, count;
  double min, max, mean, stddev, p50, p95, p99;
  bool has_slope;
  double slope_per_min;
  int64_t ts_ms;       /* frame time */
  int64_t newest_ms;   /* Unix ms of the window's newest sample; 0: the agent did not say */
  int64_t received_ms; /* when the aggregator applied it (its own clock) */
};

struct store_rack {
  int64_t last_frame_ms; /* frame time of the newest frame */
  int64_t received_ms;   /* when the aggregator applied it */
  char agent[RP_ID_MAX + 1];
  uint64_t last_seq;
};

/* A device an operator retired: its data up to retired_ms is no longer an
 * expected member of the rack's inputs (an agent may keep sending the last
 * window statistics of a dead device; they stay retired). A sample newer
 * than retired_ms makes it a member again. */
struct store_retired {
  int64_t retired_ms; /* the aggregator's clock */
  char owner[RP_ID_MAX + 1];
};

/* What applying one frame did. */
enum store_outcome { STORE_APPLIED, STORE_DUPLICATE };

/* Opens (creating) the environment in directory `path` with a map of
 * `map_size` bytes (at least the size of the data already there). The map
 * may grow up to the same size until store_set_map_max() says otherwise.
 * A database of the previous layout (1: before incarnations and dictionary
 * hashes) is migrated in place: agent records gain empty identity fields
 * (their next frame of an incarnation starts it) and stored dictionaries are
 * dropped (samples are skipped and counted until each agent resends its
 * dictionary, at most its dictionary_every frames); offsets and state stay.
 * Layouts 1-3 have their latest values rewritten compact (layout 4, see
 * store_migrated_from()).
 * Returns 0 and *out (close with store_close()), or a negative errno / LMDB
 * error with err set. */
int store_open(const char *path, size_t map_size, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);
/* The layout version store_open() migrated the database from (0: none; it
 * was new or current) and how many latest values it rewrote then. */
unsigned store_migrated_from(const struct store *s, size_t *latest_records);

/* For replays (replay.c): records take now_ms as the aggregator's receive
 * time instead of the wall clock (0: the wall clock again; STORE_CLOCK_FRAME:
 * each frame's own time, as if received the instant it was sent), and with
 * volatile_ commits no longer wait for the disk (a scratch store, thrown
 * away after). Call from the writer's thread with no batch open. */
#define STORE_CLOCK_FRAME (-1)
void store_set_clock(struct store *s, int64_t now_ms);
int store_set_volatile(struct store *s, bool volatile_);

/* Durability (store_durability.c). A commit holds the state and the Kafka
 * offsets that produced it, and Kafka keeps the frames: a commit the disk
 * loses (power loss, kernel crash; never a process crash, whose writes the
 * kernel keeps) is read again from Kafka, so the store may sync less than
 * once per commit:
 *   STORE_SYNC_FULL      every commit waits for data and meta page (LMDB's
 *                        default: durable);
 *   STORE_SYNC_META      every commit waits for its data pages, not the meta
 *                        page (MDB_NOMETASYNC): a system crash may undo the
 *                        last commit, never damage the store;
 *   STORE_SYNC_PERIODIC  commits do not wait (MDB_NOSYNC | MDB_MAPASYNC) and
 *                        store_sync() is called every store.sync_interval: a
 *                        system crash may undo up to that much, and on a file
 *                        system that reorders writes damage the store, which
 *                        is then rebuilt from Kafka (store_open_rebuild()). */
enum store_sync_mode { STORE_SYNC_FULL, STORE_SYNC_META, STORE_SYNC_PERIODIC };
int store_set_sync(struct store *s, enum store_sync_mode mode, char *err, size_t errlen);
/* Flushes every commit to the disk now. */
int store_sync(struct store *s, char *err, size_t errlen);
/* Whether an LMDB error says the database is damaged. */
bool store_err_damaged(int rc);
/* Leaves a mark in `path` so that the next start rebuilds the store. */
int store_mark_damaged(const char *path);
/* store_open(), but a store that is marked damaged, or that LMDB finds
 * damaged, has its data file moved aside (its name in `aside`), *rebuilt set,
 * and an empty store is opened in its place: ingest then reads every
 * partition from the beginning of what Kafka keeps. The ledger, in its own
 * directory, is not touched. */
int store_open_rebuild(const char *path, size_t map_size, struct store **out, bool *rebuilt,
                       char *aside, size_t asidelen, char *err, size_t errlen);

/* The largest map store_grow() may reach, in bytes (raised to the current
 * map size when smaller). Call from the writer's thread. */
void store_set_map_max(struct store *s, size_t max_bytes);

/* Doubles the map, up to the maximum. The writer calls it with no batch open
 * after an -ENOSPC; it waits for open reads to end. Returns 0, -ENOSPC with
 * err naming the configuration key to raise when the map is already at the
 * maximum, -EBUSY when a batch is open, or another negative errno. */
int store_grow(struct store *s, char *err, size_t errlen);

struct store_map_info {
  size_t map_bytes;  /* the current map size */
  size_t max_bytes;  /* what it may grow to */
  size_t used_bytes; /* pages in use (up to the last page written) */
  uint64_t grows;    /* times store_grow() grew it */
};
void store_map_info(struct store *s, struct store_map_info *out);

/* What else applying a frame noticed (bits of store_msg.events). */
#define STORE_EV_NEW_INCARNATION 1u    /* a known agent began a new incarnation */
#define STORE_EV_UNKNOWN_DICTIONARY 2u /* samples skipped: dictionary not stored */
#define STORE_EV_BAD_DICTIONARY 4u     /* dictionary refused: hash mismatch */

/* One message of a batch for store_apply(). */
struct store_msg {
  const rp_frame *frame; /* NULL: a message that did not decode */
  const char *topic;
  int32_t partition;
  int64_t offset;
  enum store_outcome outcome; /* out, when frame != NULL */
  unsigned events;            /* out: STORE_EV_* bits, when frame != NULL */
  /* The message, when frame was decoded without its dictionary
   * (rp_frame_decode_lazy()); NULL otherwise. When the agent's record does
   * not hold that dictionary, store_apply() decodes the message whole and
   * applies that instead; when it does not decode whole, store_apply() sets
   * frame to NULL and skips it as a message that did not decode. */
  const void *raw;
  size_t raw_len;
};

/* Applies msgs[0..n) in one write transaction with their offsets and commits
 * it durably; the frames stay the caller's. When the map fills it aborts,
 * grows the map (store_grow()) and applies them all again, so a full map
 * costs one retry, never a frame. Returns 0, or a negative errno with err
 * set (and nothing applied): -ENOSPC when the map is full at its maximum. */
int store_apply(struct store *s, struct store_msg *msgs, size_t n, char *err, size_t errlen);

/* The lower-level batch API that store_apply() is made of. A full map
 * makes apply, skip or commit return -ENOSPC; the batch must then be aborted
 * (a failed commit frees it already).
 *
 * Starts a write batch. Only one batch may be open at a time (one writer). */
int store_batch_begin(struct store *s, struct store_batch **out, char *err, size_t errlen);
/* Applies one frame read from topic/partition/offset inside the batch, and
 * records offset + 1 as the partition's next offset. */
int store_batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                      int32_t partition, int64_t offset, enum store_outcome *outcome, char *err,
                      size_t errlen);
/* Frames applied next are received at `ms` on the aggregator's clock (0:
 * the real clock), for tests and benchmarks in simulated time. */
void store_batch_set_received(struct store_batch *b, int64_t ms);
/* Records only the offset (for a message that was skipped as invalid). */
int store_batch_skip(struct store_batch *b, const char *topic, int32_t partition, int64_t offset,
                     char *err, size_t errlen);
/* Commits (durably) or aborts the batch, and frees it. */
int store_batch_commit(struct store_batch *b, char *err, size_t errlen);
void store_batch_abort(struct store_batch *b);

/* The next offset to consume for topic/partition: 0 and *next, or -ENOENT. */
int store_get_offset(struct store *s, const char *topic, int32_t partition, int64_t *next);

/* Retires device `device` of `rack` at `now_ms` for `owner`: deletes its
 * latest values, window statistics and device record and keeps a
 * struct store_retired, so that it is no longer an expected member of the
 * rack's checks until it reports a newer sample. One write transaction, from
 * any thread but the writer's. Returns 0 with *removed set (records deleted;
 * 0: the rack has no such device and nothing is kept), or a negative errno
 * with err set. */
int store_retire_device(struct store *s, const char *rack, const char *device, const char *owner,
                        int64_t now_ms, size_t *removed, char *err, size_t errlen);

/* Readers. Each opens its own read transaction and holds the store's
 * shared resize lock until store_read_end(): a thread must end one read
 * before it begins another, or a waiting resize could deadlock it. */
struct store_read;
int store_read_begin(struct store *s, struct store_read **out);
void store_read_end(struct store_read *r);
int store_read_rack(struct store_read *r, const char *rack, struct store_rack *out);
/* The record of agent `agent`; 0 or -ENOENT. */
int store_read_agent(struct store_read *r, const char *agent, struct store_agent *out);
/* The latest value of series `name` (any labels, any device: the first in
 * key order) in `rack`; 0 or -ENOENT. */
int store_read_latest_by_name(struct store_read *r, const char *rack, const char *name,
                              struct store_latest *out);
/* Calls fn for every latest value of `rack` in key order. */
int store_read_each_latest(struct store_read *r, const char *rack,
                           void (*fn)(void *ctx, const char *key, const struct store_latest *),
                           void *ctx);
/* The statistics of series `name` (any labels and device: the first in key
 * order) over `window_s` in `rack`; 0 or -ENOENT. */
int store_read_stats_by_name(struct store_read *r, const char *rack, const char *name,
                             uint32_t window_s, struct store_stats *out);
/* Calls fn for every window statistic of `rack`; key is "series key|window". */
int store_read_each_stats(struct store_read *r, const char *rack,
                          void (*fn)(void *ctx, const char *key, const struct store_stats *),
                          void *ctx);
int store_read_each_device(struct store_read *r, const char *rack,
                           void (*fn)(void *ctx, const char *device, const struct store_device *),
                           void *ctx);
int store_read_each_retired(struct store_read *r, const char *rack,
                            void (*fn)(void *ctx, const char *device, const struct store_retired *),
                            void *ctx);
int store_read_each_rack(struct store_read *r,
                         void (*fn)(void *ctx, const char *rack, const struct store_rack *),
                         void *ctx);
int store_read_each_agent(struct store_read *r,
                          void (*fn)(void *ctx, const char *agent, const struct store_agent *),
                          void *ctx);

#endif
