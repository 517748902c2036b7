/* The agent's on-disk spool: an LMDB environment in STATE_DIR/spool that
 * holds every frame from the moment it is built until Kafka acknowledges it
 * (write-ahead), and the next sequence number. It survives kill -9: after a
 * restart the frames still in it are sent again, oldest first (the
 * aggregator ignores the ones that had arrived: sequence numbers).
 *
 * Writes are group-committed: a batch of new frames, acknowledgements and
 * the next sequence number is one write transaction and one sync. A batch is
 * written by rp_spool_write(), which may run on a worker thread; readers
 * (rp_spool_next) run on the loop thread and never wait for the writer.
 *
 * Bound: when the spool holds more than max_frames or max_bytes, the oldest
 * frames not yet handed to Kafka are deleted and counted as dropped. */
#ifndef RACKPULSE_SPOOL_H
#define RACKPULSE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rp_spool;

struct rp_spool_limits {
  uint64_t max_frames;
  uint64_t max_bytes;
  size_t map_size; /* LMDB map size; must exceed max_bytes with room */
};

/* A group of changes written in one transaction. The caller fills it on the
 * loop thread, hands it to rp_spool_write() (any thread), and frees it with
 * rp_spool_batch_reset() afterwards. */
struct rp_spool_frame {
  uint64_t seq;
  uint8_t *buf; /* owned by the batch */
  size_t len;
};

struct rp_spool_batch {
  struct rp_spool_frame *frames;
  size_t nframes, cap_frames;
  uint64_t *acks; /* delivered: delete these */
  size_t nacks, cap_acks;
  uint64_t next_seq;     /* persisted with the batch */
  uint64_t protect_from; /* frames with seq < this are in Kafka's hands:
                                   never dropped for the bound */
  /* Results of rp_spool_write(). */
  uint64_t dropped; /* frames deleted for the bound */
  int rc;
  char err[256];
};

/* Opens (creating) the spool in directory `dir`. Returns 0 and *out, or a
 * negative errno with err set. */
int rp_spool_open(const char *dir, const struct rp_spool_limits *lim, struct rp_spool **out,
                  char *err, size_t errlen);
/* Closes the spool. No write may be in progress. Accepts NULL. */
void rp_spool_close(struct rp_spool *s);

/* The next sequence number stored (1 for a new spool). */
uint64_t rp_spool_stored_next_seq(const struct rp_spool *s);
/* The agent's incarnation: random and nonzero, created with the spool and
 * persisted in it (frames name it; consumers de-duplicate per agent,
 * incarnation and seq). True when this open created it. */
uint64_t rp_spool_incarnation(const struct rp_spool *s);
bool rp_spool_incarnation_is_new(const struct rp_spool *s);
/* Frames dropped for the bound since the spool was created (persisted). */
uint64_t rp_spool_dropped_total(const struct rp_spool *s);

/* Adds a frame (the batch takes ownership of buf) or an acknowledgement.
 * Returns 0 or -ENOMEM (buf is then still the caller's). */
int rp_spool_batch_add_frame(struct rp_spool_batch *b, uint64_t seq, uint8_t *buf, size_t len);
int rp_spool_batch_add_ack(struct rp_spool_batch *b, uint64_t seq);
/* Frees the batch's frames and empties it (keeps its arrays). */
void rp_spool_batch_reset(struct rp_spool_batch *b);
/* Frees everything the batch holds. */
void rp_spool_batch_free(struct rp_spool_batch *b);

/* Writes a batch in one transaction with one sync; sets b->rc (0 or a
 * negative errno), b->err and b->dropped. One writer at a time. */
void rp_spool_write(struct rp_spool *s, struct rp_spool_batch *b);

/* The oldest frame with seq > after: 0 with *seq and a malloc'd copy in
 * *buf and *len (the caller frees), -ENOENT when there is none, or -EIO. */
int rp_spool_next(struct rp_spool *s, uint64_t after, uint64_t *seq, uint8_t **buf, size_t *len);

/* Frames and bytes currently held. */
void rp_spool_depth(struct rp_spool *s, uint64_t *frames, uint64_t *bytes);

#endif
