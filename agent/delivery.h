/* Store and forward: every frame goes to the on-disk spool first (group
 * committed in the libuv thread pool, so the loop never waits on a disk
 * sync), then to Kafka, oldest first, at most `spool.max_in_flight` at a
 * time; Kafka's acknowledgement deletes it from the spool. When Kafka is
 * away frames accumulate in the spool (bounded: the oldest not yet handed to
 * Kafka are dropped and counted) and are replayed in order when it returns,
 * while new frames keep being collected. A restart, even after kill -9,
 * resends what the spool still holds. A Kafka error is an outage like any
 * other (frames kept, sent again with back-off; a fatal producer error
 * replaces the producer) unless Kafka refuses the frame itself (too large,
 * invalid: dropped and counted as rejected). A spool that cannot be written
 * (disk full) degrades to sending from memory until it can. */
#ifndef RACKPULSE_DELIVERY_H
#define RACKPULSE_DELIVERY_H

#include <stdint.h>
#include <uv.h>

#include "frames.h"

struct rp_agent_config;
struct rp_delivery;

/* Opens the spool in STATE_DIR/spool and creates the producer. Returns 0 and
 * *out, or a negative errno with err set: -EINVAL when Kafka's client
 * refuses the configuration. A producer the system cannot give threads,
 * descriptors or memory now is no failure: it is logged, frames are
 * spooled, and it is created again with back-off. */
int rp_delivery_new(uv_loop_t *loop, const struct rp_agent_config *cfg, struct rp_delivery **out,
                    char *err, size_t errlen);

/* The next sequence number to use: never repeats or goes back across
 * restarts (it is persisted with each spooled frame). */
uint64_t rp_delivery_take_seq(struct rp_delivery *d);

/* The agent's incarnation, kept with the spool (see rp_spool_incarnation()). */
uint64_t rp_delivery_incarnation(const struct rp_delivery *d);

/* Takes ownership of frame `seq` (malloc'd buf) and queues it for the spool. */
void rp_delivery_submit(struct rp_delivery *d, uint64_t seq, uint8_t *buf, size_t len);

/* A counter that grows whenever a frame already submitted may never reach
 * Kafka because it was dropped (at the spool's bound, or in memory) or the
 * producer was replaced after a fatal error (an idempotent producer's fatal
 * error can leave a gap on the broker). The agent sends the dictionary
 * again when it grows: the lost frame may have carried it. Frames Kafka
 * refuses for themselves are not counted: most often it is the dictionary
 * frame that is too large, and sending it again at once would be refused
 * again. */
uint64_t rp_delivery_gaps(const struct rp_delivery *d);

/* Fills the delivery part of the agent's health. */
void rp_delivery_health(struct rp_delivery *d, struct rp_agent_health *h);

/* Finishes: waits for the spool writer, gives Kafka up to `timeout_ms` to
 * acknowledge frames in flight, records those acknowledgements, closes the
 * producer and the spool, and frees d. Frames not acknowledged stay in the
 * spool for the next start. Call after the loop has stopped; the loop is
 * run to completion for the handles d owns. Accepts NULL. */
void rp_delivery_close(struct rp_delivery *d, int timeout_ms);

#endif
