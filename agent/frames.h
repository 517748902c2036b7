/* Frame building: samples from completed scrapes accumulate in a builder;
 * once per interval the agent turns them, the device health and its own
 * health into one protobuf Frame (proto/rackpulse.proto). */
#ifndef RACKPULSE_FRAMES_H
#define RACKPULSE_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"
#include "rackpulse.pb-c.h"
#include "series.h"

struct rp_frame_builder;

/* Health figures that are not in the targets (publisher and agent). */
struct rp_agent_health {
  uint64_t frames_produced, frames_delivered, frames_failed;
  uint64_t spool_depth, frames_dropped, scrapes_late;
  uint32_t delivery_latency_ms;
  uint64_t frames_rejected;      /* refused by Kafka for themselves: dropped */
  uint64_t spool_write_failures; /* spool writes that failed (disk full) */
  bool spool_degraded;           /* the last spool write failed */
  char kafka_error[256];         /* the Kafka error while it lasts */
};

/* Creates a builder that holds at most `max_samples` pending samples; more
 * are dropped and counted. Returns NULL on allocation failure. Free it with
 * rp_builder_free() (accepts NULL). */
struct rp_frame_builder *rp_builder_new(size_t max_samples);
void rp_builder_free(struct rp_frame_builder *b);

/* Adds the samples of one scrape taken at `ts_ms`. Returns 0, or -ENOSPC when
 * the builder is full (the samples are dropped and counted). */
int rp_builder_add_block(struct rp_frame_builder *b, int64_t ts_ms, const uint32_t *ids,
                         const int64_t *scaled, size_t n);
/* Records that `series` has no valid value in this frame, and why. */
int rp_builder_add_status(struct rp_frame_builder *b, uint32_t series, int status,
                          const char *detail);

struct rp_frame_meta {
  const char *agent_id, *rack_id;
  uint64_t incarnation; /* of the agent's spool; 0 without one (--once) */
  uint64_t seq;
  int64_t ts_ms, interval_ms;
  bool with_dictionary;
  Rackpulse__V1__WindowStats **stats; /* window statistics to carry, or NULL */
  size_t nstats;
  uint32_t stats_every; /* the frame's stats_every_frames (0: every frame) */
};

/* Packs the pending samples, the dictionary (when meta->with_dictionary) and
 * its content hash (always: rp_series_table_hash()),
 * the targets' health and `health` into a Frame, then empties the builder.
 * Returns 0 with *buf (malloc'd, the caller frees it) and *len, or -ENOMEM. */
int rp_builder_build(struct rp_frame_builder *b, const struct rp_frame_meta *meta,
                     struct rp_series_table *series, struct rp_target *const *targets,
                     size_t ntargets, const struct rp_agent_health *health, uint8_t **buf,
                     size_t *len);

/* Samples currently pending, and samples dropped since creation. */
size_t rp_builder_pending(const struct rp_frame_builder *b);
uint64_t rp_builder_dropped(const struct rp_frame_builder *b);

#endif
